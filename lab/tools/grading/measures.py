"""How the graders compute their numbers from a run's summaries and telemetry. Pure.

The inputs are what every lab process already writes: the ``--json`` summary printed at
exit, and the ``--record`` JSON Lines file with a snapshot ten times a second (each with
``uptime_s``, the epoch time ``t``, ``totals``, 1-second ``rates``, the worker's
``service_rate`` and ``slowdown``). Times in a consumer's records are its own uptime;
producer and consumer records meet on the epoch time ``t``.

>>> def snap(t, speed, received, processed):
...     return {"uptime_s": t, "service_rate": speed,
...             "totals": {"received": received, "processed": processed}}
>>> records = [snap(0.1, 1000, 0, 0), snap(0.2, 1000, 120, 0), snap(0.3, 250, 240, 100),
...            snap(0.4, 250, 240, 120)]
>>> round(throughput_ratio(records), 3)      # 120 done of 100 + 25 possible
0.96
>>> records.insert(3, snap(0.35, 250, 240, 110))
>>> records[4]["uptime_s"] = 0.85           # a half-second stall is left out of both sums
>>> round(throughput_ratio(records), 3)      # 110 done of 100 + 12.5
0.978
"""

from __future__ import annotations

import bisect
import math
from typing import Any, Dict, List, Optional, Sequence, Tuple

from lab.tools.grading.core import MissingData

Record = Dict[str, Any]


def dig(record: Record, *path: str) -> Any:
    """``record[path[0]][path[1]]...``, or None if any step is missing."""
    value: Any = record
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def summary_value(summary: Dict[str, Any], key: str, role: str = "summary") -> Optional[float]:
    """A number from a ``--json`` summary (None stays None: e.g. "never recovered")."""
    if not summary:
        raise MissingData(f"the {role} printed no summary")
    if key not in summary:
        raise MissingData(f"the {role} has no {key!r}")
    value = summary[key]
    return None if value is None else float(value)


def peak(records: Sequence[Record], *path: str) -> float:
    """The largest value of a snapshot field over the run (e.g. ``rates.received``)."""
    values = [float(v) for v in (dig(r, *path) for r in records) if v is not None]
    if not values:
        raise MissingData(f"no telemetry with {'.'.join(path)} was recorded")
    return max(values)


def class_row(summary: Dict[str, Any], cls: int) -> Dict[str, Any]:
    """The consumer summary's row for one priority class."""
    for row in summary.get("classes") or []:
        if row.get("class") == cls:
            return row
    raise MissingData(f"no message of class {cls} reached the consumer")


def class_lost(summary: Dict[str, Any], cls: int) -> float:
    """Messages of a class that were refused: dropped (evictions included) + shed + sampled."""
    row = class_row(summary, cls)
    return float(row.get("dropped", 0) + row.get("shed", 0) + row.get("sampled_out", 0))


def active_window(records: Sequence[Record]) -> Tuple[int, int]:
    """Indices of the first snapshot after traffic arrived and of the snapshot where the
    last message was processed: the stretch in which the worker had work to do."""
    first = next(
        (i for i, r in enumerate(records) if (dig(r, "totals", "received") or 0) > 0), None
    )
    if first is None:
        raise MissingData("the consumer received nothing")
    final = dig(records[-1], "totals", "processed") or 0
    last = next(
        i
        for i, r in enumerate(records)
        if i >= first and (dig(r, "totals", "processed") or 0) >= final
    )
    if last <= first:
        raise MissingData("the run was too short to measure throughput")
    return first, last


STALL_GAP_S = 0.25  # snapshots are due every 0.1 s: a longer gap means the process stalled


def stalls(
    records: Sequence[Record], stall_gap_s: float = STALL_GAP_S
) -> List[Tuple[float, float]]:
    """(start, end) epoch times of the gaps in a process's 10 Hz telemetry longer than
    ``stall_gap_s``: the process was not running then (a busy machine)."""
    times = [float(r["t"]) for r in records if "t" in r]
    return [(a, b) for a, b in zip(times, times[1:]) if b - a > stall_gap_s]


def throughput_ratio(
    records: Sequence[Record],
    producer_records: Sequence[Record] = (),
    stall_gap_s: float = STALL_GAP_S,
) -> float:
    """Processed ÷ what the worker could have processed, over the active window.

    Capacity is the integral of the worker's speed (``service_rate``, which follows
    --process-rate and the slowdown), snapshot to snapshot. A stretch in which the consumer
    or the producer process was stalled by a busy machine (a gap of more than
    ``stall_gap_s`` in its telemetry) is left out of both sums: no message could reach the
    worker then, whatever the policy."""
    first, last = active_window(records)
    gaps = stalls(producer_records, stall_gap_s)
    processed = capacity = 0.0
    for before, after in zip(records[first:last], records[first + 1 : last + 1]):
        elapsed = float(after["uptime_s"]) - float(before["uptime_s"])
        if elapsed > stall_gap_s or _overlaps(before, after, gaps):
            continue
        rate = before.get("service_rate")
        if rate is None or math.isinf(float(rate)):
            raise MissingData("the worker has no finite speed (--process-rate max?)")
        capacity += float(rate) * elapsed
        processed += dig(after, "totals", "processed") - dig(before, "totals", "processed")
    if capacity <= 0:
        raise MissingData("the worker had no time to work")
    return processed / capacity


