"""The dashboard panels of Modules 13, 14 and 15, drawn under the common ones.

Each panel is a pure function ``(DashboardState, now) -> renderable or None`` registered in
``dashboard.MODULE_PANELS``; it reads the snapshots the dashboard already holds and never
does I/O. Per-class rates are differences between consecutive consumer snapshots, kept
here in a short history per dashboard (:class:`History`), timed by the consumer's own
uptime so a slow redraw cannot distort them.

Every panel fits in five lines of 76 columns, so the whole dashboard still fits 80x24,
shows its state in words as well as colours (``NO_COLOR`` is honoured by rich), and
prints ``-`` for a field an older or different process does not send.

* 13, load shedding: per-class arrivals, completions, losses and queue wait, and whether
  the checkouts survive (or, in degrade mode, whether optional features are off).
* 14, rate limiting: the producer's limiter, the consumer's admission bucket, and the
  offered and admitted load against the worker's capacity.
* 15, retry storms: retry policy and breaker state, retry amplification, timeouts and
  late completions (wasted work), response p99, and the recovery clock.
"""

from __future__ import annotations

import weakref
from collections import deque
from typing import TYPE_CHECKING, Any, Callable, Deque, Dict, List, Optional, Tuple

from rich.console import Group, RenderableType
from rich.text import Text

from lab.ui.textgrid import grid
from lab.ui.widgets import bar, fmt_count, fmt_rate, fmt_seconds, sparkline

if TYPE_CHECKING:
    from lab.ui.dashboard import DashboardState

RATE_WINDOW_S = 1.0
HISTORY_KEEP_S = 3.0
CLASS_LABELS = {0: "0 checkout", 1: "1 browse", 2: "2 optional"}
CLASS_COLUMNS = ("class", "in/s", "done/s", "lost/s", "lost", "wait p99", "latency p99")
BAR_WIDTH = 22


# -- history: rates from consecutive snapshots ------------------------------------------------
class History:
    """What one dashboard's panels remember between redraws: the last few seconds of
    consumer snapshots (by the consumer's uptime), and when each producer's recovery
    began."""

    def __init__(self) -> None:
        self.session: Optional[str] = None
        self.consumer: Deque[Tuple[float, Dict[str, Any]]] = deque()
        # producer id -> (uptime its recovery began, whether we saw the spike end then)
        self.recovering_since: Dict[str, Tuple[float, bool]] = {}
        self.last_phase: Dict[str, str] = {}  # producer id -> recovery phase last seen

    def add_consumer(self, snap: Dict[str, Any]) -> None:
        session = snap.get("session")
        if session != self.session:  # a restarted consumer starts its counters again
            self.session = session
            self.consumer.clear()
        uptime = _number(snap.get("uptime_s"))
        if uptime is None:
            return
        if self.consumer and uptime <= self.consumer[-1][0]:
            return
        self.consumer.append((uptime, snap))
        while self.consumer and uptime - self.consumer[0][0] > HISTORY_KEEP_S:
            self.consumer.popleft()

    def consumer_pair(self) -> Optional[Tuple[float, Dict[str, Any], Dict[str, Any]]]:
        """(seconds between, older, newest): the newest snapshot and one about a second
        before it, or None until there are two."""
        if len(self.consumer) < 2:
            return None
        newest_t, newest = self.consumer[-1]
        older_t, older = self.consumer[0]
        for t, snap in self.consumer:
            if newest_t - t >= RATE_WINDOW_S:
                older_t, older = t, snap
        return newest_t - older_t, older, newest


_HISTORIES: weakref.WeakKeyDictionary[DashboardState, History] = weakref.WeakKeyDictionary()


def history_of(state: DashboardState) -> History:
    history = _HISTORIES.get(state)
    if history is None:
        history = _HISTORIES[state] = History()
    if state.consumer is not None:
        history.add_consumer(state.consumer)
    return history


