"""The Module 12 dashboard, drawn from snapshots that the real cores produced.

As in ``test_panels.py``, a consumer and producers run together in simulated time
(``lab/tools/sim.py``) and their snapshots feed a DashboardState the way the visualizer does, so
the screen is checked against exact counters, at the sizes a workshop meets: 80x24 (the
promise), 120x40 (a projector) and 60x20 (a narrow split pane).
"""

from __future__ import annotations

import copy
import functools
import re
from typing import Tuple

import pytest
from rich.console import Console, Group
from rich.text import Text

from lab.core import telemetry
from lab.core.config import ConsumerConfig, ProducerConfig
from lab.core.modules import get_module
from lab.tools.sim import simulate
from lab.ui.dashboard import DashboardState, render
from lab.ui.keys import legend
from lab.ui.textgrid import Framed, beside, grid, line
from tests.screens import ansi, as_panel

MODES = ("drop", "block", "drop-oldest", "sample", "shed", "unbounded")


@functools.cache
def module12(mode: str, producers: int = 1, rate: float = 20.0) -> Tuple[DashboardState, float]:
    """Module 12's defaults (buffer 50, 10 msg/s worker), 6 s into the run."""
    consumer = ConsumerConfig(module=12, mode=mode, capacity=50, process_rate=10.0)
    configs = [ProducerConfig(module=12, messages_per_s=rate) for _ in range(producers)]
    state = DashboardState(12, get_module(12).title, 12000)
    for at in (5.0, 6.0):
        result = simulate(
            consumer, configs, duration=at, drain=0.0, stop_times=[1e9] * producers, latency=0.001
        )
        snap = result.consumer_core.snapshot(at, rss_mb=40.0, cpu_pct=5.0)
        snap["id"] = "consumer-12000"
        state.update(telemetry.complete(snap), at)
        for core in result.producer_cores:
            prod = core.snapshot(at, rss_mb=30.0, cpu_pct=3.0)
            prod["id"] = prod["name"]
            state.update(telemetry.complete(prod), at)
    return state, 6.0


def screen(state: DashboardState, now: float, width: int = 80, height: int = 24) -> str:
    console = Console(width=width, height=height, record=True, force_terminal=False)
    console.print(render(state, now, width, height))
    return console.export_text()


def row(text: str, label: str) -> str:
    """The dashboard line whose left table starts with ``label``."""
    return next(line for line in text.splitlines() if line.startswith(f"│ {label} "))


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_fits_80_by_24_with_the_key_legend(mode):
    state, now = module12(mode)
    state = copy.deepcopy(state)
    state.key_legend = legend(get_module(12).live_modes)  # as in the demo
    lines = screen(state, now).splitlines()
    assert len(lines) <= 24
    assert all(len(text) <= 80 for text in lines)
    assert "Module 12" in lines[0] and f"mode {mode.upper()}" in lines[0]
    assert lines[-1].startswith("╰")  # nothing cropped at the bottom
    assert "keys: 1 drop 2 block" in "\n".join(lines)
    assert "…" not in "\n".join(lines)  # no table is cut at 80 columns


def test_drop_mode_shows_the_exact_counters_and_says_it_is_dropping():
    state, now = module12("drop")
    totals = state.consumer["totals"]
    text = screen(state, now)
    assert totals["dropped"] > 0
    for label in ("received", "Dropped", "processed"):
        assert re.search(rf"{label}\s+{totals[label.lower()]:,}\s", row(text, label))
    assert "OVERWHELMED and DROPPING: 20.0/s in, 10.0/s processed, 50% dropped" in text
    assert "50/50 (100%)" in text or "49/50 (98%)" in text


def test_block_mode_shows_zero_drops_and_the_wait_upstream():
    state, now = module12("block")
    text = screen(state, now)
    assert re.search(r"Dropped\s+0\s+0\.0/s", row(text, "Dropped"))
    assert (
        "waiting upstream" in text
        and "BACKPRESSURE: producer waits, 0.0/s dropped, time to processed p99" in text
    )


def test_a_producer_at_mps_max_is_sent_of_max_not_of_zero():
    state, now = module12("block")
    assert "of 20.0/s" in row(screen(state, now), "malformed")  # the row "sent" shares
    state = copy.deepcopy(state)
    for producer in state.producers.values():
        producer["target_mps"] = None  # what a producer at --mps max reports
    assert re.search(r"sent\s+\S+ of max\b", row(screen(state, now), "malformed"))


