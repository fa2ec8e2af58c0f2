"""The dashboard: what the visualizer draws, as a pure function of the snapshots it has seen.

:class:`DashboardState` collects telemetry snapshots (consumer and producers) and keeps a
short history for the sparklines; :func:`render` turns it into a rich renderable;
:func:`plain_line` is the one-line form for logs and non-terminal output. Nothing here
reads a socket or a clock: ``now`` is passed in, so the dashboard can be tested exactly.

Design rules, because a room reads it from ten metres away:

* the buffer gauge is the biggest thing on screen, green below half full, yellow below
  90%, red above;
* every number has its unit, and counts use thousands separators;
* the bottom line says in words what is happening (the lesson's insight), and it changes
  as the mode and the load change;
* at 80x24 everything fits; below that, the least important parts go first.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any, Deque, Dict, List, Optional, Tuple

from rich.console import RenderableType
from rich.text import Text

from lab.ui.panels import MODULE_PANELS
from lab.ui.textgrid import Cell, Framed, beside, grid, line, width_of
from lab.ui.widgets import (
    fmt_count,
    fmt_rate,
    fmt_seconds,
    gauge,
    memory_gauge,
    sparkline,
)

HISTORY_SECONDS = 60
STALE_AFTER_S = 2.0
PRODUCER_GONE_AFTER_S = 3.0


class DashboardState:
    """The latest snapshots, the history behind the sparklines, and the connection status."""

    def __init__(self, module: int, title: str, port: int) -> None:
        self.module = module
        self.title = title
        self.port = port
        self.consumer: Optional[Dict[str, Any]] = None
        self.consumer_seen_at: Optional[float] = None
        self.producers: Dict[str, Dict[str, Any]] = {}
        self.producer_seen_at: Dict[str, float] = {}
        self.depth_history: Deque[float] = deque(maxlen=HISTORY_SECONDS * 2)
        self.processed_history: Deque[float] = deque(maxlen=HISTORY_SECONDS * 2)
        self.received_history: Deque[float] = deque(maxlen=HISTORY_SECONDS * 2)
        self.lag_history: Deque[float] = deque(maxlen=HISTORY_SECONDS * 2)  # oldest age, s
        self._next_sample = -math.inf
        self.snapshots = 0
        self.malformed = 0
        self.sessions_seen: List[str] = []
        self.key_legend: Optional[str] = None  # set by the demo when keys work
        self.disconnected_at: Optional[float] = None  # the telemetry connection closed

    # -- input -------------------------------------------------------------------------------
    def update(self, snapshot: Dict[str, Any], now: float) -> None:
        """Take one decoded snapshot (see ``protocol.decode_snapshot``)."""
        self.snapshots += 1
        if snapshot["role"] == "consumer":
            if snapshot.get("module") not in (None, self.module):
                return
            session = snapshot.get("session")
            if isinstance(session, str) and session not in self.sessions_seen:
                self.sessions_seen.append(session)
            self.consumer = snapshot
            self.consumer_seen_at = now
            self._sample_history(snapshot, now)
        else:
            self.producers[snapshot["id"]] = snapshot
            self.producer_seen_at[snapshot["id"]] = now

    def count_malformed(self) -> None:
        self.malformed += 1

    def connection_lost(self, now: float) -> None:
        """The visualizer saw its connection to the consumer close: down now, not in 2 s."""
        self.disconnected_at = now

    # -- derived -----------------------------------------------------------------------------
    def consumer_status(self, now: float) -> str:
        """``waiting`` (never seen), ``up``, or ``down`` (seen, then silent)."""
        if self.consumer_seen_at is None:
            return "waiting"
        if self.disconnected_at is not None and self.disconnected_at >= self.consumer_seen_at:
            return "down"
        return "up" if now - self.consumer_seen_at <= STALE_AFTER_S else "down"

    def live_producers(self, now: float) -> List[Dict[str, Any]]:
        return [
            snap
            for pid, snap in sorted(self.producers.items())
            if now - self.producer_seen_at[pid] <= PRODUCER_GONE_AFTER_S
        ]

    def _sample_history(self, snapshot: Dict[str, Any], now: float) -> None:
        if now < self._next_sample:
            return
        self._next_sample = now + 0.5
        rates = snapshot.get("rates", {})
        self.depth_history.append(float(snapshot.get("depth", 0)))
        self.processed_history.append(float(rates.get("processed", 0.0)))
        self.received_history.append(float(rates.get("received", 0.0)))
        self.lag_history.append(float(snapshot.get("oldest_age_s", 0.0)))


# -- insight -----------------------------------------------------------------------------------
def insight(state: DashboardState, now: float) -> Tuple[str, str]:
    """The lesson in one line, and its style."""
    status = state.consumer_status(now)
    if status == "waiting":
        return (f"waiting for the consumer on port {state.port} ...", "bold yellow")
    if status == "down":
        return (
            f"consumer down: no telemetry for {now - state.consumer_seen_at:.0f} s "
            f"(waiting on port {state.port})",
            "bold red",
        )
    snap = state.consumer or {}
    rates = snap.get("rates", {})
    mode = snap.get("mode", "?")
    received, processed = rates.get("received", 0.0), rates.get("processed", 0.0)
    dropped = rates.get("dropped", 0.0)
    producers = state.live_producers(now)
    if snap.get("stopped_by") == "memory_guard":
        return (
            "MEMORY GUARD: the unbounded queue ate the memory; a real service would "
            "have been OOM-killed here",
            "bold white on red",
        )
    if not producers and received == 0:
        return ("consumer idle: start a producer", "bold cyan")
    if mode == "block":
        waiting = any((p.get("credit") == 0 and p.get("pending", 0) > 0) for p in producers)
        if waiting:
            p99 = max((p.get("latency", {}).get("p99_s", 0.0) for p in producers), default=0.0)
            return (
                f"BACKPRESSURE: producer waits for credit, {fmt_rate(dropped)} dropped, "
                f"latency p99 {fmt_seconds(p99)}",
                "bold cyan",
            )
        return ("backpressure armed: the producer fits in its credit", "bold green")
    if mode == "unbounded":
        depth = snap.get("depth", 0)
        return (
            f"UNBOUNDED: {depth:,} queued and growing by {max(0.0, received - processed):,.0f}/s; "
            f"RSS {snap.get('rss_mb', 0):.0f} MB",
            "bold magenta",
        )
    if mode == "sample" and rates.get("sampled_out", 0) > 0:
        return (f"SAMPLING: {fmt_rate(rates['sampled_out'])} sampled out to keep up", "bold yellow")
    if rates.get("shed", 0) > 0 and dropped == 0:  # shed, priority-shed, admit, ...
        return (
            f"SHEDDING: {fmt_rate(rates['shed'])} rejected back with retry-after",
            "bold yellow",
        )
    if dropped > 0:
        share = dropped / received if received else 0.0
        return (
            f"OVERWHELMED and DROPPING: {fmt_rate(received)} in, {fmt_rate(processed)} "
            f"processed, {share:.0%} dropped",
            "bold white on red",
        )
    lag = float(snap.get("oldest_age_s", 0.0))
    if lag >= 1.0 and received > processed * 1.05:
        return (
            f"FALLING BEHIND: lag {fmt_seconds(lag)} and growing by "
            f"{fmt_rate(received - processed)}: {fmt_rate(received)} in, "
            f"{fmt_rate(processed)} done",
            "bold yellow",
        )
    return ("healthy: the consumer keeps up", "bold green")


# -- the screen --------------------------------------------------------------------------------
def render(state: DashboardState, now: float, width: int = 80, height: int = 24) -> RenderableType:
    """The whole dashboard for a terminal of ``width`` x ``height``.

    Everything but the insight and the key legend is a line that never wraps
    (``lab.ui.textgrid``): cheap to draw, and a table keeps its shape in a narrow terminal.
    """
    message, style = insight(state, now)
    parts: List[RenderableType] = []
    snap = state.consumer if state.consumer_status(now) != "waiting" else None
    if snap is not None:
        inner = width - 4  # the panel's border and padding
        parts.extend(_buffer_section(state, snap, max(10, width - 34)))
        parts.extend(_tables(state, snap, now, inner, height))
        if height >= 24:
            producers = state.live_producers(now)
            if len(producers) > 1:
                parts.extend(_producer_table(producers))
            panel = MODULE_PANELS.get(state.module)
            extra = panel(state, now) if panel else None
            if extra is not None:
                parts.append(extra)
            events = _events(snap, producers)
            # A module's own panel comes first; the event lines fit beside it from 30 rows.
            if events and height >= (30 if extra is not None else 22):
                parts.extend(events)
    parts.append(Text(message, style=style))
    if state.key_legend and height >= 20:
        parts.append(Text(state.key_legend, style="dim"))
    return Framed(
        parts,
        title=_title(state, snap, now),
        border_style="red" if state.consumer_status(now) == "down" else "blue",
    )


def _title(state: DashboardState, snap: Optional[Dict[str, Any]], now: float) -> Text:
    title = Text(f" Module {state.module}: {state.title} ", style="bold")
    if snap is not None:
        title.append(f"· mode {str(snap.get('mode', '?')).upper()} ", style="bold reverse")
        title.append(f" · port {state.port} · up {snap.get('uptime_s', 0):.0f} s ", style="")
    return title


def labelled(label: str, content: Text) -> Text:
    """A row of the buffer section: a bold label in a 10-column gutter, then the content."""
    return line((f"{label:<10} ", "bold"), content)


def _buffer_section(state: DashboardState, snap: Dict[str, Any], bar_width: int) -> List[Text]:
    capacity = snap.get("capacity")
    rows = [labelled("BUFFER", gauge(int(snap.get("depth", 0)), capacity, bar_width))]
    if capacity is None:
        rows.append(labelled("MEMORY", memory_gauge(snap, bar_width)))
    limit = snap.get("limit")
    extra = f"  limit {limit:,}" if capacity and limit and limit < capacity else ""
    oldest = f"waiting {fmt_seconds(snap.get('oldest_age_s', 0.0))}{extra}"
    rows.append(labelled("oldest", Text(oldest)))
    ceiling = capacity or (max(state.depth_history) if state.depth_history else 1)
    depth = sparkline(state.depth_history, bar_width, ceiling)
    top = max(list(state.received_history) + list(state.processed_history) + [1.0])
    received = sparkline(state.received_history, bar_width, top)
    processed = sparkline(state.processed_history, bar_width, top)
    rows.append(labelled("depth", Text(depth, style="yellow")))
    rows.append(labelled("in/s", Text(received, style="cyan")))
    rows.append(labelled("done/s", Text(processed, style="green")))
    return rows


COUNTER_ROWS = (
    ("received", "received", ""),
    ("accepted", "accepted", ""),
    ("processed", "processed", "green"),
    ("Dropped", "dropped", "red"),
    ("sampled out", "sampled_out", "yellow"),
    ("shed", "shed", "yellow"),
)


def _tables(state, snap, now, width: int, height: int) -> List[Text]:
    """The consumer's counters beside the producer's latency. In a narrow terminal the
    least important latency rows go first; if it still does not fit, the two blocks are
    stacked when the terminal is tall enough, and cut at the right edge when not."""
    counters = _counter_lines(snap)
    room = width - width_of(counters) - 3  # what the latency block may take beside them
    rows = _latency_rows(state, snap, now)
    latency = _latency_lines(rows)
    for label in EXTRA_LATENCY_ROWS:
        if width_of(latency) <= room:
            break
        rows = [row for row in rows if row[0] != label]
        latency = _latency_lines(rows)
    if width_of(latency) <= room or height < 30:
        return beside(counters, latency, gap=3)
    return counters + latency


def _counter_lines(snap: Dict[str, Any]) -> List[Text]:
    rates, totals = snap.get("rates", {}), snap.get("totals", {})
    rows: List[List[Cell]] = []
    for label, key, style in COUNTER_ROWS:
        rows.append(
            [
                Text(label, style=f"bold {style}".strip()),
                Text(fmt_count(totals.get(key, 0)), style=style if totals.get(key) else ""),
                fmt_rate(rates.get(key, 0.0)),
            ]
        )
    rows.append([Text("malformed", style="bold"), fmt_count(snap.get("malformed", 0)), ""])
    return grid(rows, "lrr", header=("consumer", "total", "rate"))


# The rows of the latency block a narrow terminal drops first, least important first.
EXTRA_LATENCY_ROWS = ("CPU", "memory", "sent", "waiting upstream")


def _latency_rows(state: DashboardState, snap: Dict[str, Any], now: float) -> List[Tuple[str, str]]:
    producers = state.live_producers(now)
    worst = _worst_latency(producers)
    rows: List[Tuple[str, str]] = [
        (key.split("_")[0], fmt_seconds(worst.get(key)) if worst else "-")
        for key in ("p50_s", "p95_s", "p99_s", "max_s")
    ]
    rows.append(("queue wait p99", fmt_seconds(snap.get("queue_wait", {}).get("p99_s"))))
    if producers and snap.get("mode") == "block":
        waiting = sum(int(p.get("pending", 0)) for p in producers)
        rows.append(("waiting upstream", f"{waiting:,} msgs"))
    if producers:
        target = sum(p.get("target_mps") or 0 for p in producers)
        sent = sum(p.get("rates", {}).get("produced", 0.0) for p in producers)
        rows.append(("sent", f"{fmt_rate(sent)} of {fmt_rate(target)}"))
        producer_rss = max(p.get("rss_mb", 0) for p in producers)
        rows.append(("memory", f"C {snap.get('rss_mb', 0):.0f} MB · P {producer_rss:.0f} MB"))
    else:
        rows.append(("sent", "no producer"))
        rows.append(("memory", f"C {snap.get('rss_mb', 0):.0f} MB"))
    rows.append(("CPU", f"C {snap.get('cpu_pct', 0):.0f}%"))
    return rows


def _latency_lines(rows: List[Tuple[str, str]]) -> List[Text]:
    return grid(rows, "lr", header=("producer latency", ""), styles=("bold",))


def _worst_latency(producers: List[Dict[str, Any]]) -> Dict[str, float]:
    if not producers:
        return {}
    return max((p.get("latency", {}) for p in producers), key=lambda lat: lat.get("p99_s", 0.0))


PRODUCER_COLUMNS = ("producer", "sent/s", "accepted", "dropped", "shed", "p99", "credit")


def _producer_table(producers: List[Dict[str, Any]]) -> List[Text]:
    rows = []
    for p in producers:
        totals = p.get("totals", {})
        rows.append(
            [
                str(p.get("name", p.get("id")))[:18],
                fmt_rate(p.get("rates", {}).get("produced", 0.0)),
                fmt_count(totals.get("accepted", 0)),
                fmt_count(totals.get("dropped", 0)),
                fmt_count(totals.get("shed", 0)),
                fmt_seconds(p.get("latency", {}).get("p99_s")),
                "-" if p.get("credit") is None else fmt_count(p["credit"]),
            ]
        )
    return grid(rows, "lrrrrrr", header=PRODUCER_COLUMNS)


def _events(snap, producers) -> List[Text]:
    lines = [text for _, text in (snap.get("events") or [])[-2:]]
    for producer in producers:
        lines.extend(text for _, text in (producer.get("events") or [])[-1:])
    return [line((f"· {text}", "dim")) for text in lines[-3:]]


# -- plain output ------------------------------------------------------------------------------
def plain_line(state: DashboardState, now: float) -> str:
    """One line for a log or a pipe: the same facts as the dashboard, no drawing."""
    message, _ = insight(state, now)
    snap = state.consumer
    if snap is None or state.consumer_status(now) != "up":
        return message
    rates, totals = snap.get("rates", {}), snap.get("totals", {})
    worst = _worst_latency(state.live_producers(now))
    capacity = snap.get("capacity")
    return (
        f"[{snap.get('uptime_s', 0):7.1f}s] mode={snap.get('mode')} "
        f"depth={snap.get('depth', 0)}/{capacity if capacity is not None else 'inf'} "
        f"in={rates.get('received', 0):.1f}/s processed={rates.get('processed', 0):.1f}/s "
        f"dropped={totals.get('dropped', 0)} sampled_out={totals.get('sampled_out', 0)} "
        f"shed={totals.get('shed', 0)} latency_p99={fmt_seconds(worst.get('p99_s'))} "
        f"rss={snap.get('rss_mb', 0):.0f}MB | {message}"
    )