def class_rates(history: History) -> Dict[int, Dict[str, float]]:
    """Per class, per counter: events per second over the last second of snapshots."""
    pair = history.consumer_pair()
    if pair is None:
        return {}
    span, older, newest = pair
    if span <= 0:
        return {}
    before = {row.get("class"): row for row in older.get("classes") or []}
    rates: Dict[int, Dict[str, float]] = {}
    for row in newest.get("classes") or []:
        cls = row.get("class")
        old = before.get(cls, {})
        rates[cls] = {
            key: max(0.0, (row.get(key, 0) - old.get(key, 0)) / span)
            for key in ("received", "processed", "dropped", "shed", "sampled_out")
        }
    return rates


def counter_rate(history: History, *path: str) -> Optional[float]:
    """The per-second rate of a cumulative number inside the consumer snapshot."""
    pair = history.consumer_pair()
    if pair is None:
        return None
    span, older, newest = pair
    old, new = _dig(older, path), _dig(newest, path)
    if span <= 0 or old is None or new is None:
        return None
    return max(0.0, (new - old) / span)


def _dig(snap: Dict[str, Any], path) -> Optional[float]:
    value: Any = snap
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return _number(value)


def _number(value: Any) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _first_producer(state: DashboardState, now: float) -> Tuple[Optional[Dict[str, Any]], int]:
    producers = state.live_producers(now)
    return (producers[0] if producers else None), len(producers)


def _labelled(rows: List[Tuple[str, Text]]) -> RenderableType:
    """Rows of a bold label (at least 9 columns) and its text, as lines that never wrap."""
    return Group(*grid(rows, "ll", gap=1, styles=("bold",), min_widths=(9,)))


# -- Module 13: the flash sale ----------------------------------------------------------------
def load_shedding_panel(state: DashboardState, now: float) -> Optional[RenderableType]:
    snap = state.consumer
    if snap is None:
        return None
    history = history_of(state)
    rows: List[Dict[str, Any]] = list(snap.get("classes") or [])
    if not rows:
        return Text("priority classes: no traffic yet", style="dim")
    rates = class_rates(history)
    producer, _ = _first_producer(state, now)
    producer_p99 = {
        row.get("class"): row.get("p99_s") for row in (producer or {}).get("classes") or []
    }
    lines = []
    for row in rows[:3]:
        cls = row.get("class")
        rate = rates.get(cls)
        lost = sum(int(row.get(key, 0) or 0) for key in ("dropped", "shed", "sampled_out"))
        lost_rate = None if rate is None else rate["dropped"] + rate["shed"] + rate["sampled_out"]
        style = "red" if cls == 0 and lost else ""
        lines.append(
            [
                Text(CLASS_LABELS.get(cls, str(cls)), style="bold"),
                fmt_rate(rate["received"]) if rate else "-",
                fmt_rate(rate["processed"]) if rate else "-",
                Text(fmt_rate(lost_rate) if rate else "-", style=style),
                Text(fmt_count(lost), style=style),
                "-"
                if rate is not None and rate["processed"] == 0
                else fmt_seconds(row.get("wait_p99_s")),
                fmt_seconds(producer_p99.get(cls)),
            ]
        )
    table = grid(lines, "lrrrrrr", header=CLASS_COLUMNS)
    return Group(*table, _class_verdict(snap, rows))


def _class_verdict(snap: Dict[str, Any], rows: List[Dict[str, Any]]) -> Text:
    policy = snap.get("policy_state") or {}
    verdict = Text()
    if "degraded" in policy:
        switches = fmt_count(policy.get("switches", 0))
        if policy.get("degraded"):
            verdict.append("DEGRADED: optional features off", style="bold yellow")
        else:
            verdict.append("normal: all features on", style="bold green")
        verdict.append(f" ({switches} switches) · ")
    critical = next((row for row in rows if row.get("class") == 0), None)
    if critical is None:
        verdict.append("no checkouts yet", style="dim")
        return verdict
    lost = sum(int(critical.get(key, 0) or 0) for key in ("dropped", "shed", "sampled_out"))
    wait = fmt_seconds(critical.get("wait_p99_s"))
    received = fmt_count(critical.get("received", 0))
    if lost:
        verdict.append(f"CHECKOUTS LOST: {fmt_count(lost)} of {received}", style="bold red")
    else:
        verdict.append(f"checkouts safe: 0 lost of {received}", style="bold green")
    verdict.append(f", wait p99 {wait}")
    return verdict


