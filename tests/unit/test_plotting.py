"""Tests of lab/ui/plotting.py: recordings made by the real cores in simulated time, plotted.

The recordings are written the way the shells write them (``snapshot()`` plus ``id`` and
``t``), by driving ConsumerCore and ProducerCore in a simulated-time loop modelled on
``lab/tools/sim.py`` (which only returns the end state), so the plotting code reads exactly the
schema the cores produce and cannot drift from it.
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import pytest

from lab.core.config import ConsumerConfig, ProducerConfig
from lab.core.consumer_core import ConsumerCore
from lab.core.producer_core import ProducerCore
from lab.ui.plotting import (
    RecordingError,
    load_recording,
    plot_compare,
    plot_run,
    worst_latency,
)

EPOCH = 1_700_000_000.0
STEP = 0.005  # simulated seconds per loop turn
SNAPSHOT_EVERY = 0.25
WIRE_DELAY = 0.002  # one-way network delay, so producer latencies are never exactly 0
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# -- a recording made by the real cores -----------------------------------------------------
class Bench:
    """One consumer and some producers exchanging frames in simulated time."""

    def __init__(self, mode: str, rates: Sequence[float], capacity: int = 20) -> None:
        self.now = 0.0
        self.config = ConsumerConfig(mode=mode, capacity=capacity, process_rate=10.0)
        self.consumer = ConsumerCore(self.config, 0.0, session="session-1")
        self.producers = [
            ProducerCore(ProducerConfig(rate=rate, name=f"sim-{i}", seed=i), 0.0)
            for i, rate in enumerate(rates)
        ]
        self.wire: List[tuple] = []  # (arrival time, "up"/"down", producer index, frame)
        self.lines: List[Dict[str, Any]] = []
        self._next_snapshot = 0.0

    def run_until(self, end: float) -> None:
        while self.now < end:
            self._turn()
            if self.now >= self._next_snapshot:
                self._record()
                self._next_snapshot += SNAPSHOT_EVERY
            self.now = round(self.now + STEP, 6)

    def restart_consumer(self, mode: Optional[str] = None) -> None:
        config = ConsumerConfig(
            mode=mode or self.config.mode, capacity=self.config.capacity, process_rate=10.0
        )
        self.consumer = ConsumerCore(config, self.now, session="session-2")
        self.wire = [item for item in self.wire if item[1] == "down"]

    def _turn(self) -> None:
        now = self.now
        for index, producer in enumerate(self.producers):
            producer.advance(now)
            for frame in producer.take_control_frames():
                self.wire.append((now + WIRE_DELAY, "up", index, frame))
            out = producer.pull_frame(now)
            while out is not None:
                producer.mark_sent(out, now)
                self.wire.append((now + WIRE_DELAY, "up", index, out.data))
                out = producer.pull_frame(now)
        self._deliver()
        self.consumer.advance(now)
        for peer, frame in self.consumer.take_outgoing():
            index = int(peer.decode().split("-")[-1])
            self.wire.append((now + WIRE_DELAY, "down", index, frame))

    def _deliver(self) -> None:
        due = [item for item in self.wire if item[0] <= self.now]
        self.wire = [item for item in self.wire if item[0] > self.now]
        for _, direction, index, frame in due:
            if direction == "up":
                self.consumer.on_frame(f"sim-{index}".encode(), frame, self.now)
            else:
                self.producers[index].on_frame(frame, self.now)

    def _record(self) -> None:
        """What consumer.py and producer.py write: snapshot() plus ``id`` and ``t``."""
        snapshot = self.consumer.snapshot(self.now, rss_mb=40.0, cpu_pct=5.0)
        snapshot.update(id="consumer-12000", port=12000, t=EPOCH + self.now)
        self.lines.append(snapshot)
        for producer in self.producers:
            snapshot = producer.snapshot(self.now, rss_mb=30.0, cpu_pct=3.0)
            snapshot.update(id=producer.name, t=EPOCH + self.now)
            self.lines.append(snapshot)

    def write(self, path: Path, shuffle: bool = True) -> Path:
        lines = self.lines
        if shuffle:  # several processes append to one file: not in time order
            consumer = [s for s in lines if s["role"] == "consumer"]
            producers = [s for s in lines if s["role"] == "producer"]
            lines = producers + consumer
        path.write_text("".join(json.dumps(s) + "\n" for s in lines), encoding="utf-8")
        return path


def simulated(path: Path, mode: str, duration: float = 8.0, rates=(30.0,)) -> Bench:
    bench = Bench(mode, rates)
    bench.run_until(duration)
    bench.write(path)
    return bench


# -- PNG checks -----------------------------------------------------------------------------
def png_size(path: Path):
    """(width, height) from the IHDR chunk, after checking the signature."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def assert_good_png(path: Path) -> None:
    width, height = png_size(path)
    assert 1200 <= width <= 2400 and 900 <= height <= 1800, (width, height)
    assert path.stat().st_size > 30_000  # a figure, not a blank canvas
    from matplotlib.image import imread

    pixels = imread(str(path))
    assert pixels.shape[:2] == (height, width)
    assert pixels.std() > 0.05  # something was drawn


