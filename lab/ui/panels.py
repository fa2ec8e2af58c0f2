"""The dashboard panels of Modules 13, 14 and 15, drawn under the common ones.

Each panel is a pure function ``(DashboardState, now) -> renderable or None`` registered in
:data:`MODULE_PANELS`; it reads the typed snapshots the dashboard already holds
(``lab.core.telemetry``) and never does I/O. Per-class rates come from the consumer core
(``received_per_s``, ``processed_per_s``, ``lost_per_s`` in each class row); what a panel
must remember between redraws (:class:`PanelHistory`) lives in the ``DashboardState``,
timed by the consumer's own uptime so a slow redraw cannot distort a rate.

Every panel fits in five lines of 76 columns, so the whole dashboard still fits 80x24,
shows its state in words as well as colours (``NO_COLOR`` is honoured by rich), and
prints ``-`` for a field an older or different process does not send, ``n/a`` for a
latency with no sample in its window.

* 13, load shedding: per-class arrivals, completions, losses and queue wait, and whether
  the checkouts survive (or, in degrade mode, whether optional features are off); after a
  live mode switch the verdict judges the new mode since it began.
* 14, rate limiting: the producer's limiter, the consumer's admission bucket, and the
  offered and admitted load against the worker's capacity.
* 15, retry storms: retry policy and breaker state, retry amplification, timeouts and
  late completions (wasted work), response p99, and the recovery clock.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any, Callable, Deque, Dict, List, Optional, Sequence, Tuple

from rich.console import Group, RenderableType
from rich.text import Text

from lab.core.telemetry import ClassRow, ConsumerSnapshot, ProducerSnapshot
from lab.ui.textgrid import grid
from lab.ui.widgets import bar, fmt_count, fmt_rate, fmt_seconds, plural, sparkline

if TYPE_CHECKING:  # the dashboard imports this module: no import back at run time
    from lab.ui.dashboard import DashboardState

RATE_WINDOW_S = 1.0
HISTORY_KEEP_S = 3.0
PANEL_WIDTH = 76  # the inside of an 80-column dashboard
CLASS_LABELS = {0: "0 checkout", 1: "1 browse", 2: "2 optional"}
CLASS_COLUMNS = ("class", "in/s", "done/s", "lost/s", "lost", "queue p99", "verdict p99")
LOSSES = ("dropped", "shed", "sampled_out")
BAR_WIDTH = 22


# -- history: what a panel remembers between redraws -------------------------------------------
class PanelHistory:
    """The last few seconds of one admission counter (by the consumer's uptime, for its
    rate), and when each producer's recovery began. Held by the ``DashboardState``."""

    def __init__(self) -> None:
        self.session: Optional[str] = None
        self.limited: Deque[Tuple[float, float]] = deque()  # (uptime, 429s so far)
        # producer id -> (uptime its recovery began, whether we saw the spike end then)
        self.recovering_since: Dict[str, Tuple[float, bool]] = {}
        self.last_phase: Dict[str, str] = {}  # producer id -> recovery phase last seen

    def add_consumer(self, snap: ConsumerSnapshot) -> None:
        if snap["session"] != self.session:  # a restarted consumer starts its counters again
            self.session = snap["session"]
            self.limited.clear()
        uptime = snap["uptime_s"]
        if self.limited and uptime <= self.limited[-1][0]:
            return
        limited = limited_count(snap)
        if limited is None:
            self.limited.clear()
            return
        self.limited.append((uptime, float(limited)))
        while self.limited and uptime - self.limited[0][0] > HISTORY_KEEP_S:
            self.limited.popleft()

    def mode_switched(self) -> None:
        """A new policy counts from zero: a rate across the switch would be nonsense."""
        self.limited.clear()

    def limited_rate(self) -> Optional[float]:
        """429s per second over about the last second, or None until two samples."""
        if len(self.limited) < 2:
            return None
        newest_t, newest = self.limited[-1]
        older_t, older = self.limited[0]
        for t, value in self.limited:
            if newest_t - t >= RATE_WINDOW_S:
                older_t, older = t, value
        span = newest_t - older_t
        return max(0.0, (newest - older) / span) if span > 0 else None