# -- Module 14: rate limiting -----------------------------------------------------------------
def rate_limiting_panel(state: DashboardState, now: float) -> Optional[RenderableType]:
    snap = state.consumer
    if snap is None:
        return None
    history = history_of(state)
    producer, _ = _first_producer(state, now)
    rows: List[Tuple[str, Text]] = []
    rows.append(("limiter", _limiter_text(producer)))
    rows.append(("admission", _admission_text(snap, history)))
    rates = snap.get("rates") or {}
    capacity = _number(snap.get("service_rate"))
    offered = _number(rates.get("received"))
    admitted = _number(rates.get("accepted"))
    refused = _number(rates.get("shed"))
    if offered is not None and capacity:
        label = f"{fmt_rate(offered)} of {fmt_rate(capacity)} capacity ({offered / capacity:.0%})"
        rows.append(("offered", bar(offered, capacity, BAR_WIDTH, label)))
    else:
        rows.append(("offered", Text(f"{fmt_rate(offered)} (capacity unlimited)")))
    label = f"{fmt_rate(admitted)} admitted · {fmt_rate(refused)} refused"
    if admitted is not None and capacity:
        rows.append(("admitted", bar(admitted, capacity, BAR_WIDTH, label)))
    else:
        rows.append(("admitted", Text(label)))
    return _labelled(rows)


def _limiter_text(producer: Optional[Dict[str, Any]]) -> Text:
    if producer is None:
        return Text("no producer", style="dim")
    limiter = producer.get("limiter")
    if not isinstance(limiter, dict):
        return Text("none: the producer sends as it likes (--limit token-bucket)", style="dim")
    tokens, capacity = _number(limiter.get("tokens")), _number(limiter.get("capacity"))
    text = Text(f"{limiter.get('kind', '?')} ", style="bold cyan")
    if tokens is not None and capacity is not None:
        text.append(f"{tokens:.1f}/{capacity:g} tokens")
    text.append(f" +{fmt_rate(limiter.get('rate'))}")
    text.append(f" · delayed {fmt_count(limiter.get('delayed', 0))}")
    text.append(f" · waiting {fmt_count(producer.get('pending', 0))}")
    return text


def _admission_text(snap: Dict[str, Any], history: History) -> Text:
    policy = snap.get("policy_state") or {}
    if "bucket_capacity" not in policy:
        return Text(f"off: mode {snap.get('mode', '?')} (admit mode answers 429)", style="dim")
    tokens, capacity = _number(policy.get("tokens")), _number(policy.get("bucket_capacity"))
    empty = tokens is not None and tokens < 1
    text = Text("429 ", style="bold yellow" if empty else "bold cyan")
    if tokens is not None and capacity is not None:
        text.append(f"{tokens:.1f}/{capacity:g} tokens", style="bold yellow" if empty else "")
    text.append(f" +{fmt_rate(policy.get('bucket_rate'))}")
    limited_rate = counter_rate(history, "policy_state", "limited")
    text.append(f" · limited {fmt_count(policy.get('limited', 0))}")
    if limited_rate is not None:
        text.append(f" ({fmt_rate(limited_rate)})")
    return text


# -- Module 15: retry storms ------------------------------------------------------------------
BREAKER_STYLES = {"closed": "bold green", "open": "bold white on red", "half-open": "bold yellow"}
SLOW_RECOVERY_S = 10.0  # from here on, "recovering" is shown as a failure
RECOVERY_STYLES = {
    "before spike": "dim",
    "spike": "bold yellow",
    "recovering": "bold red",
    "recovered": "bold green",
}


