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
import re
from collections import deque
from typing import Deque, Dict, List, NamedTuple, Optional, Tuple

from rich.console import Group, RenderableType
from rich.text import Text

from lab.core.telemetry import (
    ClassRow,
    ConsumerSnapshot,
    ConsumerTotals,
    Latency,
    ProducerSnapshot,
    Snapshot,
    measured_p99,
)
from lab.ui import classroom_panel
from lab.ui.panels import MODULE_PANELS, PanelHistory, limited_count
from lab.ui.textgrid import Cell, Framed, beside, grid, line, width_of
from lab.ui.widgets import (
    fmt_count,
    fmt_measured,
    fmt_rate,
    fmt_seconds,
    gauge,
    memory_gauge,
    sparkline,
)

HISTORY_SECONDS = 60
STALE_AFTER_S = 2.0
PRODUCER_GONE_AFTER_S = 3.0


class ModeStart(NamedTuple):
    """Where the current mode began: the consumer's totals at the first snapshot the
    dashboard saw in it, so a verdict can judge the mode since it began while the totals
    stay cumulative."""

    mode: str
    uptime_s: float
    totals: ConsumerTotals
    classes: Dict[int, ClassRow]
    switches: int  # live mode switches seen in this consumer session
    limited_before: int  # the admission 429s counted by the policies before this one


class DashboardState:
    """The latest snapshots, the history behind the sparklines and the panels, where the
    current mode began, and the connection status."""

    def __init__(self, module: int, title: str, port: int) -> None:
        self.module = module
        self.title = title
        self.port = port
        self.consumer: Optional[ConsumerSnapshot] = None
        self.consumer_seen_at: Optional[float] = None
        self.producers: Dict[str, ProducerSnapshot] = {}
        self.producer_seen_at: Dict[str, float] = {}
        self.depth_history: Deque[float] = deque(maxlen=HISTORY_SECONDS * 2)
        self.processed_history: Deque[float] = deque(maxlen=HISTORY_SECONDS * 2)
        self.received_history: Deque[float] = deque(maxlen=HISTORY_SECONDS * 2)
        self.panel_history = PanelHistory()
        self.mode_start: Optional[ModeStart] = None
        self.lag_history: Deque[float] = deque(maxlen=HISTORY_SECONDS * 2)  # oldest age, s
        self._next_sample = -math.inf
        self.snapshots = 0
        self.malformed = 0
        self.sessions_seen: List[str] = []
        self.key_legend: Optional[str] = None  # set by the demo when keys work
        self.disconnected_at: Optional[float] = None  # the telemetry connection closed

    # -- input -------------------------------------------------------------------------------
    def update(self, snapshot: Snapshot, now: float) -> None:
        """Take one completed snapshot (``protocol.decode_snapshot``, ``telemetry.complete``)."""
        self.snapshots += 1
        if snapshot["role"] == "consumer":
            if snapshot["module"] not in (0, self.module):  # 0: an old consumer's default
                return
            session = snapshot["session"]
            if session not in self.sessions_seen:
                self.sessions_seen.append(session)
            self._note_mode(snapshot, restarted=session != self._session())
            self.consumer = snapshot
            self.consumer_seen_at = now
            self.panel_history.add_consumer(snapshot)
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

    def live_producers(self, now: float) -> List[ProducerSnapshot]:
        return [
            snap
            for pid, snap in sorted(self.producers.items())
            if now - self.producer_seen_at[pid] <= PRODUCER_GONE_AFTER_S
        ]

    def switched(self) -> bool:
        """Whether the mode was switched live since this consumer started."""
        return self.mode_start is not None and self.mode_start.switches > 0

    def _session(self) -> Optional[str]:
        return None if self.consumer is None else self.consumer["session"]

    def _note_mode(self, snapshot: ConsumerSnapshot, restarted: bool) -> None:
        start = self.mode_start
        if restarted or start is None:
            switches, limited = 0, 0
        elif snapshot["mode"] != start.mode:
            switches = start.switches + 1
            limited = start.limited_before + (limited_count(self.consumer) or 0)
            self.panel_history.mode_switched()
        else:
            return
        self.mode_start = ModeStart(
            snapshot["mode"],
            snapshot["uptime_s"],
            dict(snapshot["totals"]),  # type: ignore[arg-type]
            {row["class"]: row for row in snapshot["classes"]},
            switches,
            limited,
        )

    def _sample_history(self, snapshot: ConsumerSnapshot, now: float) -> None:
        if now < self._next_sample:
            return
        self._next_sample = now + 0.5
        rates = snapshot["rates"]
        self.depth_history.append(float(snapshot["depth"]))
        self.processed_history.append(float(rates["processed"]))
        self.received_history.append(float(rates["received"]))
        self.lag_history.append(float(snapshot["oldest_age_s"]))