def test_unbounded_mode_shows_the_memory_guard():
    state, now = module12("unbounded")
    text = screen(state, now)
    assert "unbounded" in row(text, "BUFFER") and "/512 MB" in row(text, "MEMORY")
    assert "UNBOUNDED:" in text


def test_two_producers_get_a_row_each():
    state, now = module12("drop", producers=2, rate=10.0)
    text = screen(state, now)
    assert re.search(r"producer\s+sent/s\s+accepted\s+dropped\s+shed\s+p99\s+credit", text)
    assert row(text, "sim-0") and row(text, "sim-1")


def test_a_narrow_terminal_drops_minor_rows_before_cutting_the_latency():
    state, now = module12("block")
    text = screen(state, now, 60, 20)
    assert all(len(text_line) <= 60 for text_line in text.splitlines())
    p99 = state.producers["sim-0"]["latency"]["p99_s"]
    assert re.search(rf"p99\s+{p99 * 1000:.0f} ms", text)  # the latency survives whole
    assert "CPU" not in text and "memory" not in text  # the least important rows went
    assert "…" not in text


def test_a_waiting_dashboard_and_a_dead_consumer_say_so():
    waiting = DashboardState(12, "Backpressure", 12000)
    assert "waiting for the consumer on port 12000" in screen(waiting, 1.0)
    state, now = module12("drop")
    assert "consumer down: no telemetry for 5 s" in screen(state, now + 5.0)


# -- the layout helpers ------------------------------------------------------------------------
def test_grid_aligns_columns_by_their_widest_cell_and_keeps_cell_styles():
    lines = grid(
        [[Text("Dropped", style="red"), "1,451"], ["shed", "0"]],
        "lr",
        header=("consumer", "total"),
    )
    assert [text.plain for text in lines] == [
        "consumer  total",
        "Dropped   1,451",
        "shed          0",
    ]
    assert lines[0].spans[0].style == "bold"  # the header
    assert any(span.style == "red" for span in lines[1].spans)


def test_grid_counts_terminal_cells_not_characters():
    lines = grid([["µs", "█▅"], ["ms", "x"]], "lr", gap=1)
    assert [text.cell_len for text in lines] == [5, 5]


def test_beside_pads_the_left_block_and_lines_never_wrap():
    left = [line("a"), line("bbb")]
    lines = beside(left, [line("x"), line("y"), line("z")], gap=2)
    assert [text.plain for text in lines] == ["a    x", "bbb  y", "     z"]
    assert all(text.no_wrap and text.overflow == "ellipsis" for text in lines)


# -- the frame drawn by hand is rich's Panel, cell for cell and style for style ----------------
def dashboards():
    for mode in MODES:
        yield module12(mode)
    yield module12("drop", producers=2, rate=10.0)
    waiting = DashboardState(12, "Backpressure", 12000)
    yield waiting, 1.0
    state, now = module12("shed")
    yield state, now + 5.0  # consumer down: a red frame
    with_legend = copy.deepcopy(module12("block")[0])
    with_legend.key_legend = legend(get_module(12).live_modes)
    yield with_legend, 6.0


@pytest.mark.parametrize("size", [(80, 24), (120, 40), (60, 20), (44, 30), (200, 12)])
def test_the_frame_draws_exactly_what_rich_panel_draws(size):
    width, height = size
    for state, now in dashboards():
        framed = render(state, now, width, height)
        assert isinstance(framed, Framed)
        assert ansi(framed, width, height) == ansi(as_panel(framed), width, height)


def test_the_frame_cuts_long_lines_and_wraps_text_that_may_wrap_as_rich_does():
    long_line = line(("x" * 50, "bold"), " tail")
    tab_line = line("a\tb")
    wrapping = Text("a message that is allowed to wrap over two lines", style="red")
    title = Text(" a title longer than the room on the top edge ", style="bold")
    group = Group(line("in a group"), Text("wraps too, if it must", style="dim"))
    for width in (5, 12, 30, 60):
        framed = Framed([long_line, tab_line, wrapping, group, line("µs █▅ 漢字")], title, "red")
        assert ansi(framed, width, 20) == ansi(as_panel(framed), width, 20), width