def retry_storm_panel(state: DashboardState, now: float) -> Optional[RenderableType]:
    if state.consumer is None:
        return None
    producer, count = _first_producer(state, now)
    if producer is None:
        return Text("retries: no producer yet", style="dim")
    history = history_of(state)
    rows: List[Tuple[str, Text]] = []
    policy = Text(str(producer.get("retry", "?")), style="bold cyan")
    breaker = producer.get("breaker")
    amplification = _number(producer.get("retry_amplification"))
    if amplification:
        style = "bold red" if amplification >= 2 else "bold yellow" if amplification > 1.2 else ""
        policy.append(" · amplification ")
        policy.append(f"{amplification:.2f}", style=style)
        policy.append(" attempts per request")
    if count > 1:
        policy.append(f" (1 of {count} producers)", style="dim")
    rows.append(("retry", policy))
    if breaker is None:
        rows.append(("breaker", Text("none (--breaker adds one)", style="dim")))
    else:
        text = Text(f" {str(breaker).upper()} ", style=BREAKER_STYLES.get(breaker, "bold"))
        text.append(f" · {fmt_count(producer.get('breaker_rejected', 0))} failed fast")
        rows.append(("breaker", text))
    waste = Text(f"timed out {fmt_count(producer.get('timed_out', 0))} · ")
    late = producer.get("late_completions", 0)
    waste.append(f"late completions {fmt_count(late)}", style="yellow" if late else "")
    waste.append(f" (wasted work) · gave up {fmt_count(producer.get('gave_up', 0))}")
    rows.append(("timeouts", waste))
    response = producer.get("response")
    response = response if isinstance(response, dict) else {}
    if response.get("max_s") == 0:  # no request completed in the last few seconds
        response_line = Text("none completed lately · ", style="bold red")
    else:
        response_line = Text(f"p99 {fmt_seconds(response.get('p99_s'))} · ")
    response_line.append_text(_recovery_text(producer, history))
    rows.append(("response", response_line))
    return _labelled(rows)


def _recovery_text(producer: Dict[str, Any], history: History) -> Text:
    recovery = producer.get("recovery")
    if not isinstance(recovery, dict):
        return Text("recovery: -", style="dim")
    phase = str(recovery.get("state", "-"))
    style = RECOVERY_STYLES.get(phase, "")
    pid, uptime = str(producer.get("id", "")), _number(producer.get("uptime_s"))
    previous, history.last_phase[pid] = history.last_phase.get(pid), phase
    if phase != "recovering":
        history.recovering_since.pop(pid, None)  # a new spike starts a new clock
    elif uptime is not None:
        began, seen_end = history.recovering_since.setdefault(pid, (uptime, previous == "spike"))
        waited = uptime - began
        # A dashboard started after the spike knows only how long it has watched.
        after = "after the spike" if seen_end else "(at least)"
        if waited < SLOW_RECOVERY_S:
            return Text(f"recovering, {waited:.0f} s {after}", style="bold yellow")
        return Text(f"NOT RECOVERED {waited:.0f} s {after}", style=style)
    if phase == "recovered":
        return Text(
            f"recovered {fmt_seconds(recovery.get('recovery_s'))} after the spike", style=style
        )
    words = {"before spike": "before the spike", "spike": "SPIKE in progress"}
    return Text(words.get(phase, phase), style=style)


# -- Module 16: batching ---------------------------------------------------------------------
def batching_panel(state: DashboardState, now: float) -> Optional[RenderableType]:
    """Batch size, batches per second, time per batch, and what a message waits in all."""
    snap = state.consumer
    if snap is None:
        return None
    batching = snap.get("worker")
    if not isinstance(batching, dict) or batching.get("kind") != "batch":
        return Text("batching: off (this consumer serves one message at a time)", style="dim")
    rates = snap.get("rates") or {}
    done, capacity = _number(rates.get("processed")), _number(snap.get("service_rate"))
    limit = batching.get("batch_limit")
    size = Text(f"last {fmt_count(batching.get('last_batch'))} of up to {fmt_count(limit)}")
    mean = _number(batching.get("mean_batch"))
    if mean is not None:
        size.append(f" · mean {mean:.1f}")
    size.append(f" · linger {fmt_seconds((_number(batching.get('linger_ms')) or 0) / 1e3)}")
    cost = Text(
        f"{fmt_seconds((_number(batching.get('batch_ms')) or 0) / 1e3)} a batch "
        f"({batching.get('overhead_ms', 0):g} ms + {batching.get('item_ms', 0):g} ms each) · "
        f"{fmt_rate(batching.get('batches_per_s'))} batches"
    )
    rows: List[Tuple[str, Text]] = [("batch", size), ("cost", cost)]
    if done is not None and capacity:
        label = f"{fmt_rate(done)} of {fmt_rate(capacity)} at this batch size"
        rows.append(("done", bar(done, capacity, BAR_WIDTH, label)))
    latency = Text("message latency (arrival -> processed) ")
    p50, p99 = batching.get("latency_p50_s"), batching.get("latency_p99_s")
    latency.append(f"p50 {fmt_seconds(p50) if p50 is not None else '-'}")
    latency.append(f" · p99 {fmt_seconds(p99) if p99 is not None else '-'}", style="bold")
    rows.append(("latency", latency))
    return _labelled(rows)


