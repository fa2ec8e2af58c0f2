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
from typing import Any, Callable, Deque, Dict, List, Optional, Tuple

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

SPARK_CHARS = "▁▂▃▄▅▆▇█"
HISTORY_SECONDS = 60
STALE_AFTER_S = 2.0
PRODUCER_GONE_AFTER_S = 3.0

ModulePanel = Callable[["DashboardState", float], Optional[RenderableType]]
MODULE_PANELS: Dict[int, ModulePanel] = {}  # modules add their own panels here


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


# -- formatting helpers ------------------------------------------------------------------------
def sparkline(values, width: int, ceiling: Optional[float] = None) -> str:
    """The last ``width`` values as block characters, scaled to ``ceiling`` (or the max)."""
    values = list(values)[-width:]
    if not values:
        return ""
    top = ceiling if ceiling else max(values)
    if top <= 0:
        return SPARK_CHARS[0] * len(values)
    steps = len(SPARK_CHARS) - 1
    return "".join(SPARK_CHARS[min(steps, max(0, round(v / top * steps)))] for v in values)


def fmt_count(value: Any) -> str:
    return f"{int(value):,}" if isinstance(value, (int, float)) else "-"


def fmt_rate(value: Any) -> str:
    if not isinstance(value, (int, float)):
        return "-"
    return f"{value:,.0f}/s" if value >= 100 else f"{value:,.1f}/s"


def fmt_seconds(value: Any) -> str:
    """A duration with a unit a person reads at a glance: 850 us, 12 ms, 4.9 s."""
    if not isinstance(value, (int, float)):
        return "-"
    if value >= 1.0:
        return f"{value:.1f} s"
    if value >= 0.001:
        return f"{value * 1e3:.0f} ms"
    return f"{value * 1e6:.0f} µs"


def gauge_color(fill: float) -> str:
    if fill >= 0.9:
        return "red"
    if fill >= 0.5:
        return "yellow"
    return "green"


def bar(value: float, ceiling: float, width: int, label: str) -> Text:
    """A horizontal bar of ``value`` out of ``ceiling``, coloured by how full it is."""
    fill = max(0.0, min(1.0, value / ceiling)) if ceiling > 0 else 0.0
    filled = round(fill * width)
    color = gauge_color(fill)
    text = Text("█" * filled, style=f"bold {color}")
    text.append("░" * (width - filled), style="dim")
    text.append(f" {label}", style=f"bold {color}")
    return text


def gauge(depth: int, capacity: Optional[int], width: int) -> Text:
    if capacity is None:
        text = Text("unbounded ", style="bold magenta")
        text.append(f"{depth:,} queued", style="bold")
        return text
    fill = depth / capacity if capacity > 0 else 0.0
    return bar(depth, capacity, width, f"{depth:,}/{capacity:,} ({min(fill, 1.0):.0%})")


def memory_gauge(snap: Dict[str, Any], width: int) -> Text:
    """RSS against the memory guard: how close the unbounded queue is to being stopped."""
    rss, guard = float(snap.get("rss_mb", 0.0)), snap.get("max_memory_mb")
    if not guard:
        return Text(f"{rss:.0f} MB")
    return bar(rss, guard, width, f"{rss:.0f}/{guard:.0f} MB")


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
                f"BACKPRESSURE: producer waits for credit, 0 dropped, latency p99 "
                f"{fmt_seconds(p99)}",
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
    return ("healthy: the consumer keeps up", "bold green")


# -- the screen --------------------------------------------------------------------------------
def render(state: DashboardState, now: float, width: int = 80, height: int = 24) -> RenderableType:
    """The whole dashboard for a terminal of ``width`` x ``height``."""
    message, style = insight(state, now)
    parts: List[RenderableType] = []
    snap = state.consumer if state.consumer_status(now) != "waiting" else None
    if snap is not None:
        bar_width = max(10, width - 34)
        parts.append(_buffer_section(state, snap, now, bar_width))
        parts.append(_tables(state, snap, now, width))
        if height >= 24:
            producers = state.live_producers(now)
            if len(producers) > 1:
                parts.append(_producer_table(producers))
            panel = MODULE_PANELS.get(state.module)
            extra = panel(state, now) if panel else None
            if extra is not None:
                parts.append(extra)
            events = _events(snap, producers)
            # A module's own panel comes first; the event lines fit beside it from 30 rows.
            if events is not None and height >= (30 if extra is not None else 22):
                parts.append(events)
    parts.append(Text(message, style=style))
    if state.key_legend and height >= 20:
        parts.append(Text(state.key_legend, style="dim"))
    return Panel(
        Group(*parts),
        title=_title(state, snap, now),
        title_align="left",
        border_style="red" if state.consumer_status(now) == "down" else "blue",
        padding=(0, 1),
    )


def _title(state: DashboardState, snap: Optional[Dict[str, Any]], now: float) -> Text:
    title = Text(f" Module {state.module}: {state.title} ", style="bold")
    if snap is not None:
        title.append(f"· mode {str(snap.get('mode', '?')).upper()} ", style="bold reverse")
        title.append(f" · port {state.port} · up {snap.get('uptime_s', 0):.0f} s ", style="")
    return title