# -- insight -----------------------------------------------------------------------------------
def insight(state: DashboardState, now: float) -> Tuple[str, str]:
    """The lesson in one line, and its style."""
    status = state.consumer_status(now)
    if status == "waiting" or state.consumer is None:
        return (f"waiting for the consumer on port {state.port} ...", "bold yellow")
    if status == "down":
        return (
            f"consumer down: no telemetry for {now - state.consumer_seen_at:.0f} s "
            f"(waiting on port {state.port})",
            "bold red",
        )
    snap = state.consumer
    rates = snap["rates"]
    received = rates["received"]
    producers = state.live_producers(now)
    if snap["stopped_by"] == "memory_guard":
        return (
            "MEMORY GUARD: the unbounded queue ate the memory; a real service would "
            "have been OOM-killed here",
            "bold white on red",
        )
    if not producers and received == 0:
        return ("consumer idle: start a producer", "bold cyan")
    return _mode_insight(snap, producers) or _load_insight(snap, producers)


def _mode_insight(
    snap: ConsumerSnapshot, producers: List[ProducerSnapshot]
) -> Optional[Tuple[str, str]]:
    """What block, unbounded and sample modes show, or None to judge by the load."""
    mode, rates = snap["mode"], snap["rates"]
    if mode == "block":
        waiting = sum(p["pending"] for p in producers if p["credit"] == 0)
        if waiting:
            return (
                f"BACKPRESSURE: producer waits, {fmt_rate(rates['dropped'])} dropped, "
                f"time to processed p99 {fmt_measured(_worst_latency(producers), 'p99_s')}",
                "bold cyan",
            )
        return ("backpressure armed: the producer fits in its credit", "bold green")
    if mode == "unbounded":
        growth = max(0.0, rates["received"] - rates["processed"])
        return (
            f"UNBOUNDED: {snap['depth']:,} queued and growing by {growth:,.0f}/s; "
            f"RSS {snap['rss_mb']:.0f} MB",
            "bold magenta",
        )
    if mode == "sample" and rates["sampled_out"] > 0:
        return (f"SAMPLING: {fmt_rate(rates['sampled_out'])} sampled out to keep up", "bold yellow")
    return None