def _first_producer(state: DashboardState, now: float) -> Tuple[Optional[ProducerSnapshot], int]:
    producers = state.live_producers(now)
    return (producers[0] if producers else None), len(producers)


def _labelled(rows: List[Tuple[str, Text]]) -> RenderableType:
    """Rows of a bold label (at least 9 columns) and its text, as lines that never wrap."""
    return Group(*grid(rows, "ll", gap=1, styles=("bold",), min_widths=(9,)))


def fitted(pieces: Sequence[Tuple[str, str]], width: int = PANEL_WIDTH) -> Text:
    """One line of ``(text, style)`` pieces, most important first: the last pieces go
    until the line fits ``width`` (a verdict that wraps pushes the frame off the screen)."""
    pieces = list(pieces)
    while len(pieces) > 1 and sum(len(text) for text, _ in pieces) > width:
        pieces.pop()
    line = Text(no_wrap=True, overflow="ellipsis")
    for text, style in pieces:
        line.append(text, style=style)
    return line


# -- Module 13: the flash sale ----------------------------------------------------------------
def _lost(row: Optional[ClassRow]) -> int:
    return 0 if row is None else sum(int(row[key]) for key in LOSSES)


def _rate(value: Optional[float]) -> str:
    return "-" if value is None else fmt_rate(value)


def load_shedding_panel(state: DashboardState, now: float) -> Optional[RenderableType]:
    snap = state.consumer
    if snap is None:
        return None
    rows = snap["classes"]
    if not rows:
        return Text("priority classes: no traffic yet", style="dim")
    producer, _ = _first_producer(state, now)
    verdict_p99 = {row["class"]: row["p99_s"] for row in producer["classes"]} if producer else {}
    lines = []
    for row in rows[:3]:
        cls = row["class"]
        style = "red" if cls == 0 and _lost(row) else ""
        waited = row["processed_per_s"] != 0 and row["wait_p99_s"]  # 0: none finished lately
        lines.append(
            [
                Text(CLASS_LABELS.get(cls, str(cls)), style="bold"),
                _rate(row["received_per_s"]),
                _rate(row["processed_per_s"]),
                Text(_rate(row["lost_per_s"]), style=style),
                Text(fmt_count(_lost(row)), style=style),
                fmt_seconds(row["wait_p99_s"]) if waited else "n/a",
                fmt_seconds(verdict_p99[cls]) if cls in verdict_p99 else "n/a" if producer else "-",
            ]
        )
    table = grid(lines, "lrrrrrr", header=CLASS_COLUMNS)
    return Group(*table, _class_verdict(state, snap))


def _class_verdict(state: DashboardState, snap: ConsumerSnapshot) -> Text:
    """Whether checkouts survive the current mode, since it began; the run's total after."""
    policy = snap["policy_state"]
    pieces: List[Tuple[str, str]] = []
    if "degraded" in policy:
        switches = policy.get("switches", 0)
        toggles = plural(int(switches) if isinstance(switches, (int, float)) else 0, "switch")
        if policy.get("degraded"):
            pieces.append(("DEGRADED: optional features off", "bold yellow"))
        else:
            pieces.append(("normal: all features on", "bold green"))
        pieces.append((f" ({toggles}) · ", ""))
    critical = next((row for row in snap["classes"] if row["class"] == 0), None)
    if critical is None:
        pieces.append(("no checkouts yet", "dim"))
        return fitted(pieces)
    start = state.mode_start if state.switched() else None
    before = start.classes.get(0) if start is not None else None
    lost = _lost(critical) - _lost(before)
    received = critical["received"] - (before["received"] if before else 0)
    since = "since switch: " if start is not None else ""
    if lost:
        pieces.append((f"{since}CHECKOUTS LOST: {lost:,} of {received:,}", "bold red"))
    else:
        pieces.append((f"{since}checkouts safe: 0 lost of {received:,}", "bold green"))
    waited = critical["processed_per_s"] != 0 and critical["wait_p99_s"]
    wait = fmt_seconds(critical["wait_p99_s"]) if waited else "n/a"
    if start is not None:
        pieces.append((f" · run {_lost(critical):,} of {critical['received']:,}", "dim"))
    pieces.append((f" · wait in queue p99 {wait}", ""))
    return fitted(pieces)