def _buffer_section(state, snap, now, bar_width: int) -> RenderableType:
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="bold", width=10)
    grid.add_column()
    capacity = snap.get("capacity")
    grid.add_row("BUFFER", gauge(int(snap.get("depth", 0)), capacity, bar_width))
    if capacity is None:
        grid.add_row("MEMORY", memory_gauge(snap, bar_width))
    limit = snap.get("limit")
    extra = f"  limit {limit:,}" if capacity and limit and limit < capacity else ""
    grid.add_row("oldest", Text(f"waiting {fmt_seconds(snap.get('oldest_age_s', 0.0))}{extra}"))
    ceiling = capacity or (max(state.depth_history) if state.depth_history else 1)
    grid.add_row("depth", Text(sparkline(state.depth_history, bar_width, ceiling), style="yellow"))
    top = max(list(state.received_history) + list(state.processed_history) + [1.0])
    grid.add_row("in/s", Text(sparkline(state.received_history, bar_width, top), style="cyan"))
    grid.add_row("done/s", Text(sparkline(state.processed_history, bar_width, top), style="green"))
    return grid


def _tables(state, snap, now, width: int) -> RenderableType:
    rates, totals = snap.get("rates", {}), snap.get("totals", {})
    counters = Table(box=None, show_header=True, header_style="bold", pad_edge=False)
    counters.add_column("consumer", style="bold")
    counters.add_column("total", justify="right")
    counters.add_column("rate", justify="right")
    for label, key, style in (
        ("received", "received", ""),
        ("accepted", "accepted", ""),
        ("processed", "processed", "green"),
        ("Dropped", "dropped", "red"),
        ("sampled out", "sampled_out", "yellow"),
        ("shed", "shed", "yellow"),
    ):
        counters.add_row(
            Text(label, style=style),
            Text(fmt_count(totals.get(key, 0)), style=style if totals.get(key) else ""),
            fmt_rate(rates.get(key, 0.0)),
        )
    counters.add_row("malformed", fmt_count(snap.get("malformed", 0)), "")
    latency = Table(box=None, show_header=True, header_style="bold", pad_edge=False)
    latency.add_column("producer latency", style="bold")
    latency.add_column("", justify="right")
    producers = state.live_producers(now)
    worst = _worst_latency(producers)
    for key in ("p50_s", "p95_s", "p99_s", "max_s"):
        latency.add_row(key.split("_")[0], fmt_seconds(worst.get(key)) if worst else "-")
    wait = snap.get("queue_wait", {})
    latency.add_row("queue wait p99", fmt_seconds(wait.get("p99_s")))
    if producers and snap.get("mode") == "block":
        waiting = sum(int(p.get("pending", 0)) for p in producers)
        latency.add_row("waiting upstream", f"{waiting:,} msgs")
    if producers:
        target = sum(p.get("target_mps") or 0 for p in producers)
        sent = sum(p.get("rates", {}).get("produced", 0.0) for p in producers)
        latency.add_row("sent", f"{fmt_rate(sent)} of {fmt_rate(target)}")
        latency.add_row(
            "memory",
            f"C {snap.get('rss_mb', 0):.0f} MB · P "
            f"{max(p.get('rss_mb', 0) for p in producers):.0f} MB",
        )
    else:
        latency.add_row("sent", "no producer")
        latency.add_row("memory", f"C {snap.get('rss_mb', 0):.0f} MB")
    latency.add_row("CPU", f"C {snap.get('cpu_pct', 0):.0f}%")
    row = Table.grid(padding=(0, 3))
    row.add_column()
    row.add_column()
    row.add_row(counters, latency)
    return row


def _worst_latency(producers: List[Dict[str, Any]]) -> Dict[str, float]:
    if not producers:
        return {}
    return max((p.get("latency", {}) for p in producers), key=lambda lat: lat.get("p99_s", 0.0))


def _producer_table(producers: List[Dict[str, Any]]) -> RenderableType:
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("producer", "sent/s", "accepted", "dropped", "shed", "p99", "credit"):
        table.add_column(column, justify="left" if column == "producer" else "right")
    for p in producers:
        totals = p.get("totals", {})
        table.add_row(
            str(p.get("name", p.get("id")))[:18],
            fmt_rate(p.get("rates", {}).get("produced", 0.0)),
            fmt_count(totals.get("accepted", 0)),
            fmt_count(totals.get("dropped", 0)),
            fmt_count(totals.get("shed", 0)),
            fmt_seconds(p.get("latency", {}).get("p99_s")),
            "-" if p.get("credit") is None else fmt_count(p["credit"]),
        )
    return table


def _events(snap, producers) -> Optional[RenderableType]:
    lines = [text for _, text in (snap.get("events") or [])[-2:]]
    for producer in producers:
        lines.extend(text for _, text in (producer.get("events") or [])[-1:])
    if not lines:
        return None
    return Text("\n".join(f"· {line}" for line in lines[-3:]), style="dim")


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


# The panels of Modules 13-15 register themselves in MODULE_PANELS (lab/panels.py).
import lab.panels  # noqa: E402,F401
