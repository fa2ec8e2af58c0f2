"""The worked example of ``docs/architecture.md`` runs: its code block, exactly as written,
adds an overflow mode, and a ``ConsumerCore`` in that mode decides as the page says."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Dict, List

import pytest

from lab.core import protocol
from lab.core.clock import FakeClock
from lab.core.config import ConsumerConfig
from lab.core.consumer_core import ConsumerCore
from lab.core.modes import MODES
from lab.core.modules import get_module

DOC = Path(__file__).resolve().parents[2] / "docs" / "architecture.md"


def example_code() -> str:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## Worked example", 1)[1]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1, "the worked example has one python block"
    return blocks[0]


@pytest.fixture
def example_mode():
    """The doc's code run once; the MODES table is put back afterwards."""
    saved = dict(MODES)
    namespace: Dict[str, object] = {"__name__": "architecture_example"}
    exec(compile(example_code(), str(DOC), "exec"), namespace)
    try:
        yield namespace
    finally:
        MODES.clear()
        MODES.update(saved)


def send(core: ConsumerCore, seqs: range, now: float) -> Counter:
    """One DATA frame with ``seqs``; the verdicts the core sends back, counted by kind."""
    records = [protocol.Record(seq, now, now) for seq in seqs]
    core.on_frame(b"p", protocol.encode_data(records, seqs.start), now)
    core.advance(now)
    kinds: List[int] = []
    for _, frame in core.take_outgoing():
        for run in protocol.decode_verdicts(frame).runs:
            kinds += [run.kind] * run.count
    return Counter(kinds)


def test_the_doc_adds_a_mode_with_one_class_and_one_row(example_mode):
    info = MODES["drop-early"]
    assert info.bounded and info.build().name == "drop-early"
    assert isinstance(info.build(), example_mode["EarlyDropPolicy"])


def test_a_consumer_in_the_new_mode_drops_at_half_the_buffer(example_mode):
    clock = FakeClock()
    config = ConsumerConfig.for_module(
        get_module(12), mode="drop-early", buffer=10, process_rate="1"
    )
    core = ConsumerCore(config, clock.now())
    assert type(core.policy).__name__ == "EarlyDropPolicy"

    first = send(core, range(0, 10), clock.now())
    assert first == {protocol.ACCEPTED: 5, protocol.DROPPED: 5}
    assert core.buffer.depth == 5

    clock.advance(1.0)  # one service time: the first message is done
    second = send(core, range(10, 13), clock.now())
    assert second == {protocol.ACCEPTED: 1, protocol.DROPPED: 2}
    summary = core.summary(clock.now())
    assert (summary["processed"], summary["dropped"], summary["depth"]) == (1, 7, 5)


def test_without_the_example_the_mode_is_a_bad_flag():
    assert "drop-early" not in MODES
    with pytest.raises(ValueError, match="--mode 'drop-early' is not allowed"):
        ConsumerConfig.for_module(get_module(12), mode="drop-early")