# -- load_recording: exact values -----------------------------------------------------------
def consumer_line(t, session, mode, depth, received, processed, dropped, wait_s=0.0, **extra):
    line = {
        "v": 1,
        "role": "consumer",
        "id": "consumer-12000",
        "t": t,
        "session": session,
        "module": 12,
        "mode": mode,
        "depth": depth,
        "capacity": 50,
        "limit": 50,
        "rates": {"received": 20.0, "processed": 10.0, "dropped": 10.0},
        "totals": {
            "received": received,
            "accepted": processed + depth,
            "processed": processed,
            "dropped": dropped,
            "sampled_out": 0,
            "shed": 0,
        },
        "queue_wait": {"p50_s": wait_s / 2, "p99_s": wait_s, "max_s": wait_s},
    }
    line.update(extra)
    return line


def producer_line(t, p50_s, p99_s, produced):
    return {
        "role": "producer",
        "id": "p-1",
        "name": "alpha",
        "t": t,
        "module": 12,
        "latency": {"p50_s": p50_s, "p95_s": p99_s, "p99_s": p99_s, "max_s": p99_s},
        "totals": {"produced": produced},
        "consumer_mode": "drop",
    }


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    second = consumer_line(101.0, "s1", "block", 10, 20, 5, 5, wait_s=0.25)
    lines = [
        json.dumps(consumer_line(100.0, "s1", "drop", 0, 0, 0, 0)),
        json.dumps(producer_line(101.5, 0.004, 0.5, 30)),  # written late: not in time order
        "this is not json",
        json.dumps({"role": "visualizer", "t": 100.2}),
        json.dumps([1, 2, 3]),
        json.dumps(second),
        json.dumps(second),  # recorded twice (process and visualizer): counted once
        "",
        json.dumps(consumer_line(102.0, "s2", "block", 2, 3, 1, 0)),  # restarted
        json.dumps(producer_line(100.5, 0.002, 0.010, 10)),
    ]
    path = tmp_path / "tiny.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_load_recording_returns_exact_series(tiny: Path) -> None:
    recording = load_recording(str(tiny))
    consumer = recording.consumer
    assert recording.start == 100.0
    assert recording.duration == 2.0
    assert recording.module == 12
    assert recording.skipped == 3 and recording.duplicates == 1
    assert consumer.t == [0.0, 1.0, 2.0]
    assert consumer.depth == [0.0, 10.0, 2.0]
    assert consumer.capacity == [50.0, 50.0, 50.0]
    assert consumer.rates["received"] == [20.0, 20.0, 20.0]
    # An empty window (nothing processed) is a gap, not a wait of 0.
    assert consumer.wait_p99_ms[1] == 250.0
    assert math.isnan(consumer.wait_p99_ms[0]) and math.isnan(consumer.wait_p99_ms[2])
    # Totals carry on across the restart: session 2's counters start where session 1 ended.
    assert consumer.totals["received"] == [0.0, 20.0, 23.0]
    assert consumer.totals["processed"] == [0.0, 5.0, 6.0]
    assert consumer.totals["dropped"] == [0.0, 5.0, 5.0]
    assert recording.modes == ["drop", "block"]
    assert [(m.t, m.kind, m.text) for m in recording.markers] == [
        (1.0, "mode", "→ block"),
        (2.0, "restart", "consumer restart"),
    ]
    (producer,) = recording.producers
    assert (producer.name, producer.t, producer.produced) == ("alpha", [0.5, 1.5], 30)
    assert producer.p50_ms == pytest.approx([2.0, 4.0])
    assert producer.p99_ms == pytest.approx([10.0, 500.0])
    assert "skipped 3 line(s)" in " ".join(recording.notes)
    assert recording.label == "tiny.jsonl (drop → block)"


