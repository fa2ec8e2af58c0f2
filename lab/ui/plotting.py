"""Pictures of recorded runs: ``bplab plot`` (one run) and ``bplab compare`` (two runs).

Theory of operation
-------------------
A *recording* is the JSON Lines file that ``--record FILE.jsonl`` appends to: one telemetry
snapshot per line, ``role`` "consumer" or "producer", an ``id`` per process and ``t`` in
epoch seconds (see ``ConsumerCore.snapshot`` and ``ProducerCore.snapshot``). Several
processes may write to the same file, so lines come interleaved and out of order, the same
snapshot may be there twice (a process and a visualizer both recording it), and a file
that was appended to may hold several runs.

:func:`load_recording` turns such a file into a :class:`Recording`: plain lists of numbers
on one time axis, seconds since the run's first snapshot. It sorts by time, drops repeats,
keeps only the last run (runs are separated by more than ``RUN_GAP_S`` of silence), skips
and counts lines that are not snapshots, and carries the consumer's counters across its
restarts so that cumulative totals never go backwards. Only it reads files; the drawing
functions only read a :class:`Recording`.

The figures use matplotlib's object API (``Figure`` plus the Agg canvas, never pyplot), so
they work headless and leave no global state behind. Colours are the Okabe-Ito palette
(colourblind safe) and fonts are sized for a projector.
"""

from __future__ import annotations

import json
import math
import os
import textwrap
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from lab.core import telemetry
from lab.core.accounting import CONSUMER_FIELDS
from lab.core.telemetry import Snapshot, measured_p99

NAN = float("nan")
RUN_GAP_S = 30.0  # this much silence in a file means a new run was appended
UNLIMITED = 2.0**31  # an admission limit this large is "no limit"
PRODUCER_STALE_S = 2.0  # a producer silent this long no longer counts for the "worst" line
ROLES = ("consumer", "producer")
RATE_NAMES = ("received", "processed", "dropped", "sampled_out", "shed")
TOTAL_NAMES = tuple(name for name in CONSUMER_FIELDS if name != "depth")
DISCARD_NAMES = ("dropped", "sampled_out", "shed")
HOW_TO_RECORD = (
    "record one with --record FILE.jsonl "
    "(on bplab consumer, producer or visualize), then plot that file"
)

# Okabe-Ito: distinguishable with every common colour-vision deficiency, and dark enough
# (no yellow) to survive a washed-out projector.
BLUE, VERMILLION, GREEN = "#0072B2", "#D55E00", "#009E73"
PURPLE, ORANGE, SKY, BLACK = "#CC79A7", "#E69F00", "#56B4E9", "#000000"
SERIES_COLOURS = {
    "received": BLUE,
    "processed": GREEN,
    "dropped": VERMILLION,
    "sampled_out": PURPLE,
    "shed": ORANGE,
}
# Colour and dash both differ, so producers with identical latencies still show as separate.
PRODUCER_STYLES = ((VERMILLION, "-"), (BLUE, "--"), (GREEN, "-."), (PURPLE, ":"))
DISCARD_STYLES = {"dropped": "-", "sampled_out": "--", "shed": "-."}
RUN_STYLES = ((BLUE, "-"), (VERMILLION, "--"))
LABELS = {
    "received": "received (in)",
    "processed": "processed",
    "dropped": "dropped",
    "sampled_out": "sampled out",
    "shed": "shed",
}

