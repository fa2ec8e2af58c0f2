"""Challenge 18, the window: the solver's block-mode policy sizes the credit window
(``admission_limit``) from what the consumer measures, so a delayed link keeps the
consumer busy without holding more in flight than the round trip needs.

Module 18's consumer grants credit up to its admission limit, so that limit is the window,
and W / (2D + s) is the most a window of W allows. Each run draws the consumer's capacity
and the link's two delays (short then long, or long then short) and when it changes, so a
window sized for one phase fails the other: too small starves the consumer, too big holds
far more in flight than the bandwidth-delay product. The consumer hands the policy the
round trip it measured (``LoadSignals.round_trip_s``) and what is in flight now
(``LoadSignals.in_flight``); its snapshots record both, which is what is graded here.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence, Tuple

from lab.tools.grading import measures as m
from lab.tools.grading.core import Check, Evidence, MissingData
from lab.tools.grading.table import Challenge, Plan, Scenario, code_checks, flags, rng_for

NAME = "18_window"
CAPACITIES = (500.0, 1000.0)  # the consumer's --process-rate, msg/s
DELAYS_MS = ((10.0, 60.0), (60.0, 10.0))  # the link's delay each way: before, after the change
CHANGE_ATS = (5.0, 6.0)  # seconds after each process starts
BUFFER = 1000  # the hard bound: no window can pass it
DURATION_S = 11.0
SETTLE_S = 2.0  # after the producer's start and after the change: not judged
END_MARGIN_S = 0.5  # the phase after the change ends this long before the producer stops
MIN_THROUGHPUT = 95.0  # % of capacity, in each phase
IN_FLIGHT_FACTOR = 3.0  # the bound on in flight: this many bandwidth-delay products
STARTER_WINDOW = 10  # the starter's fixed window (quoted by the README)

Window = Tuple[float, float]  # epoch times


def bandwidth_delay(capacity: float, delay_ms: float) -> float:
    """Messages the consumer finishes in one round trip, 2D + s: the window it needs."""
    return capacity * (2.0 * delay_ms / 1000.0 + 1.0 / capacity)


def in_flight_bound(capacity: float, delay_ms: float) -> int:
    """The graded bound on messages in flight in a phase of ``delay_ms``."""
    return math.floor(IN_FLIGHT_FACTOR * bandwidth_delay(capacity, delay_ms))


def _consumer_start(records: Sequence[m.Record]) -> float:
    if not records:
        raise MissingData("the consumer recorded no telemetry")
    return float(records[0]["t"]) - float(records[0]["uptime_s"])


def _phases(evidence: Evidence, change_at: float) -> Tuple[Window, Window]:
    """The judged stretches, in epoch times. Each process changes its delay at its own
    ``change_at``; the consumer starts first, so the link is mixed from its change to the
    producer's. Before: from the producer's start + settle to the consumer's change; after:
    from the producer's change + settle to just before the producer stops."""
    producer = m.producer_start_epoch(evidence.producer_records)
    consumer = _consumer_start(evidence.consumer_records)
    before = (producer + SETTLE_S, min(consumer, producer) + change_at)
    after = (max(consumer, producer) + change_at + SETTLE_S, producer + DURATION_S - END_MARGIN_S)
    for start, end in (before, after):
        if end - start < 1.0:
            raise MissingData("the processes started too far apart to judge a phase")
    return before, after


def _inside(records: Sequence[m.Record], window: Window) -> list:
    return [r for r in records if window[0] <= float(r.get("t", -math.inf)) <= window[1]]


def _throughput(change_at: float, phase: int) -> Callable[[Evidence], float]:
    def measure(evidence: Evidence) -> float:
        window = _phases(evidence, change_at)[phase]
        inside = _inside(evidence.consumer_records, window)
        return 100.0 * m.throughput_ratio(inside, evidence.producer_records)

    return measure


def _most_in_flight(change_at: float, phase: int) -> Callable[[Evidence], float]:
    def measure(evidence: Evidence) -> float:
        window = _phases(evidence, change_at)[phase]
        return m.peak(_inside(evidence.consumer_records, window), "in_flight")

    return measure


def _refused(evidence: Evidence) -> float:
    records = evidence.consumer_records
    if not records:
        raise MissingData("the consumer recorded no telemetry")
    return m.refused_between(records, -math.inf, math.inf)


def draw(seed: int) -> Plan:
    rng = rng_for(seed, NAME)
    capacity, (before_ms, after_ms) = rng.choice(CAPACITIES), rng.choice(DELAYS_MS)
    change_at = rng.choice(CHANGE_ATS)
    link = flags(
        link_delay_ms=before_ms, link_delay_change_at=change_at, link_delay_change_ms=after_ms
    )
    scenario = Scenario(
        module=18,
        plugin_role="consumer",
        plugin_flag="--policy-file",
        plugin_kind="policy",
        consumer_flags=flags(mode="block", buffer=BUFFER, process_rate=capacity) + link,
        producer_flags=flags(mps="max") + link,
        duration_s=DURATION_S,
    )
    checks = []
    for phase, (when, delay_ms) in enumerate((("before", before_ms), ("after", after_ms))):
        bdp = bandwidth_delay(capacity, delay_ms)
        checks.append(
            Check(
                f"throughput vs capacity, {when} the change",
                _throughput(change_at, phase),
                ">=",
                MIN_THROUGHPUT,
                f"the consumer sat idle waiting for data: over a {2 * delay_ms:g} ms round trip "
                f"it needs about {bdp:.0f} messages in flight; grow the window with the round "
                "trip you measure",
                unit="%",
                digits=1,
            )
        )
        checks.append(
            Check(
                f"most in flight, {when} the change",
                _most_in_flight(change_at, phase),
                "<=",
                in_flight_bound(capacity, delay_ms),
                f"more in flight than {IN_FLIGHT_FACTOR:g} round trips' work ({bdp:.0f} each): "
                "a window bigger than the bandwidth-delay product only holds memory; shrink it "
                "when the round trip gets shorter",
            )
        )
    checks.append(
        Check(
            "messages refused by the consumer",
            _refused,
            "==",
            0,
            "a window never drops: stay in block mode (subclass BlockPolicy) and let the "
            "credit hold the producer back",
        )
    )
    facts = {
        "capacity_mps": capacity,
        "delay_before_ms": before_ms,
        "delay_after_ms": after_ms,
        "change_at_s": change_at,
    }
    return Plan(seed, scenario, (*checks, *code_checks("consumer")), facts)


WINDOW = Challenge(
    name=NAME,
    title="The window over a slow link",
    goal="size block mode's credit window to the measured round trip, as the delay changes",
    plugin_role="consumer",
    plugin_flag="--policy-file",
    plugin_kind="policy",
    draw=draw,
)