# -- Module 17: consumer lag, scaling, bulkheads ---------------------------------------------
WORKLOAD_NAMES = {0: "likes", 1: "analytics"}


def consumer_lag_panel(state: DashboardState, now: float) -> Optional[RenderableType]:
    """Lag in messages and seconds, the workers, the database, and lag per workload."""
    snap = state.consumer
    if snap is None:
        return None
    pool = snap.get("worker")
    if not isinstance(pool, dict) or pool.get("kind") != "pool":
        pool = {"workers": 1, "busy": None, "idle": None, "groups": [], "scale_events": []}
    lag_s = _number(snap.get("oldest_age_s")) or 0.0
    lag = Text(f"{fmt_count(snap.get('depth', 0))} msgs · ", style="bold")
    lag.append(f"{fmt_seconds(lag_s)} oldest", style="bold red" if lag_s >= 1.0 else "bold")
    lag.append("  " + sparkline(state.lag_history, 20), style="magenta")
    workers = Text(f"{fmt_count(pool.get('workers'))} ")
    workers.append(f"(busy {fmt_count(pool.get('busy'))}, idle {fmt_count(pool.get('idle'))})")
    events = pool.get("scale_events") or []
    if events:
        at, what, count = events[-1]
        workers.append(f" · scaled {what} to {count} at {at:.0f} s", style="cyan")
    rows: List[Tuple[str, Text]] = [("lag", lag), ("workers", workers)]
    db = pool.get("db")
    if isinstance(db, dict):
        used = _number(db.get("utilisation")) or 0.0
        label = (
            f"{fmt_rate(db.get('ops_per_s'))} of {fmt_rate(db.get('capacity'))} · "
            f"op {fmt_seconds(db.get('latency_s'))} · {fmt_count(db.get('waiting'))} waiting"
        )
        rows.append(("database", bar(used, 1.0, BAR_WIDTH, label)))
    groups = [g for g in pool.get("groups") or [] if g.get("classes") is not None]
    if groups:
        text = Text()
        for group in groups:
            group_lag = _number(group.get("lag_s")) or 0.0
            style = "bold red" if group_lag >= 1.0 else "bold green"
            text.append(f"{group.get('name')} ", style="bold")
            text.append(f"{fmt_seconds(group_lag)}", style=style)
            text.append(f" ({fmt_count(group.get('workers'))} workers)  ")
        rows.append(("bulkheads", text))
    else:
        rows.append(("workloads", _workload_text(snap)))
    return _labelled(rows)


def _workload_text(snap: Dict[str, Any]) -> Text:
    text = Text()
    for row in (snap.get("classes") or [])[:2]:
        name = WORKLOAD_NAMES.get(row.get("class"), str(row.get("class")))
        text.append(f"{name} ", style="bold")
        text.append(f"wait p99 {fmt_seconds(row.get('wait_p99_s'))}  ")
    return text if text.plain else Text("no traffic yet", style="dim")


ModulePanel = Callable[["DashboardState", float], Optional[RenderableType]]
MODULE_PANELS: Dict[int, ModulePanel] = {
    13: load_shedding_panel,
    14: rate_limiting_panel,
    15: retry_storm_panel,
    16: batching_panel,
    17: consumer_lag_panel,
}