FIG_SIZE = (14.0, 10.5)  # inches; at DPI this is 1680 x 1260 pixels
DPI = 120
FOOTER_WIDTH = 150  # characters of the 11.5 pt footer that fit across the figure
STYLE = {
    "font.size": 13,
    "axes.titlesize": 14,
    "axes.titleweight": "bold",
    "axes.labelsize": 13,
    "xtick.labelsize": 12,
    "ytick.labelsize": 12,
    "legend.fontsize": 12,
    "lines.linewidth": 2.2,
    "axes.grid": True,
    "grid.alpha": 0.35,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


class RecordingError(Exception):
    """A recording that cannot be plotted; the message says what is wrong and what to do."""


# -- the data -------------------------------------------------------------------------------
@dataclass
class ConsumerSeries:
    """One consumer's snapshots as parallel lists (``t`` in seconds since the run's start)."""

    id: str
    t: List[float] = field(default_factory=list)
    depth: List[float] = field(default_factory=list)
    capacity: List[float] = field(default_factory=list)  # NaN while unbounded
    limit: List[float] = field(default_factory=list)  # NaN when there is none
    rates: Dict[str, List[float]] = field(default_factory=dict)  # per second, 1 s window
    totals: Dict[str, List[float]] = field(default_factory=dict)  # cumulative over restarts
    wait_p99_ms: List[float] = field(default_factory=list)
    modes: List[str] = field(default_factory=list)
    sessions: List[str] = field(default_factory=list)

    def final(self, name: str) -> int:
        values = self.totals.get(name) or [0]
        return int(values[-1])


@dataclass
class ProducerSeries:
    """One producer's latency over time (``NaN`` where it had no verdicts to measure)."""

    id: str
    name: str
    t: List[float] = field(default_factory=list)
    p50_ms: List[float] = field(default_factory=list)
    p99_ms: List[float] = field(default_factory=list)
    produced: int = 0  # final total


@dataclass
class Marker:
    """A moment worth a vertical line: a mode switch or a consumer restart."""

    t: float
    kind: str  # "mode" or "restart"
    text: str


@dataclass
class Recording:
    """Everything the figures need from one recording file."""

    path: str
    start: float  # epoch seconds of the run's first snapshot
    duration: float
    module: Optional[int]
    consumer: Optional[ConsumerSeries]
    producers: List[ProducerSeries]
    markers: List[Marker]
    modes: List[str]
    skipped: int = 0
    duplicates: int = 0
    runs_in_file: int = 1
    notes: List[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        """File name and mode(s): the legend entry of this run in a comparison."""
        modes = " → ".join(self.modes) if self.modes else "mode unknown"
        return f"{self.name} ({modes})"

    @property
    def name(self) -> str:
        """The file's name, shortened to fit a title or a legend."""
        name = os.path.basename(self.path)
        return name if len(name) <= 40 else name[:18] + "…" + name[-18:]


# -- reading --------------------------------------------------------------------------------
def load_recording(path: str) -> Recording:
    """Read a ``--record`` file into a :class:`Recording`; :class:`RecordingError` if unusable."""
    snapshots, skipped = read_snapshots(path)
    snapshots, duplicates = _unique(snapshots)
    runs = _split_runs(snapshots)
    recording = _build(path, runs[-1], skipped)
    recording.duplicates = duplicates
    recording.runs_in_file = len(runs)
    recording.notes = _notes(recording)
    return recording


def read_snapshots(path: str) -> Tuple[List[Dict[str, Any]], int]:
    """The usable snapshots of a file, and how many non-blank lines were skipped."""
    _check_file(path)
    snapshots: List[Dict[str, Any]] = []
    skipped = 0
    try:
        with open(path, encoding="utf-8", errors="replace") as lines:
            for line in lines:
                if not line.strip():
                    continue
                snapshot = _parse_line(line)
                if snapshot is None:
                    skipped += 1
                else:
                    snapshots.append(snapshot)
    except OSError as error:
        raise RecordingError(f"cannot read {path}: {error.strerror or error}") from None
    if not snapshots:
        raise RecordingError(_nothing_usable(path, skipped))
    return snapshots, skipped


def _check_file(path: str) -> None:
    if not os.path.exists(path):
        raise RecordingError(f"no recording at {path}: {HOW_TO_RECORD}")
    if os.path.isdir(path):
        raise RecordingError(f"{path} is a directory, not a recording: {HOW_TO_RECORD}")
    if os.path.getsize(path) == 0:
        raise RecordingError(f"{path} is empty (did the run start?): {HOW_TO_RECORD}")


def _nothing_usable(path: str, skipped: int) -> str:
    if skipped == 0:
        return f"{path} has only blank lines: {HOW_TO_RECORD}"
    return (
        f"{path} has no consumer or producer snapshots ({skipped} lines are not JSON "
        f"snapshots); is it a --record file? {HOW_TO_RECORD}"
    )


def _parse_line(line: str) -> Optional[Snapshot]:
    """A snapshot with a known role and a finite time, completed by the telemetry schema
    (``telemetry.complete``, as off the network), or None for anything else."""
    try:
        raw = json.loads(line)
    except ValueError:
        return None
    if not isinstance(raw, dict) or raw.get("role") not in ROLES:
        return None
    t = _number(raw.get("t"))
    if math.isnan(t) or math.isinf(t):
        return None
    raw["t"] = t
    if not isinstance(raw.get("id"), str):  # an early recording: no id yet
        raw["id"] = str(raw.get("name") or raw["role"])
    try:
        return telemetry.complete(raw)
    except telemetry.TelemetryError:
        return None


def _number(value: Any) -> float:
    """A JSON number as a float; NaN for null, text, booleans or anything else."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return NAN
    return float(value)


def _field(snapshot: Dict[str, Any], group: str, name: str) -> float:
    return _number(snapshot[group][name])


def _unique(snapshots: List[Dict[str, Any]]) -> Tuple[List[Dict[str, Any]], int]:
    """Sorted by time, each (role, id, session, t) once: a line recorded twice counts once."""
    seen = set()
    unique = []
    for snapshot in sorted(snapshots, key=lambda s: s["t"]):
        key = (snapshot["role"], snapshot["id"], snapshot.get("session", ""), snapshot["t"])
        if key not in seen:
            seen.add(key)
            unique.append(snapshot)
    return unique, len(snapshots) - len(unique)


def _split_runs(snapshots: List[Dict[str, Any]]) -> List[List[Dict[str, Any]]]:
    runs = [[snapshots[0]]]
    for before, snapshot in zip(snapshots, snapshots[1:]):
        if snapshot["t"] - before["t"] > RUN_GAP_S:
            runs.append([])
        runs[-1].append(snapshot)
    return runs


# -- building series ------------------------------------------------------------------------
def _build(path: str, run: List[Dict[str, Any]], skipped: int) -> Recording:
    start = run[0]["t"]
    consumers = _by_id(s for s in run if s["role"] == "consumer")
    chosen = max(consumers.values(), key=len) if consumers else []
    consumer = _consumer_series(chosen, start) if chosen else None
    producers = [
        _producer_series(snaps, start)
        for snaps in _by_id(s for s in run if s["role"] == "producer").values()
    ]
    recording = Recording(
        path=path,
        start=start,
        duration=run[-1]["t"] - start,
        module=_module(run),
        consumer=consumer,
        producers=producers,
        markers=_markers(chosen, start),
        modes=_modes(chosen or [s for s in run if s["role"] == "producer"]),
        skipped=skipped,
    )
    if len(consumers) > 1:
        recording.notes.append(f"{len(consumers) - 1} other consumer(s) in the file not shown")
    return recording


def _by_id(snapshots: Iterable[Dict[str, Any]]) -> Dict[str, List[Dict[str, Any]]]:
    groups: Dict[str, List[Dict[str, Any]]] = {}
    for snapshot in snapshots:
        groups.setdefault(snapshot["id"], []).append(snapshot)
    return groups


def _module(run: List[Dict[str, Any]]) -> Optional[int]:
    for snapshot in run:
        if snapshot["module"]:  # 0: a recording too old to say
            return int(snapshot["module"])
    return None


def _consumer_series(snapshots: List[Dict[str, Any]], start: float) -> ConsumerSeries:
    series = ConsumerSeries(id=snapshots[0]["id"])
    series.rates = {name: [] for name in (*RATE_NAMES, "goodput")}
    series.totals = {name: [] for name in TOTAL_NAMES}
    for snapshot, totals in zip(snapshots, _cumulative_totals(snapshots)):
        series.t.append(snapshot["t"] - start)
        series.depth.append(_number(snapshot["depth"]))
        series.capacity.append(_number(snapshot["capacity"]))
        series.limit.append(_limit(snapshot))
        for name in (*RATE_NAMES, "goodput"):
            series.rates[name].append(_field(snapshot, "rates", name))
        for name in TOTAL_NAMES:
            series.totals[name].append(totals[name])
        wait = measured_p99(snapshot["queue_wait"])  # None: nothing finished in the window
        series.wait_p99_ms.append(NAN if wait is None else wait * 1e3)
        series.modes.append(snapshot["mode"])
        series.sessions.append(snapshot["session"])
    return series


def _cumulative_totals(snapshots: List[Dict[str, Any]]) -> List[Dict[str, float]]:
    """Each snapshot's totals plus everything earlier sessions counted before a restart."""
    offset = dict.fromkeys(TOTAL_NAMES, 0.0)
    previous: Optional[Dict[str, float]] = None
    session = snapshots[0]["session"]
    out = []
    for snapshot in snapshots:
        raw = {name: _field(snapshot, "totals", name) for name in TOTAL_NAMES}
        raw = {name: 0.0 if math.isnan(v) else v for name, v in raw.items()}
        if snapshot["session"] != session and previous is not None:
            offset = {name: offset[name] + previous[name] for name in TOTAL_NAMES}
            session = snapshot["session"]
        previous = raw
        out.append({name: offset[name] + raw[name] for name in TOTAL_NAMES})
    return out


def _limit(snapshot: Dict[str, Any]) -> float:
    """The admission limit, or NaN when it means "no limit" (an unbounded buffer's is huge)."""
    limit = _number(snapshot["limit"])
    return limit if limit < UNLIMITED else NAN


def _producer_series(snapshots: List[Dict[str, Any]], start: float) -> ProducerSeries:
    last = snapshots[-1]
    series = ProducerSeries(id=last["id"], name=last["name"] or last["id"])
    for snapshot in snapshots:
        series.t.append(snapshot["t"] - start)
        series.p50_ms.append(_latency_ms(snapshot, "p50_s"))
        series.p99_ms.append(_latency_ms(snapshot, "p99_s"))
    produced = _field(last, "totals", "produced")
    series.produced = 0 if math.isnan(produced) else int(produced)
    return series


def _latency_ms(snapshot: Dict[str, Any], name: str) -> float:
    """Zero means "no verdict in the window" (a real latency is never 0 µs): a gap."""
    value = _field(snapshot, "latency", name)
    return value * 1e3 if value > 0 else NAN


def _markers(consumer: List[Dict[str, Any]], start: float) -> List[Marker]:
    markers = []
    for before, snapshot in zip(consumer, consumer[1:]):
        mode = snapshot["mode"]
        switched = mode != before["mode"]
        t = snapshot["t"] - start
        if snapshot["session"] != before["session"]:
            text = f"restart → {mode}" if switched else "consumer restart"
            markers.append(Marker(t, "restart", text))
        elif switched:
            markers.append(Marker(t, "mode", f"→ {mode}"))
    return markers


def _modes(snapshots: List[Dict[str, Any]]) -> List[str]:
    """Modes in the order they were used (from the consumer, else as producers heard it)."""
    modes: List[str] = []
    for snapshot in snapshots:
        mode = snapshot["mode"] if snapshot["role"] == "consumer" else snapshot["consumer_mode"]
        if isinstance(mode, str) and (not modes or modes[-1] != mode):
            modes.append(mode)
    return modes


def _notes(recording: Recording) -> List[str]:
    notes = list(recording.notes)
    if recording.skipped:
        notes.append(f"skipped {recording.skipped} line(s) that are not snapshots")
    if recording.runs_in_file > 1:
        notes.append(
            f"the file holds {recording.runs_in_file} runs; showing the last "
            "(record each run to its own file)"
        )
    if recording.consumer is None:
        notes.append("no consumer snapshots: add --record to bplab consumer too")
    if not recording.producers:
        notes.append("no producer snapshots: add --record to bplab producer too")
    return notes


# -- derived series -------------------------------------------------------------------------
def worst_latency(producers: Sequence[ProducerSeries], name: str = "p99_ms"):
    """Time and, at each producer snapshot, the worst latency of the producers still alive.

    A producer's last value holds until its next snapshot, or for ``PRODUCER_STALE_S``.
    """
    points = sorted(
        (t, index, value)
        for index, producer in enumerate(producers)
        for t, value in zip(producer.t, getattr(producer, name))
    )
    latest: Dict[int, Tuple[float, float]] = {}
    times, worst = [], []
    for t, index, value in points:
        latest[index] = (t, value)
        alive = [v for seen, v in latest.values() if t - seen <= PRODUCER_STALE_S and v == v]
        times.append(t)
        worst.append(max(alive) if alive else NAN)
    return times, worst


def discarded(consumer: ConsumerSeries) -> List[float]:
    """Cumulative messages turned away: dropped + sampled out + shed."""
    columns = [consumer.totals[name] for name in DISCARD_NAMES]
    return [sum(values) for values in zip(*columns)]


def _peak(values: Iterable[float], default: float = NAN) -> float:
    finite = [v for v in values if v == v]
    return max(finite) if finite else default


# -- drawing helpers ------------------------------------------------------------------------
def _figure(rows: int):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=FIG_SIZE, dpi=DPI)
    FigureCanvasAgg(figure)
    axes = figure.subplots(rows, 1, sharex=True)
    return figure, list(axes)


def _check_output(output_png: str) -> None:
    """Fail before drawing if the PNG cannot be written where asked."""
    folder = os.path.dirname(os.path.abspath(output_png))
    if not os.path.isdir(folder):
        raise RecordingError(
            f"cannot write {output_png}: the folder {folder} does not exist; "
            "create it or choose another file with -o"
        )
    if os.path.isdir(output_png):
        raise RecordingError(f"cannot write {output_png}: it is a folder; give a file with -o")


def _save(figure, output_png: str) -> None:
    try:
        figure.savefig(output_png, format="png", dpi=DPI)
    except OSError as error:
        raise RecordingError(
            f"cannot write {output_png}: {error.strerror or error}; choose another file with -o"
        ) from None


def _gap_limit(t: Sequence[float]) -> float:
    """How long between two points before the line is broken (the process was silent)."""
    steps = sorted(b - a for a, b in zip(t, t[1:]) if b > a)
    typical = steps[len(steps) // 2] if steps else 0.0
    return max(1.5, 5 * typical)


def _line(ax, t: Sequence[float], y: Sequence[float], **style) -> None:
    """Plot, breaking the line where the recording has a gap; a lone point gets a dot."""
    limit = _gap_limit(t)
    xs: List[float] = []
    ys: List[float] = []
    for index, (x, value) in enumerate(zip(t, y)):
        if index and x - t[index - 1] > limit:
            xs.append(NAN)
            ys.append(NAN)
        xs.append(x)
        ys.append(value)
    if sum(1 for v in ys if v == v) == 1:
        style.setdefault("marker", "o")
    ax.plot(xs, ys, **style)


def _step(ax, t: Sequence[float], y: Sequence[float], **style) -> None:
    if any(v == v for v in y):
        ax.step(t, y, where="post", **style)


def _legend(ax) -> None:
    handles, _ = ax.get_legend_handles_labels()
    if handles:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)


def _placeholder(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color="0.35")
    ax.set_ylim(0, 1)
    ax.set_yticks([])


def _integer_axis(ax) -> None:
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    ax.yaxis.set_major_locator(MaxNLocator(nbins=5, steps=[1, 2, 2.5, 5, 10], integer=True))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.set_ylim(bottom=0)


def _has_data(ax) -> bool:
    return any(v == v for line in ax.lines for v in line.get_ydata())


def _latency_scale(ax) -> None:
    """Linear when the lines fit; symlog (linear below 1 ms, then log) when they span decades.

    Log as soon as one line would be squashed flat by another (peaks 8x apart), or one line
    spans two decades. Symlog rather than log so that a queue wait of exactly 0 (an idle
    worker) stays on the chart.
    """
    from matplotlib.ticker import FuncFormatter

    lines = [[v for v in line.get_ydata() if v == v and v > 0] for line in ax.lines]
    lines = [sorted(values) for values in lines if values]
    if not lines:
        ax.set_ylim(0, 1)
        return
    peaks = [values[-1] for values in lines]
    everything = sorted(v for values in lines for v in values)
    low = max(everything[len(everything) // 20], 0.01)
    if max(peaks) / min(peaks) > 8 or max(peaks) / low > 100:
        ax.set_yscale("symlog", linthresh=1.0, linscale=0.5)
        ax.set_ylim(0, max(peaks) * 2.5)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
        ax.set_ylabel("ms (log)")
    else:
        ax.set_ylim(0, max(peaks) * 1.15)


def _mark(axes, markers: Sequence[Marker], duration: float) -> None:
    """Vertical lines on every panel; their labels on the top one, skipping any that collide."""
    last_label = -math.inf
    for marker in markers:
        style = ":" if marker.kind == "restart" else "-"
        for ax in axes:
            ax.axvline(marker.t, color="0.3", linestyle=style, linewidth=1.6, zorder=1)
        if marker.t - last_label < 0.08 * max(duration, 1e-9):
            continue
        last_label = marker.t
        axes[0].annotate(
            marker.text,
            xy=(marker.t, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(4, -4),
            textcoords="offset points",
            va="top",
            fontsize=12,
            bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "edgecolor": "0.6"},
        )


def _footer(figure, lines: Sequence[str]) -> int:
    """Write the footer, wrapped to the figure's width; returns how many lines it took."""
    wrapped = [part for line in lines for part in textwrap.wrap(line, FOOTER_WIDTH)]
    figure.text(0.06, 0.012, "\n".join(wrapped), ha="left", va="bottom", fontsize=11.5)
    return len(wrapped)


def _layout(figure, footer_lines: int, right: float = 0.77) -> None:
    height = FIG_SIZE[1]
    bottom = (0.75 + 0.24 * footer_lines) / height
    figure.subplots_adjust(left=0.085, right=right, top=0.925, bottom=bottom, hspace=0.32)


def _count(value: float) -> str:
    return "?" if value != value else f"{int(value):,}"


def _ms(value: float) -> str:
    if value != value:
        return "n/a"
    return f"{value:,.0f} ms" if value >= 10 else f"{value:.2g} ms"


# -- plot_run -------------------------------------------------------------------------------
def plot_run(recording_path: str, output_png: str) -> None:
    """One run, four panels on one time axis: depth, rates, cumulative losses, latency."""
    from matplotlib import rc_context

    recording = load_recording(recording_path)
    _check_output(output_png)
    with rc_context(STYLE):
        figure, axes = _figure(4)
        _depth_panel(axes[0], recording.consumer)
        _rates_panel(axes[1], recording.consumer)
        _losses_panel(axes[2], recording.consumer)
        _latency_panel(axes[3], recording)
        _finish_axes(axes, recording.duration)
        _mark(axes, recording.markers, recording.duration)
        figure.suptitle(_run_title(recording), fontsize=16, fontweight="bold")
        footer = _run_footer(recording)
        _layout(figure, _footer(figure, footer))
        _save(figure, output_png)


NO_CONSUMER = "no consumer snapshots in this recording\n(add --record FILE.jsonl to bplab consumer)"


def _depth_panel(ax, consumer: Optional[ConsumerSeries]) -> None:
    ax.set_title("Buffer depth", loc="left")
    ax.set_ylabel("messages")
    if consumer is None:
        _placeholder(ax, NO_CONSUMER)
        return
    _line(ax, consumer.t, consumer.depth, color=BLUE, label="depth")
    _step(ax, consumer.t, consumer.capacity, color=BLACK, linestyle="--", label="capacity")
    if all(v != v for v in consumer.capacity):
        ax.plot([], [], " ", label="capacity: unbounded")
    limit = [lim if lim != cap else NAN for lim, cap in zip(consumer.limit, consumer.capacity)]
    _step(ax, consumer.t, limit, color=ORANGE, linestyle=":", label="admission limit")
    _integer_axis(ax)
    top = _peak(consumer.depth + consumer.capacity + limit, default=0.0)
    ax.set_ylim(0, max(top, 1) * 1.22)
    _legend(ax)


def _series_style(name: str) -> Dict[str, Any]:
    style = {"color": SERIES_COLOURS[name], "label": LABELS[name], "zorder": 3}
    style["linestyle"] = DISCARD_STYLES.get(name, "-")
    if name == "received":  # wide and underneath: when in == processed, both stay visible
        style.update(linewidth=4.5, zorder=2)
    return style


def _rates_panel(ax, consumer: Optional[ConsumerSeries]) -> None:
    ax.set_title("Rates at the consumer", loc="left")
    ax.set_ylabel("messages / s")
    if consumer is None:
        _placeholder(ax, "no consumer snapshots")
        return
    for name in RATE_NAMES:
        values = consumer.rates[name]
        if name in ("received", "processed") or _peak(values) > 0:
            _line(ax, consumer.t, values, **_series_style(name))
    top = _peak(consumer.rates["received"] + consumer.rates["processed"], default=0.0)
    ax.set_ylim(0, max(top, 1) * 1.15)
    _legend(ax)


def _losses_panel(ax, consumer: Optional[ConsumerSeries]) -> None:
    ax.set_title("Messages turned away (cumulative)", loc="left")
    ax.set_ylabel("messages")
    if consumer is None:
        _placeholder(ax, "no consumer snapshots")
        return
    shown = [name for name in DISCARD_NAMES if consumer.final(name) > 0]
    if not shown:
        _placeholder(ax, "nothing was dropped, sampled out or shed")
        return
    for name in shown:
        _line(ax, consumer.t, consumer.totals[name], **_series_style(name))
    _integer_axis(ax)
    ax.set_ylim(0, max(consumer.final(name) for name in shown) * 1.15)
    _legend(ax)


def _latency_panel(ax, recording: Recording) -> None:
    ax.set_title("Latency", loc="left")
    ax.set_ylabel("ms")
    _producer_latency_lines(ax, recording.producers)
    consumer = recording.consumer
    if consumer is not None:
        _line(
            ax,
            consumer.t,
            consumer.wait_p99_ms,
            color=BLACK,
            linestyle="-.",
            linewidth=1.8,
            label="consumer queue wait p99",
        )
    if not _has_data(ax):
        _placeholder(ax, "no latency in this recording")
        return
    _latency_scale(ax)
    _legend(ax)


def _producer_latency_lines(ax, producers: Sequence[ProducerSeries]) -> None:
    """Few producers: a line each (p50 and p99 for one, p99 for up to four); more: the worst."""
    if len(producers) == 1:
        only = producers[0]
        _line(ax, only.t, only.p99_ms, color=VERMILLION, label="producer p99")
        _line(ax, only.t, only.p50_ms, color=SKY, linestyle="--", label="producer p50")
    elif len(producers) <= len(PRODUCER_STYLES):
        for producer, (colour, style) in zip(producers, PRODUCER_STYLES):
            label = f"{producer.name} p99"
            _line(ax, producer.t, producer.p99_ms, color=colour, linestyle=style, label=label)
    elif producers:
        t99, worst99 = worst_latency(producers, "p99_ms")
        t50, worst50 = worst_latency(producers, "p50_ms")
        label = f"worst p99 of {len(producers)} producers"
        _line(ax, t99, worst99, color=VERMILLION, label=label)
        _line(ax, t50, worst50, color=SKY, linestyle="--", label="worst p50")


def _finish_axes(axes, duration: float) -> None:
    for ax in axes:
        ax.set_xlim(0, max(duration, 1.0))
        ax.margins(x=0)
    axes[-1].set_xlabel("seconds since the first snapshot")


def _run_title(recording: Recording) -> str:
    module = f"Module {recording.module}" if recording.module is not None else "Run"
    modes = " → ".join(recording.modes) if recording.modes else "mode unknown"
    producers = len(recording.producers)
    plural = "" if producers == 1 else "s"
    return (
        f"{module}: {modes}  ·  {producers} producer{plural}  ·  "
        f"{recording.duration:.0f} s  ·  {recording.name}"
    )


def _run_footer(recording: Recording) -> List[str]:
    lines = []
    consumer = recording.consumer
    if consumer is not None:
        lines.append("Consumer totals: " + _consumer_totals(consumer))
    if recording.producers:
        produced = sum(p.produced for p in recording.producers)
        peak = _peak(v for p in recording.producers for v in p.p99_ms)
        lines.append(f"Producers: produced {produced:,}  ·  peak latency p99 {_ms(peak)}")
    if recording.notes:
        lines.append("Note: " + "; ".join(recording.notes))
    return lines


def _consumer_totals(consumer: ConsumerSeries) -> str:
    sessions = len(set(consumer.sessions))
    parts = [
        f"received {consumer.final('received'):,}",
        f"processed {consumer.final('processed'):,}",
        f"dropped {consumer.final('dropped'):,}",
        f"sampled out {consumer.final('sampled_out'):,}",
        f"shed {consumer.final('shed'):,}",
        f"left in buffer {_count(consumer.depth[-1])}",
    ]
    text = "  ·  ".join(parts)
    if sessions > 1:
        text += f"  (over {sessions} consumer sessions)"
    return text


# -- plot_compare ---------------------------------------------------------------------------
def plot_compare(first_path: str, second_path: str, output_png: str) -> None:
    """Two runs overlaid, each from its own start: depth, throughput, losses, latency."""
    from matplotlib import rc_context

    runs = [load_recording(first_path), load_recording(second_path)]
    _check_output(output_png)
    with rc_context(STYLE):
        figure, axes = _figure(4)
        for run, (colour, style) in zip(runs, RUN_STYLES):
            _compare_run(axes, run, colour, style)
        _compare_decorate(axes, runs)
        figure.suptitle(_compare_title(runs), fontsize=16, fontweight="bold")
        _compare_legend(figure, axes, runs)
        footer = [_compare_footer(letter, run) for letter, run in zip("AB", runs)]
        _layout(figure, _footer(figure, footer), right=0.97)
        figure.subplots_adjust(top=0.895)
        _save(figure, output_png)


def _compare_title(runs: Sequence[Recording]) -> str:
    modes = ["/".join(run.modes) or "?" for run in runs]
    return f"A: {modes[0]}  vs  B: {modes[1]}  (each run from its own start)"


def _compare_legend(figure, axes, runs: Sequence[Recording]) -> None:
    from matplotlib.lines import Line2D

    handles = [
        Line2D([], [], color=colour, linestyle=style, linewidth=3) for colour, style in RUN_STYLES
    ]
    labels = [f"{letter}: {run.label}" for letter, run in zip("AB", runs)]
    figure.legend(
        handles,
        labels,
        loc="upper center",
        ncol=2,
        frameon=False,
        bbox_to_anchor=(0.5, 0.955),
        fontsize=13,
    )


def _compare_run(axes, run: Recording, colour: str, style: str) -> None:
    consumer = run.consumer
    if consumer is not None:
        _line(axes[0], consumer.t, consumer.depth, color=colour, linestyle=style)
        _line(axes[1], consumer.t, consumer.rates["processed"], color=colour, linestyle=style)
        if has_deadlines(consumer):  # Module 19: goodput under the run's own throughput
            _line(axes[1], consumer.t, consumer.rates["goodput"], color=colour, linestyle=":")
        _line(axes[2], consumer.t, discarded(consumer), color=colour, linestyle=style)
    t, worst = worst_latency(run.producers, "p99_ms")
    if t:
        _line(axes[3], t, worst, color=colour, linestyle=style)


def has_deadlines(consumer: ConsumerSeries) -> bool:
    """Whether deadlines mattered in this run: something finished late or was dropped by
    the queue discipline (else goodput is the throughput line again)."""
    return bool(consumer.t) and (
        consumer.totals["wasted"][-1] > 0 or consumer.totals["dequeue_dropped"][-1] > 0
    )


def _compare_decorate(axes, runs: Sequence[Recording]) -> None:
    titles = (
        ("Buffer depth", "messages"),
        ("Throughput (processed; dotted: goodput, within the deadline)", "messages / s"),
        ("Messages turned away (cumulative: dropped + sampled out + shed)", "messages"),
        ("Producer latency p99 (worst producer)", "ms"),
    )
    for ax, (title, unit) in zip(axes, titles):
        ax.set_title(title, loc="left")
        ax.set_ylabel(unit)
    _integer_axis(axes[0])
    _integer_axis(axes[2])
    _headroom(axes)
    _latency_scale(axes[3])
    _finish_axes(axes, max(run.duration for run in runs))
    for ax in axes:
        if not _has_data(ax):
            _placeholder(ax, "no data in either recording")


def _headroom(axes) -> None:
    for ax in axes[:3]:
        values = [v for line in ax.lines for v in line.get_ydata() if v == v]
        if values:
            ax.set_ylim(0, max(max(values), 1) * 1.12)


def _compare_footer(letter: str, run: Recording) -> str:
    parts = [f"{letter}: {run.label}"]
    consumer = run.consumer
    if consumer is not None:
        rate = consumer.final("processed") / run.duration if run.duration > 0 else NAN
        parts.append(f"processed {consumer.final('processed'):,} ({rate:.1f}/s)")
        parts.append(f"turned away {int(discarded(consumer)[-1]):,}")
    peak = _peak(v for p in run.producers for v in p.p99_ms)
    parts.append(f"peak latency p99 {_ms(peak)}")
    if run.notes:
        parts.append("; ".join(run.notes))
    return "  ·  ".join(parts)
