"""The consumer counts queue waits longer than ``--wait-target-ms``, filed by the tenth of a
second in which each late message was accepted (the evidence of challenge 12)."""

from __future__ import annotations

from lab.core import protocol
from lab.core.config import ConsumerConfig
from lab.core.consumer_core import ConsumerCore
from lab.core.protocol import Record


def _core(wait_target_s=None) -> ConsumerCore:
    config = ConsumerConfig(
        mode="drop", capacity=10, process_rate=10.0, wait_target_s=wait_target_s
    )
    core = ConsumerCore(config, 100.0, session="s1")
    core.on_frame(b"p", protocol.encode_json(protocol.HELLO, {"producer": "p", "sent": 0}), 100.0)
    return core


def _send(core: ConsumerCore, seqs, now: float) -> None:
    records = [Record(seq, 0.0, 0.0, 0, 0) for seq in seqs]
    core.on_frame(b"p", protocol.encode_data(records, seqs[0]), now)


def test_waits_past_the_target_are_counted_by_the_time_of_acceptance():
    core = _core(wait_target_s=0.25)
    _send(core, [0, 1, 2, 3, 4], 100.0)  # served at 0.0, 0.1, 0.2, 0.3, 0.4 s: waits 0..0.4
    _send(core, [5], 100.42)  # starts at 0.5: waited 0.08 s
    core.advance(101.0)
    summary = core.summary(101.0)
    assert summary["wait_target_ms"] == 250.0
    assert summary["waited_past_target"] == 2  # waits of 0.3 and 0.4 s
    assert summary["waited_past_target_accepted_at"] == [[0.0, 2]]
    assert summary["processed"] == 6


def test_late_messages_accepted_later_are_filed_later():
    core = _core(wait_target_s=0.05)
    _send(core, [0, 1], 100.0)  # the second waits 0.1 s
    _send(core, [2, 3], 101.35)  # the fourth waits 0.1 s, accepted 1.35 s in
    core.advance(102.0)
    summary = core.summary(102.0)
    assert summary["waited_past_target"] == 2
    assert summary["waited_past_target_accepted_at"] == [[0.0, 1], [1.3, 1]]


def test_without_a_target_nothing_is_counted():
    core = _core()
    _send(core, list(range(5)), 100.0)
    core.advance(101.0)
    summary = core.summary(101.0)
    assert summary["wait_target_ms"] is None
    assert summary["waited_past_target"] == 0
    assert summary["waited_past_target_accepted_at"] == []