def test_only_the_last_of_appended_runs_is_used(tmp_path: Path) -> None:
    path = tmp_path / "twice.jsonl"
    early = [consumer_line(t, "old", "drop", 50, 99, 9, 40) for t in (10.0, 11.0)]
    late = [consumer_line(t, "new", "shed", 1, 5, 4, 0) for t in (500.0, 501.0)]
    path.write_text("".join(json.dumps(s) + "\n" for s in early + late), encoding="utf-8")
    recording = load_recording(str(path))
    assert recording.runs_in_file == 2
    assert recording.modes == ["shed"] and recording.consumer.t == [0.0, 1.0]
    assert recording.markers == []
    assert any("2 runs" in note for note in recording.notes)


def test_worst_latency_holds_each_producer_until_it_goes_stale() -> None:
    from lab.ui.plotting import ProducerSeries

    fast = ProducerSeries("a", "a", t=[0.0, 1.0, 5.0], p99_ms=[1.0, 2.0, 3.0])
    slow = ProducerSeries("b", "b", t=[0.5, 1.5], p99_ms=[100.0, 200.0])
    times, worst = worst_latency([fast, slow])
    assert times == [0.0, 0.5, 1.0, 1.5, 5.0]
    assert worst == [1.0, 100.0, 100.0, 200.0, 3.0]  # b is stale by t=5


# -- recordings made by the cores -----------------------------------------------------------
def test_simulated_recording_matches_the_cores(tmp_path: Path) -> None:
    bench = simulated(tmp_path / "drop.jsonl", "drop", duration=8.0)
    recording = load_recording(str(tmp_path / "drop.jsonl"))
    consumer = recording.consumer
    last = bench.lines[-2]  # the consumer's last snapshot (the producer's follows)
    assert consumer.final("received") == last["totals"]["received"] > 0
    assert consumer.final("dropped") == last["totals"]["dropped"] > 0
    assert consumer.depth[-1] == last["depth"] == 20
    assert consumer.capacity[-1] == 20.0
    assert recording.modes == ["drop"] and recording.skipped == 0
    assert recording.producers[0].name == "sim-0"
    assert max(v for v in recording.producers[0].p99_ms if v == v) > 0


def test_plot_run_writes_a_png(tmp_path: Path) -> None:
    simulated(tmp_path / "drop.jsonl", "drop")
    output = tmp_path / "run.png"
    plot_run(str(tmp_path / "drop.jsonl"), str(output))
    assert_good_png(output)


def test_plot_run_with_mode_switch_restart_and_three_producers(tmp_path: Path) -> None:
    bench = Bench("drop", rates=(20.0, 10.0, 5.0))
    bench.run_until(4.0)
    bench.consumer.set_mode("shed", bench.now)
    bench.run_until(8.0)
    bench.restart_consumer(mode="block")
    bench.run_until(12.0)
    path = bench.write(tmp_path / "busy.jsonl")
    with path.open("a", encoding="utf-8") as extra:
        extra.write("{truncated by a crash\n")
    recording = load_recording(str(path))
    assert recording.modes == ["drop", "shed", "block"]
    assert [m.kind for m in recording.markers] == ["mode", "restart"]
    assert len(recording.producers) == 3 and recording.skipped == 1
    output = tmp_path / "busy.png"
    plot_run(str(path), str(output))
    assert_good_png(output)