def _load_insight(snap: ConsumerSnapshot, producers: List[ProducerSnapshot]) -> Tuple[str, str]:
    rates = snap["rates"]
    received, processed, dropped = rates["received"], rates["processed"], rates["dropped"]
    if rates["shed"] > 0 and dropped == 0:  # shed, priority-shed, admit, ...
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
    upstream = sum(p["pending"] for p in producers)
    if upstream:  # the consumer keeps up because a queue before it holds the excess
        holder = "limiter" if any(p["limiter"] is not None for p in producers) else "outbox"
        return (
            f"UPSTREAM: {upstream:,} wait in the producer's {holder}; "
            f"time to verdict p99 {fmt_measured(_worst_latency(producers), 'p99_s')}",
            "bold yellow",
        )
    lag = snap["oldest_age_s"]
    if lag >= 1.0 and received > processed * 1.05:  # no drops: only lag says it falls behind
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

    Everything but the insight is a line that never wraps (``lab.ui.textgrid``): cheap to
    draw, and a table keeps its shape in a narrow terminal. The insight may wrap; the key
    legend and then the event lines give way so that the bottom edge stays on screen.
    """
    message, style = insight(state, now)
    parts: List[RenderableType] = []
    snap = state.consumer if state.consumer_status(now) != "waiting" else None
    inner = width - 4  # the panel's border and padding
    events: List[Text] = []
    if snap is not None:
        parts.extend(_buffer_section(state, snap, max(10, width - 34)))
        parts.extend(_tables(state, snap, now, inner, height))
        if height >= 24:
            producers = state.live_producers(now)
            if classroom_panel.is_classroom(snap):
                parts.extend(classroom_panel.lines(state, snap, now, height))
            elif len(producers) > 1:
                parts.extend(_producer_table(producers))
            panel = MODULE_PANELS.get(state.module)
            extra = panel(state, now) if panel else None
            if extra is not None:
                parts.append(extra)
            events = _events(snap, producers)
    insight_line = Text(message, style=style)
    keys = legend_lines(state.key_legend, inner) if state.key_legend and height >= 20 else []
    used = 2 + _rows(parts, inner) + _rows([insight_line], inner)  # 2: the top and bottom edge
    if used + len(keys) > height:
        keys = []
    # A module's own panel comes first; the event lines fit beside it from 30 rows.
    room_for_events = height >= (30 if state.module in MODULE_PANELS else 22)
    if room_for_events and used + len(keys) + len(events) <= height:
        parts.extend(events)
    parts.append(insight_line)
    parts.extend(keys)
    return Framed(
        parts,
        title=_title(state, snap, now),
        border_style="red" if state.consumer_status(now) == "down" else "blue",
    )


def _rows(parts: List[RenderableType], width: int) -> int:
    """How many terminal rows ``parts`` take inside the frame (words wrap as rich wraps)."""
    rows = 0
    for part in parts:
        if isinstance(part, Group):
            rows += _rows(list(part.renderables), width)
        elif isinstance(part, Text) and not part.no_wrap:
            rows += _wrapped_rows(part.plain, width)
        else:
            rows += 1
    return rows


def _wrapped_rows(text: str, width: int) -> int:
    rows, used = 1, 0
    for word in text.split(" "):
        size = len(word)
        if used and used + 1 + size > width:
            rows, used = rows + 1 + (size - 1) // max(1, width), size % max(1, width)
        else:
            used += (1 if used else 0) + size
    return rows


def legend_lines(legend: str, width: int) -> List[Text]:
    """The key legend in lines of ``width`` that break between keys, never inside one
    ("k spike" stays together), each key keeping the separator the legend gave it."""
    head, _, body = legend.partition(": ")
    pairs = re.findall(r"([^\s|]+ [^\s|]+)(\s*\|?\s*)", body)
    if not pairs:
        return [line((legend, "dim"))]
    lines: List[str] = []
    current, gap = f"{head}:", " "
    for item, separator in pairs:
        if len(current) + len(gap) + len(item) > width:
            lines.append(current)
            current, gap = "", ""
        current += gap + item
        gap = separator
    lines.append(current)
    return [line((text, "dim")) for text in lines]


def _title(state: DashboardState, snap: Optional[ConsumerSnapshot], now: float) -> Text:
    title = Text(f" Module {state.module}: {state.title} ", style="bold")
    if snap is not None:
        title.append(f"· mode {snap['mode'].upper()} ", style="bold reverse")
        title.append(f" · port {state.port} · up {snap['uptime_s']:.0f} s ", style="")
    return title


def labelled(label: str, content: Text) -> Text:
    """A row of the buffer section: a bold label in a 10-column gutter, then the content."""
    return line((f"{label:<10} ", "bold"), content)


def _buffer_section(state: DashboardState, snap: ConsumerSnapshot, bar_width: int) -> List[Text]:
    capacity = snap["capacity"]
    rows = [labelled("BUFFER", gauge(int(snap["depth"]), capacity, bar_width))]
    if capacity is None:
        rows.append(
            labelled("MEMORY", memory_gauge(snap["rss_mb"], snap["max_memory_mb"], bar_width))
        )
    limit = snap["limit"]
    extra = f"  limit {limit:,}" if capacity and limit and limit < capacity else ""
    waited = f"in queue for {fmt_seconds(snap['oldest_age_s'])}" if snap["depth"] else "none queued"
    oldest = f"{waited}{extra}"
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
    latency = _latency_lines(rows, snap)
    for label in EXTRA_LATENCY_ROWS:
        if width_of(latency) <= room:
            break
        rows = [row for row in rows if row[0] != label]
        latency = _latency_lines(rows, snap)
    if width_of(latency) <= room or height < 30:
        return beside(counters, latency, gap=3)
    return counters + latency


def _counter_lines(snap: ConsumerSnapshot) -> List[Text]:
    rates, totals = snap["rates"], snap["totals"]
    rows: List[List[Cell]] = []
    for label, key, style in COUNTER_ROWS:
        rows.append(
            [
                Text(label, style=f"bold {style}".strip()),
                Text(fmt_count(totals[key]), style=style if totals[key] else ""),
                fmt_rate(rates[key]),
            ]
        )
    rows.append([Text("malformed", style="bold"), fmt_count(snap["malformed"]), ""])
    return grid(rows, "lrr", header=("consumer", "total", "rate"))


# The rows of the latency block a narrow terminal drops first, least important first.
EXTRA_LATENCY_ROWS = ("CPU", "memory", "sent", "waiting upstream")


def _latency_rows(
    state: DashboardState, snap: ConsumerSnapshot, now: float
) -> List[Tuple[str, str]]:
    """The producer's time to verdict (to processed, in block mode), the consumer's wait in
    queue, the load and the machine. "n/a": nothing was measured in the window."""
    producers = state.live_producers(now)
    worst = _worst_latency(producers)
    rows: List[Tuple[str, str]] = [
        (key.split("_")[0], fmt_measured(worst, key) if worst else "-")
        for key in ("p50_s", "p95_s", "p99_s", "max_s")
    ]
    rows.append(("wait in queue p99", fmt_measured(snap["queue_wait"], "p99_s")))
    if producers and snap["mode"] == "block":
        waiting = sum(p["pending"] for p in producers)
        rows.append(("waiting upstream", f"{waiting:,} msgs"))
    if producers:
        targets = [p["target_mps"] for p in producers]  # None: --mps max, no target
        target = "max" if None in targets else fmt_rate(sum(targets))
        sent = sum(p["rates"]["produced"] for p in producers)
        rows.append(("sent", f"{fmt_rate(sent)} of {target}"))
        producer_rss = max(p["rss_mb"] for p in producers)
        rows.append(("memory", f"C {snap['rss_mb']:.0f} MB · P {producer_rss:.0f} MB"))
    else:
        rows.append(("sent", "no producer"))
        rows.append(("memory", f"C {snap['rss_mb']:.0f} MB"))
    # The worker's service time is simulated (it waits, it does not compute): its CPU is low.
    rows.append(("CPU", f"C {snap['cpu_pct']:.0f}% (work simulated)"))
    return rows


def latency_title(snap: ConsumerSnapshot) -> str:
    """What the producer's latency measures: in block mode the producer waits for the
    worker to finish, otherwise for the consumer's verdict on arrival."""
    return "time to processed" if snap["mode"] == "block" else "time to verdict"


