"""Module 19 on screen and on paper: the panel (goodput next to throughput, the discipline's
state) and ``bplab compare``'s goodput overlay, from a simulated 2x overload with a 500 ms
deadline."""

from __future__ import annotations

import json
from pathlib import Path

from lab.core import protocol
from lab.core.config import ConsumerConfig, ProducerConfig
from lab.core.consumer_core import ConsumerCore
from lab.core.modules import get_module
from lab.core.protocol import Record
from lab.ui.keys import key_actions, legend
from lab.ui.plotting import has_deadlines, load_recording, plot_compare
from tests.unit.test_panels import dashboard, screen, snapshots_at


def overload_screen(discipline: str) -> str:
    consumer = ConsumerConfig(
        module=19, capacity=100, process_rate=100.0, queue_discipline=discipline
    )
    producer = ProducerConfig(module=19, messages_per_s=200.0, deadline_s=0.5)
    runs = [(at, snapshots_at(consumer, producer, at)) for at in (4.0, 5.0)]
    return screen(dashboard(19, runs), 5.0)


def test_fifo_shows_the_waste():
    text = overload_screen("fifo")
    assert "goodput" in text and "wasted" in text and "dropped at dequeue 0" in text
    assert "within the deadline, of what was processed" in text
    assert "discipline fifo" in text


def test_the_panel_shows_the_producer_concurrency_limit_row():
    text = overload_screen("fifo")  # the producer here has no --limit-algorithm
    assert "none: no adaptive limit (--limit-algorithm aimd|gradient)" in text


def test_codel_shows_its_dropping_state():
    text = overload_screen("codel")
    assert "codel · dropping, count" in text and "(target 5 ms)" in text


def recording(tmp_path: Path, discipline: str) -> Path:
    """A consumer's snapshots, twice a second for 4 s of 2x overload, as --record writes."""
    config = ConsumerConfig(capacity=100, process_rate=100.0, queue_discipline=discipline)
    core = ConsumerCore(config, 0.0, session=discipline)
    lines = []
    for step in range(1, 801):  # 200 msg/s, 5 ms apart
        now = step * 0.005
        core.on_frame(b"p", protocol.encode_data([Record(step, now, now)], step, 500), now)
        core.take_outgoing()
        if step % 100 == 0:
            snap = core.snapshot(now)
            snap.update(id="consumer-19000", t=1_700_000_000.0 + now, port=19000)
            lines.append(json.dumps(snap))
    path = tmp_path / f"{discipline}.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_compare_overlays_goodput_when_deadlines_mattered(tmp_path: Path):
    fifo, codel = recording(tmp_path, "fifo"), recording(tmp_path, "codel")
    series = load_recording(str(fifo)).consumer
    assert has_deadlines(series) and series.rates["goodput"][-1] < 20
    assert load_recording(str(codel)).consumer.rates["goodput"][-1] > 90
    output = tmp_path / "compare.png"
    plot_compare(str(fifo), str(codel), str(output))
    assert output.stat().st_size > 10_000


def test_the_demo_has_a_key_per_discipline():
    spec = get_module(19)
    actions = key_actions(spec.live_modes, knob=spec.knob)
    assert {key: actions[key]["value"] for key in "fladc"} == {
        "f": "fifo",
        "l": "lifo",
        "a": "adaptive-lifo",
        "d": "deadline-drop",
        "c": "codel",
    }
    assert (
        actions["c"]["cmd"] == "discipline" and len(legend(spec.live_modes, spec.knob)) <= 115
    )  # as long as 16's