# -- Module 14: rate limiting -----------------------------------------------------------------
def rate_limiting_panel(state: DashboardState, now: float) -> Optional[RenderableType]:
    snap = state.consumer
    if snap is None:
        return None
    producer, _ = _first_producer(state, now)
    rows: List[Tuple[str, Text]] = []
    rows.append(("limiter", _limiter_text(producer)))
    rows.append(("admission", _admission_text(state, snap)))
    rates = snap["rates"]
    capacity = snap["service_rate"]
    offered, admitted, refused = rates["received"], rates["accepted"], rates["shed"]
    if capacity:
        label = f"{fmt_rate(offered)} of {fmt_rate(capacity)} capacity ({offered / capacity:.0%})"
        rows.append(("offered", bar(offered, capacity, BAR_WIDTH, label)))
    else:
        rows.append(("offered", Text(f"{fmt_rate(offered)} (capacity unlimited)")))
    label = f"{fmt_rate(admitted)} admitted · {fmt_rate(refused)} refused"
    if capacity:
        rows.append(("admitted", bar(admitted, capacity, BAR_WIDTH, label)))
    else:
        rows.append(("admitted", Text(label)))
    return _labelled(rows)


def _limiter_text(producer: Optional[ProducerSnapshot]) -> Text:
    if producer is None:
        return Text("no producer", style="dim")
    limiter = producer["limiter"]
    if limiter is None:
        return Text("none: the producer sends as it likes (--limit token-bucket)", style="dim")
    tokens, capacity = limiter["tokens"], limiter["capacity"]
    text = Text(f"{limiter['kind']} ", style="bold cyan")
    if tokens is not None and capacity is not None:
        text.append(f"{tokens:.1f}/{capacity:g} tokens")
    text.append(f" +{fmt_rate(limiter['rate'])}")
    text.append(f" · delayed {fmt_count(limiter['delayed'])}")
    waiting = producer["pending"]
    text.append(f" · waiting {fmt_count(waiting)}", style="bold yellow" if waiting else "")
    return text


def _admission_text(state: DashboardState, snap: ConsumerSnapshot) -> Text:
    policy = snap["policy_state"]
    if "bucket_capacity" not in policy:
        return Text(f"off: mode {snap['mode']} (admit mode answers 429)", style="dim")
    tokens, capacity = _number(policy.get("tokens")), _number(policy.get("bucket_capacity"))
    empty = tokens is not None and tokens < 1
    text = Text("429 ", style="bold yellow" if empty else "bold cyan")
    if tokens is not None and capacity is not None:
        text.append(f"{tokens:.1f}/{capacity:g} tokens", style="bold yellow" if empty else "")
    text.append(f" +{fmt_rate(policy.get('bucket_rate'))}")
    now_limited = limited_count(snap) or 0
    start = state.mode_start
    if state.switched() and start is not None:  # the new policy counts from zero
        text.append(f" · limited {now_limited + start.limited_before:,} total")
        text.append(f", {now_limited:,} since switch")
    else:
        text.append(f" · limited {now_limited:,}")
    limited_rate = state.panel_history.limited_rate()
    if limited_rate is not None:
        text.append(f" ({fmt_rate(limited_rate)})")
    return text


def limited_count(snap: Optional[ConsumerSnapshot]) -> Optional[int]:
    """The admission policy's count of 429s, or None when the mode has no such policy (the
    count starts again from zero whenever the policy is rebuilt: a live mode switch)."""
    value = None if snap is None else _number(snap["policy_state"].get("limited"))
    return None if value is None else int(value)