def _latency_lines(rows: List[Tuple[str, str]], snap: ConsumerSnapshot) -> List[Text]:
    return grid(rows, "lr", header=(latency_title(snap), ""), styles=("bold",))


def _worst_latency(producers: List[ProducerSnapshot]) -> Optional[Latency]:
    """The latency window of the producer with the worst measured p99 (None: no producer)."""
    if not producers:
        return None
    return max((p["latency"] for p in producers), key=lambda lat: measured_p99(lat) or 0.0)


PRODUCER_COLUMNS = ("producer", "sent/s", "accepted", "dropped", "shed", "p99", "credit")


def _producer_table(producers: List[ProducerSnapshot]) -> List[Text]:
    rows = []
    for p in producers:
        totals = p["totals"]
        rows.append(
            [
                p["name"][:18],
                fmt_rate(p["rates"]["produced"]),
                fmt_count(totals["accepted"]),
                fmt_count(totals["dropped"]),
                fmt_count(totals["shed"]),
                fmt_measured(p["latency"], "p99_s"),
                "-" if p["credit"] is None else fmt_count(p["credit"]),
            ]
        )
    return grid(rows, "lrrrrrr", header=PRODUCER_COLUMNS)


def _events(snap: ConsumerSnapshot, producers: List[ProducerSnapshot]) -> List[Text]:
    lines = [str(text) for _, text in snap["events"][-2:]]
    for producer in producers:
        lines.extend(str(text) for _, text in producer["events"][-1:])
    return [line((f"· {text}", "dim")) for text in lines[-3:]]


# -- plain output ------------------------------------------------------------------------------
def plain_line(state: DashboardState, now: float) -> str:
    """One line for a log or a pipe: the same facts as the dashboard, no drawing."""
    message, _ = insight(state, now)
    snap = state.consumer
    if snap is None or state.consumer_status(now) != "up":
        return message
    rates, totals = snap["rates"], snap["totals"]
    worst = _worst_latency(state.live_producers(now))
    capacity = snap["capacity"]
    return (
        f"[{snap['uptime_s']:7.1f}s] mode={snap['mode']} "
        f"depth={snap['depth']}/{capacity if capacity is not None else 'inf'} "
        f"in={rates['received']:.1f}/s processed={rates['processed']:.1f}/s "
        f"dropped={totals['dropped']} sampled_out={totals['sampled_out']} "
        f"shed={totals['shed']} latency_p99={fmt_measured(worst, 'p99_s')} "
        f"rss={snap['rss_mb']:.0f}MB | {message}"
    )