def test_plot_run_of_many_producers_and_of_a_producer_only_recording(tmp_path: Path) -> None:
    bench = Bench("sample", rates=(8.0,) * 6)
    bench.run_until(6.0)
    path = bench.write(tmp_path / "many.jsonl")
    plot_run(str(path), str(tmp_path / "many.png"))
    assert_good_png(tmp_path / "many.png")
    producers_only = tmp_path / "producers.jsonl"
    producers_only.write_text(
        "".join(json.dumps(s) + "\n" for s in bench.lines if s["role"] == "producer"),
        encoding="utf-8",
    )
    recording = load_recording(str(producers_only))
    assert recording.consumer is None and recording.modes == ["sample"]
    plot_run(str(producers_only), str(tmp_path / "producers.png"))
    assert_good_png(tmp_path / "producers.png")


def test_an_unbounded_buffer_has_no_capacity_or_limit_line(tmp_path: Path) -> None:
    import math

    path = tmp_path / "unbounded.jsonl"
    simulated(path, "unbounded", duration=4.0, rates=(100.0,))
    consumer = load_recording(str(path)).consumer
    assert all(math.isnan(v) for v in consumer.capacity + consumer.limit)
    assert consumer.depth[-1] > 100  # it grows without bound
    plot_run(str(path), str(tmp_path / "unbounded.png"))
    assert_good_png(tmp_path / "unbounded.png")


def test_plot_compare_writes_a_png(tmp_path: Path) -> None:
    simulated(tmp_path / "drop.jsonl", "drop")
    simulated(tmp_path / "block.jsonl", "block")
    output = tmp_path / "compare.png"
    plot_compare(str(tmp_path / "drop.jsonl"), str(tmp_path / "block.jsonl"), str(output))
    assert_good_png(output)
    block = load_recording(str(tmp_path / "block.jsonl")).consumer
    assert block.final("dropped") == 0 and block.final("processed") > 0


# -- unusable recordings --------------------------------------------------------------------
@pytest.mark.parametrize(
    "content, expected",
    [
        (None, "no recording at"),
        ("", "is empty"),
        ("\n  \n", "only blank lines"),
        ("garbage\n{not json\n[1, 2]\n", "3 lines are not JSON snapshots"),
        ('{"role": "consumer"}\n{"role": "robot", "t": 1}\n', "no consumer or producer"),
    ],
)
def test_unusable_recordings_raise_a_helpful_error(tmp_path: Path, content, expected) -> None:
    path = tmp_path / "run.jsonl"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(RecordingError) as caught:
        plot_run(str(path), str(tmp_path / "out.png"))
    message = str(caught.value)
    assert expected in message and "--record FILE.jsonl" in message
    assert "\n" not in message
    assert not (tmp_path / "out.png").exists()


def test_compare_names_the_bad_file(tmp_path: Path) -> None:
    good = tmp_path / "good.jsonl"
    simulated(good, "drop", duration=3.0)
    with pytest.raises(RecordingError, match="missing.jsonl"):
        plot_compare(str(good), str(tmp_path / "missing.jsonl"), str(tmp_path / "c.png"))


def test_an_unwritable_output_is_a_recording_error(tmp_path: Path, tiny: Path) -> None:
    with pytest.raises(RecordingError, match="cannot write"):
        plot_run(str(tiny), str(tmp_path / "no" / "such" / "dir" / "run.png"))


def test_cli_plot_reports_a_missing_recording_in_one_line(tmp_path: Path, capsys) -> None:
    from lab.ui.cli import main

    with pytest.raises(SystemExit) as done:
        main(["plot", str(tmp_path / "nothing.jsonl"), "-o", str(tmp_path / "x.png")])
    assert done.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--record FILE.jsonl" in err