def _number(value: object) -> Optional[float]:
    """A policy's own status is free-form (``policy_state``): a number, or None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


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
    rows: List[Tuple[str, Text]] = []
    policy = Text(producer["retry"], style="bold cyan")
    breaker = producer["breaker"]
    amplification = producer["retry_amplification"]
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
        text = Text(f" {breaker.upper()} ", style=BREAKER_STYLES.get(breaker, "bold"))
        text.append(f" · {fmt_count(producer['breaker_rejected'])} failed fast")
        rows.append(("breaker", text))
    waste = Text(f"timed out {fmt_count(producer['timed_out'])} · ")
    late = producer["late_completions"]
    waste.append(f"late completions {fmt_count(late)}", style="yellow" if late else "")
    waste.append(f" (wasted work) · gave up {fmt_count(producer['gave_up'])}")
    rows.append(("timeouts", waste))
    response = producer["response"]
    if response is not None and response["max_s"] == 0:  # none completed in the window
        response_line = Text("none completed lately · ", style="bold red")
    else:
        p99 = fmt_seconds(response["p99_s"]) if response is not None else "-"
        response_line = Text(f"p99 {p99} · ")
    response_line.append_text(_recovery_text(producer, state.panel_history))
    rows.append(("response", response_line))
    return _labelled(rows)


def _recovery_text(producer: ProducerSnapshot, history: PanelHistory) -> Text:
    recovery = producer["recovery"]
    if recovery is None:
        return Text("recovery: -", style="dim")
    phase = recovery["state"]
    style = RECOVERY_STYLES.get(phase, "")
    pid, uptime = producer["id"], producer["uptime_s"]
    previous, history.last_phase[pid] = history.last_phase.get(pid), phase
    if phase != "recovering":
        history.recovering_since.pop(pid, None)  # a new spike starts a new clock
    else:
        began, seen_end = history.recovering_since.setdefault(pid, (uptime, previous == "spike"))
        waited = uptime - began
        # A dashboard started after the spike knows only how long it has watched.
        after = "after the spike" if seen_end else "(at least)"
        if waited < SLOW_RECOVERY_S:
            return Text(f"recovering, {waited:.0f} s {after}", style="bold yellow")
        return Text(f"NOT RECOVERED {waited:.0f} s {after}", style=style)
    if phase == "recovered":
        return Text(f"recovered {fmt_seconds(recovery['recovery_s'])} after the spike", style=style)
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


# -- Module 18: flow control over a slow link ------------------------------------------------
def flow_control_panel(state: DashboardState, now: float) -> Optional[RenderableType]:
    """The window, what is in flight (credit or demand out, on the link, in the buffer), and
    the throughput against its bound min(μ, W / (D there + D back + s)), which follows the
    live window and delays (the demo's keys); in ``--mode transport``, what hides in the
    transport's buffers instead."""
    snap = state.consumer
    if snap is None:
        return None
    if snap.get("transport"):
        return _labelled(transport_rows(snap["transport"]))
    producers = state.live_producers(now)
    window, there_s = _number(snap.get("limit")), (_number(snap.get("link_delay_ms")) or 0) / 1e3
    # the way back is the producers' delay line; a producer too old to say: the same delay
    backs = [b for b in (_number(p.get("link_delay_ms")) for p in producers) if b is not None]
    back_s = max(backs) / 1e3 if backs else there_s
    round_trip = there_s + back_s
    if round_trip == 0:
        link = "no delay either way (loopback)"
    elif back_s == there_s:
        link = f"{fmt_seconds(there_s)} each way, round trip {fmt_seconds(round_trip)}"
    else:
        link = f"{fmt_seconds(there_s)} there, {fmt_seconds(back_s)} back, round trip "
        link += fmt_seconds(round_trip)
    mu = _number(snap.get("service_rate"))
    done = _number((snap.get("rates") or {}).get("processed"))
    demand = snap.get("demand_outstanding")
    if demand is not None:  # pull: requested and not yet here
        out = f"demand out {fmt_count(demand)}"
    else:  # block: credit granted and not yet used
        out = f"credit out {fmt_count(snap.get('credit_outstanding'))}"
    flight = fitted(
        [
            (f"window {fmt_count(window)}", ""),
            (f" · {out}", ""),
            (f" · frames on the link {fmt_count(snap.get('on_link'))}", ""),
            (f" · buffered {fmt_count(snap.get('depth'))}", ""),
        ],
        PANEL_WIDTH - 10,  # the label's column
    )
    rows: List[Tuple[str, Text]] = [("link", Text(link)), ("in flight", flight)]
    if demand is not None:
        held = [p["demand"] for p in producers if p.get("demand") is not None]
        who = "the producers hold" if len(held) > 1 else "the producer holds"
        holds = fmt_count(sum(held)) if held else "-"
        rows.append(("demand", Text(f"{who} {holds} of it (asked for, not yet sent)")))
    if window and mu and done is not None:
        bound = min(mu, window / (round_trip + 1.0 / mu))
        label = f"{fmt_rate(done)} of the bound {fmt_rate(bound)} (μ {fmt_rate(mu)})"
        rows.append(("done", bar(done, bound, BAR_WIDTH, label)))
    return _labelled(rows)


def transport_rows(figures: Dict[str, Any]) -> List[Tuple[str, Text]]:
    """``--mode transport``: what the producer sent, what the consumer has, and the rest,
    hidden in ZeroMQ's queues and the kernel's (the application sees none of it)."""
    hidden = figures.get("hidden")
    blocked = figures.get("producer_blocked")
    return [
        ("sent", Text(f"{fmt_count(figures.get('sent'))} by the producer", style="bold")),
        (
            "received",
            Text(
                f"{fmt_count(figures.get('received'))} by the consumer · processed "
                f"{fmt_count(figures.get('processed'))}"
            ),
        ),
        ("hidden", Text(f"{fmt_count(hidden)} in transport buffers", style="bold red")),
        (
            "kernel",
            Text(
                f"Send-Q {fmt_count(figures.get('send_q'))} B · Recv-Q "
                f"{fmt_count(figures.get('recv_q'))} B (hwm {fmt_count(figures.get('hwm'))})"
            ),
        ),
        (
            "producer",
            Text("blocked: its send is refused" if blocked else "sending", style="yellow"),
        ),
        ("if killed", Text(f"{fmt_count(figures.get('lost_if_killed'))} lost, unseen")),
    ]


# -- Module 17: consumer lag, scaling, bulkheads ---------------------------------------------
WORKLOAD_NAMES = {0: "likes", 1: "analytics"}


def consumer_lag_panel(state: DashboardState, now: float) -> Optional[RenderableType]:
    """Lag in messages and seconds, the workers, the database, and lag per workload."""
    snap = state.consumer
    if snap is None:
        return None
    pool = snap.get("worker")
    if not isinstance(pool, dict) or pool.get("kind") != "pool":
        pool = {"workers": 1, "busy": None, "idle": None}
    lag_s = _number(snap.get("oldest_age_s")) or 0.0
    lag = Text(f"{fmt_count(snap.get('depth', 0))} msgs · ", style="bold")
    lag.append(f"{fmt_seconds(lag_s)} oldest", style="bold red" if lag_s >= 1.0 else "bold")
    lag.append("  " + sparkline(state.lag_history, 20), style="magenta")
    workers = Text(f"{fmt_count(pool.get('workers'))} ")
    workers.append(f"(busy {fmt_count(pool.get('busy'))}, idle {fmt_count(pool.get('idle'))})")
    if pool.get("scaled_at_s") is not None:
        workers.append(
            f" · scaled {pool.get('scaled')} to {fmt_count(pool.get('scaled_to'))} "
            f"at {pool['scaled_at_s']:.0f} s",
            style="cyan",
        )
    rows: List[Tuple[str, Text]] = [("lag", lag), ("workers", workers)]
    if pool.get("db_capacity"):
        used = _number(pool.get("db_utilisation")) or 0.0
        label = (
            f"{fmt_rate(pool.get('db_ops_per_s'))} of {fmt_rate(pool.get('db_capacity'))} · "
            f"op {fmt_seconds(pool.get('db_latency_s'))} · "
            f"{fmt_count(pool.get('db_waiting'))} waiting"
        )
        rows.append(("database", bar(used, 1.0, BAR_WIDTH, label)))
    groups = [g for g in snap.get("worker_groups") or [] if g.get("classes") is not None]
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


# -- Module 20: the queue in the middle ---------------------------------------------------------
LAG_WARN_S = 1.0  # lag in seconds from here on is shown as trouble


def broker_panel(state: DashboardState, now: float) -> Optional[RenderableType]:
    """The broker's own figures (read by the consumer from XINFO and INFO memory): memory
    against the cap, the stream and what MAXLEN trimmed, the group's lag, and the
    producer's refusals and throttle."""
    snap = state.consumer
    if snap is None:
        return None
    figures = snap.get("broker")
    if not isinstance(figures, dict):
        return Text("broker: this consumer sends no broker figures", style="dim")
    producer, _ = _first_producer(state, now)
    rows: List[Tuple[str, Text]] = [("broker", _memory_text(figures))]
    stream = Text(f"length {fmt_count(_number(figures.get('length')))} · ")
    maxlen = _number(figures.get("maxlen"))
    stream.append(f"MAXLEN ~{fmt_count(maxlen)}" if maxlen else "no MAXLEN")
    trimmed = _number(figures.get("trimmed")) or 0
    stream.append(f" · trimmed {fmt_count(trimmed)}", style="bold yellow" if trimmed else "")
    stream.append(" (never read)" if trimmed else "")
    rows.append(("stream", stream))
    lag_s, lag = _number(figures.get("lag_s")), _number(figures.get("lag_messages"))
    trouble = lag_s is not None and lag_s >= LAG_WARN_S
    lag_line = Text(
        f"{fmt_count(lag)} msgs · {fmt_seconds(lag_s)}", style="bold red" if trouble else "bold"
    )
    lag_line.append(f" · pending {fmt_count(_number(figures.get('pending')))}")
    lag_line.append(f" · {fmt_count(_number(figures.get('consumers')))} in the group")
    rows.append(("lag", lag_line))
    rows.append(("latency", _latency_text(figures)))
    rows.append(("producer", _stream_producer_text(producer)))
    delivery = Text(f"processed {fmt_count(_number(figures.get('processed')))}")
    duplicates = _number(figures.get("duplicates")) or 0
    delivery.append(f" · duplicates {fmt_count(duplicates)}", style="yellow" if duplicates else "")
    delivery.append(f" · redelivered {fmt_count(_number(figures.get('redelivered')))}")
    rows.append(("delivery", delivery))
    return _labelled(rows)


def _latency_text(figures: Dict[str, Any]) -> Text:
    """Add -> processed per message, over the last 5 s (the consumer measures it)."""
    p50, p99 = _number(figures.get("latency_p50_ms")), _number(figures.get("latency_p99_ms"))
    if p50 is None or p99 is None:
        return Text("none processed in the last 5 s", style="dim")
    text = Text(f"p50 {p50:,.0f} ms · ")
    text.append(f"p99 {p99:,.0f} ms", style="bold red" if p99 >= LAG_WARN_S * 1e3 else "bold")
    text.append(" · add -> processed, last 5 s", style="dim")
    return text


def _memory_text(figures: Dict[str, Any]) -> Text:
    if figures.get("state") == "down":
        return Text(" BROKER DOWN ", style="bold white on red")
    used, cap = _number(figures.get("used_memory")), _number(figures.get("maxmemory"))
    if used is None:
        return Text("no figures yet", style="dim")
    mb = 1024 * 1024
    if not cap:
        text = Text(f"{used / mb:.1f} MB, no maxmemory")
    else:
        text = bar(used, cap, BAR_WIDTH, f"{used / mb:.1f}/{cap / mb:.0f} MB")
    text.append(f" · {figures.get('maxmemory_policy', '?')}")
    evicted = _number(figures.get("evicted_keys")) or 0
    text.append(f" · evicted {fmt_count(evicted)}", style="bold red" if evicted else "")
    return text


def _stream_producer_text(producer: Optional[Dict[str, Any]]) -> Text:
    if producer is None:
        return Text("no producer yet", style="dim")
    totals = producer.get("totals") if isinstance(producer.get("totals"), dict) else {}
    extra = producer.get("broker") if isinstance(producer.get("broker"), dict) else {}
    if extra.get("state") == "down":
        return Text(" BROKER DOWN: retrying ", style="bold white on red")
    text = Text(f"added {fmt_count(_number(totals.get('added')))}")
    refused = _number(totals.get("refused")) or 0
    text.append(f" · refused {fmt_count(refused)}", style="bold red" if refused else "")
    if refused:
        text.append(" (OOM)", style="bold red")
    text.append(f" · target {fmt_rate(_number(producer.get('target_mps')))}")
    if extra.get("throttle") is True:
        text.append(" · throttle on lag", style="bold cyan")
    return text


ModulePanel = Callable[["DashboardState", float], Optional[RenderableType]]


# -- any module: the producer's adaptive concurrency limit (--limit-algorithm) ----------------
def concurrency_row(producer: Optional[ProducerSnapshot]) -> Tuple[str, Text]:
    """One dashboard row: the producer's concurrency limit, what is outstanding against it,
    and the round trips it is steered by (any module's panel may show it)."""
    state = producer["concurrency"] if producer is not None else None
    if state is None:
        return ("limit", Text("none: no adaptive limit (--limit-algorithm aimd|gradient)", "dim"))
    limit, outstanding = state["limit"], state["outstanding"]
    answers = state["answers"]
    mean_rtt = state["rtt_sum_s"] / answers if answers else None
    pieces = [
        (f"{state['algorithm']} ", "bold cyan"),
        (f"{outstanding}/{limit} out", "bold yellow" if outstanding >= limit else ""),
        (f" · rtt mean {_ms_text(mean_rtt)}", ""),
        (f" · min {_ms_text(state['rtt_min_s'])}", "dim"),
    ]
    if state["rtt_noload_s"] is not None:
        pieces.append((f" · no-load {_ms_text(state['rtt_noload_s'])}", "dim"))
    return ("limit", fitted(pieces))


def _ms_text(seconds: Optional[float]) -> str:
    return "-" if seconds is None else f"{seconds * 1e3:.0f} ms"


# -- Module 19: queue discipline, deadlines and goodput -----------------------------------------
def goodput_panel(state: DashboardState, now: float) -> Optional[RenderableType]:
    """Goodput next to throughput, the waste, the drops at dequeue, the queue's age, the
    discipline's state (CoDel's dropping and count, adaptive LIFO's direction) and the
    producer's concurrency limit when it has one."""
    snap = state.consumer
    if snap is None:
        return None
    rates, totals = snap.get("rates") or {}, snap.get("totals") or {}
    processed, good = _number(rates.get("processed")) or 0.0, _number(rates.get("goodput"))
    share = None if good is None or processed <= 0 else good / processed
    style = "bold green" if share is not None and share >= 0.8 else "bold red"
    rows: List[Tuple[str, Text]] = [
        ("goodput", bar(share or 0.0, 1.0, BAR_WIDTH, f"{_rate(good)} of {_rate(processed)}")),
        ("", Text("within the deadline, of what was processed", style=style)),
        (
            "totals",
            Text(
                f"goodput {fmt_count(totals.get('goodput'))} · wasted "
                f"{fmt_count(totals.get('wasted'))} · dropped at dequeue "
                f"{fmt_count(totals.get('dequeue_dropped'))}"
            ),
        ),
        ("queue age", Text(f"{fmt_seconds(_number(snap.get('oldest_age_s')) or 0.0)} oldest")),
        ("discipline", _discipline_text(snap.get("discipline"))),
        concurrency_row(_first_producer(state, now)[0]),
    ]
    return _labelled(rows)


def _discipline_text(status: Any) -> Text:
    if not isinstance(status, dict):
        return Text("-")
    text = Text(str(status.get("discipline", "-")), style="bold")
    if "dropping" in status:
        state = "dropping" if status.get("dropping") else "not dropping"
        text.append(
            f" · {state}, count {fmt_count(status.get('count'))} · sojourn "
            f"{status.get('sojourn_ms', 0):.0f} ms (target {status.get('target_ms', 0):g} ms)"
        )
    elif "lifo" in status:
        text.append(f" · {'LIFO (overloaded)' if status.get('lifo') else 'FIFO (short queue)'}")
    elif "drops" in status:
        text.append(f" · {fmt_count(status.get('drops'))} past or near their deadline")
    return text


MODULE_PANELS: Dict[int, ModulePanel] = {
    13: load_shedding_panel,
    14: rate_limiting_panel,
    15: retry_storm_panel,
    16: batching_panel,
    17: consumer_lag_panel,
    18: flow_control_panel,
    19: goodput_panel,
    20: broker_panel,
}