def _overlaps(before: Record, after: Record, gaps: Sequence[Tuple[float, float]]) -> bool:
    start, end = before.get("t"), after.get("t")
    if start is None or end is None:
        return False
    return any(a < float(end) and float(start) < b for a, b in gaps)


def slowdown_seen_at(records: Sequence[Record]) -> float:
    """The consumer uptime of the first snapshot taken with the worker slowed down.

    The policy's ``observe`` runs just before each snapshot, so from then on the policy
    had been told about the slowdown."""
    for record in records:
        if (record.get("slowdown") or 1.0) != 1.0:
            return float(record["uptime_s"])
    raise MissingData("the worker never slowed down (was the run cut short?)")


def late_accepted_after(summary: Dict[str, Any], since: float) -> float:
    """Messages accepted at or after consumer uptime ``since`` that then waited longer than
    the consumer's ``--wait-target-ms`` (filed by the tenth of a second of acceptance)."""
    if summary.get("wait_target_ms") is None:
        raise MissingData("the consumer ran without --wait-target-ms")
    buckets: List[List[float]] = summary.get("waited_past_target_accepted_at") or []
    return float(sum(count for start, count in buckets if start >= since - 1e-9))


def producer_start_epoch(records: Sequence[Record]) -> float:
    """Epoch time of the producer's start (its schedule's time zero)."""
    if not records:
        raise MissingData("the producer recorded no telemetry")
    first = records[0]
    return float(first["t"]) - float(first["uptime_s"])


def rate_between(records: Sequence[Record], start: float, end: float, *path: str) -> float:
    """How fast a cumulative counter grew between two epoch times, in events per second."""
    inside = [r for r in records if start <= float(r.get("t", -math.inf)) <= end]
    if len(inside) < 2:
        raise MissingData("too little telemetry in the measured window")
    first, last = inside[0], inside[-1]
    elapsed = float(last["t"]) - float(first["t"])
    if elapsed <= 0:
        raise MissingData("the measured window is empty")
    return (float(dig(last, *path)) - float(dig(first, *path))) / elapsed


def count_between(records: Sequence[Record], start: float, end: float, *path: str) -> float:
    """How much a cumulative counter grew between two epoch times (0 before the first
    record)."""
    times = [float(r["t"]) for r in records]

    def value_at(t: float) -> float:
        index = bisect.bisect_right(times, t) - 1
        return 0.0 if index < 0 else float(dig(records[index], *path) or 0)

    return value_at(end) - value_at(start)


def recovered_after(
    consumer_records: Sequence[Record],
    producer_records: Sequence[Record],
    spike_end: float,
    producer_end: float,
    max_depth: float,
) -> Optional[float]:
    """Seconds from the spike's end (epoch) to the first consumer snapshot showing a
    healthy system: in the second before it, the consumer shed nothing and the producer
    had no request time out, and the consumer held at most ``max_depth`` messages. Only
    snapshots taken while the producer was still making traffic count (after that, any
    system looks healthy). None if it never happened."""
    for record in consumer_records:
        t = float(record.get("t", -math.inf))
        if t < spike_end or t > producer_end:
            continue
        if (dig(record, "rates", "shed") or 0) > 0 or (record.get("depth") or 0) > max_depth:
            continue
        if count_between(producer_records, t - 1.0, t, "timed_out") > 0:
            continue
        return t - spike_end
    return None


def unique_share_sent(summary: Dict[str, Any]) -> float:
    """Of the messages the producer's schedule made due, the share it sent (each counted
    once): sent ÷ (sent + still waiting in its outbox + skipped)."""
    if not summary:
        raise MissingData("the producer printed no summary")
    sent = summary["produced"] - summary["retried"]
    due = sent + summary["pending"] + summary["skipped"]
    if due <= 0:
        raise MissingData("the producer made no messages")
    return sent / due


def median_between(records: Sequence[Record], start: float, end: float, key: str) -> float:
    """The median of a snapshot field over consumer uptimes ``start`` to ``end`` (only
    snapshots taken while traffic was arriving).

    >>> rows = [{"uptime_s": t / 10, "limit": t, "rates": {"received": 5}} for t in range(10)]
    >>> median_between(rows, 0.2, 0.6, "limit")
    4.0
    """
    values = sorted(
        float(r[key])
        for r in records
        if start <= float(r.get("uptime_s", -math.inf)) <= end
        and r.get(key) is not None
        and (dig(r, "rates", "received") or 0) > 0
    )
    if not values:
        raise MissingData(f"no telemetry with traffic between {start:g} s and {end:g} s")
    middle = len(values) // 2
    return values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2


REFUSED = ("dropped", "shed", "sampled_out")


def refused_between(records: Sequence[Record], start: float, end: float) -> float:
    """Messages the consumer refused (dropped, shed or sampled out) between two epoch
    times."""
    return sum(count_between(records, start, end, "totals", key) for key in REFUSED)


def since(records: Sequence[Record], start: float) -> List[Record]:
    """The records taken at or after the epoch time ``start``."""
    return [r for r in records if float(r.get("t", -math.inf)) >= start]


def peak_since(records: Sequence[Record], start: float, *path: str) -> float:
    """The largest value of a snapshot field from the epoch time ``start`` on."""
    return peak(since(records, start), *path)
