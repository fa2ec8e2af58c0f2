"""Adaptive concurrency limits: AIMD and Gradient by their rules, the gate's sums, and the
producer core never sending past its limit (fake clock, simulated time)."""

from __future__ import annotations

import pytest

from lab.core import protocol
from lab.core.concurrency import AimdLimit, GradientLimit, LimitGate, make_limit, stretch
from lab.core.config import ConsumerConfig, ProducerConfig
from lab.core.modules import MODULES
from lab.core.producer_core import ProducerCore
from lab.tools.sim import simulate

NO_CREDIT = protocol.NO_CREDIT_LIMIT


# -- AIMD ------------------------------------------------------------------------------------
def test_aimd_adds_one_per_window_of_good_answers():
    limit = AimdLimit(initial=10, timeout_s=1.0)
    for _ in range(9):
        limit.on_success(1.0, 0.05, 10, 0.95)
    assert limit.limit == 10
    limit.on_success(1.0, 0.05, 10, 0.95)
    assert limit.limit == 11
    for _ in range(10):
        limit.on_success(1.1, 0.05, 11, 1.05)
    assert limit.limit == 11  # a window is now 11 answers
    limit.on_success(1.1, 0.05, 11, 1.05)
    assert limit.limit == 12


def test_aimd_does_not_grow_while_less_than_half_is_used():
    limit = AimdLimit(initial=10)
    for _ in range(50):
        limit.on_success(1.0, 0.01, 4, 0.99)
    assert limit.limit == 10


def test_aimd_cuts_once_per_round_trip():
    limit = AimdLimit(initial=10, timeout_s=1.0)
    limit.on_loss(5.0, 4.9)
    assert limit.limit == 9  # int(10 * 0.9)
    limit.on_loss(5.1, 4.95)  # sent before the cut: the same congestion
    assert limit.limit == 9
    limit.on_loss(5.2, 5.1)
    assert limit.limit == 8  # int(9 * 0.9)
    limit.on_success(6.0, 1.5, 8, 5.5)  # slower than the timeout: a loss
    assert limit.limit == 7


def test_aimd_cut_takes_at_least_one_and_stops_at_the_floor():
    limit = AimdLimit(initial=5)
    limit.on_loss(1.0, 1.0)
    assert limit.limit == 4  # int(4.5) = 4
    limit.on_loss(2.0, 2.0)
    assert limit.limit == 3  # int(3.6) = 3
    for t in range(3, 10):
        limit.on_loss(float(t), float(t))
    assert limit.limit == 1


# -- Gradient --------------------------------------------------------------------------------
def test_gradient_grows_by_its_queue_allowance_then_backs_off_smoothed():
    limit = GradientLimit(initial=10, window_samples=2, window_s=0.0)
    limit.on_success(0.0, 0.1, 10, 0.0)
    assert limit.windows == 0  # one answer is not a window
    limit.on_success(0.1, 0.1, 10, 0.0)
    assert limit.rtt_noload == pytest.approx(0.1)
    assert limit.estimate == pytest.approx(14.0)  # 10 * 1 + max(4, sqrt(10))
    limit.on_success(0.5, 0.4, 14, 0.1)
    limit.on_success(0.5, 0.4, 14, 0.1)
    # gradient = clamp(2 * 0.1 / 0.4) = 0.5: 14 * 0.5 + 4 = 11, smoothed 0.8 * 14 + 0.2 * 11
    assert limit.estimate == pytest.approx(13.4)
    assert limit.limit == 13


def test_gradient_ignores_windows_that_did_not_use_the_limit_and_halves_on_drops():
    limit = GradientLimit(initial=20, window_samples=1, window_s=0.0)
    limit.on_success(0.0, 0.1, 2, 0.0)  # 2 + max(4, sqrt(20)) < 20: no evidence
    assert limit.estimate == 20.0
    limit.on_loss(0.2, 0.1)
    limit.on_success(0.2, 0.1, 20, 0.1)
    assert limit.estimate == pytest.approx(0.8 * 20 + 0.2 * 10)  # 18.0


def test_gradient_window_needs_its_time_as_well_as_its_answers():
    limit = GradientLimit(initial=10, window_samples=1, window_s=0.5)
    limit.on_success(0.0, 0.1, 10, 0.0)
    limit.on_success(0.2, 0.3, 10, 0.0)
    assert limit.windows == 0
    limit.on_success(0.5, 0.2, 10, 0.0)
    assert limit.windows == 1
    assert limit.last_rtt == pytest.approx(0.2)  # the mean of the window's three answers


def test_gradient_probe_forgets_the_noload_round_trip():
    limit = GradientLimit(initial=10, window_samples=1, window_s=0.0, probe_windows=2)
    limit.on_success(0.0, 0.1, 10, 0.0)
    assert limit.estimate == pytest.approx(14.0)
    limit.on_success(0.1, 0.1, 14, 0.0)
    assert limit.rtt_noload == float("inf") and limit.estimate == pytest.approx(4.0)
    limit.on_success(0.2, 0.3, 4, 0.0)
    assert limit.rtt_noload == pytest.approx(0.3)


def test_make_limit_knows_the_names():
    assert make_limit("none") is None
    assert make_limit("aimd", timeout_s=0.2).timeout_s == 0.2
    assert make_limit("gradient").name == "gradient"
    with pytest.raises(ValueError):
        make_limit("vegas")


# -- the gate --------------------------------------------------------------------------------
def test_gate_room_sums_and_stretch_are_exact():
    gate = LimitGate(AimdLimit(initial=2), now=0.0)
    assert (gate.room(0), gate.room(2), gate.room(5)) == (2, 0, 0)
    first = gate.report(0.0)
    gate.observe(1.0, 2, sending=True)
    gate.success(1.5, 1.0, 2)
    last = gate.report(2.0)
    assert last["limit_area"] == pytest.approx(4.0)  # 2 for 2 s
    assert last["outstanding_area"] == pytest.approx(2.0)  # 2 from t = 1 to 2
    assert (last["answers"], last["over_limit"], last["max_outstanding"]) == (1, 0, 2)
    means = stretch(first, last)
    assert means["limit"] == pytest.approx(2.0)
    assert means["rate"] == pytest.approx(0.5) and means["rtt"] == pytest.approx(0.5)
    assert means["little"] == pytest.approx(0.25)
    gate.observe(2.5, 3, sending=True)
    assert gate.over_limit == 1
    assert stretch(last, last)["limit"] is None


# -- the producer ----------------------------------------------------------------------------
def welcome() -> bytes:
    body = {"session": "s1", "mode": "drop", "capacity": 50, "window": 50}
    return protocol.encode_json(protocol.WELCOME, body)


def test_producer_sends_no_more_than_its_limit_and_asks_for_confirmations():
    core = ProducerCore(ProducerConfig(messages_per_s=1000.0, limit_algorithm="aimd"), 0.0)
    core.advance(0.0)
    hello = [f for f in core.take_control_frames() if protocol.frame_type(f) == protocol.HELLO]
    assert protocol.decode_json(hello[0])["confirm"] is True
    core.on_frame(welcome(), 0.0)
    core.advance(0.1)
    assert len(core.outbox) > 10
    frame = core.pull_frame(0.1)
    assert frame is not None and len(frame.entries) == 10  # AIMD starts at 10
    core.mark_sent(frame, 0.1)
    assert core.sendable() == 0 and core.pull_frame(0.1) is None
    first = frame.entries[0].seq
    core.on_frame(protocol.encode_verdicts(NO_CREDIT, [(protocol.ACCEPTED, first, 10, 0)]), 0.11)
    assert core.sendable() == 0  # accepted is not answered: still outstanding
    processed = [(protocol.PROCESSED, first, 3, 0)]
    core.on_frame(protocol.encode_verdicts(NO_CREDIT, processed), 0.13)
    assert core.sendable() == 3
    state = core.snapshot(0.13)["concurrency"]
    assert (state["limit"], state["outstanding"], state["answers"]) == (10, 7, 3)
    assert state["rtt_sum_s"] == pytest.approx(0.09)


def test_producer_loses_on_a_shed_and_cuts_its_limit():
    config = ProducerConfig(messages_per_s=1000.0, limit_algorithm="aimd", retry="none")
    core = ProducerCore(config, 0.0)
    core.on_frame(welcome(), 0.0)
    core.advance(0.1)
    frame = core.pull_frame(0.1)
    core.mark_sent(frame, 0.1)
    first = frame.entries[0].seq
    core.on_frame(protocol.encode_verdicts(NO_CREDIT, [(protocol.SHED, first, 4, 100)]), 0.12)
    assert core.gate.limit == 9 and core.gate.losses == 4
    assert core.sendable() == 3  # 9 - the 6 still out


@pytest.mark.parametrize("algorithm", ["aimd", "gradient"])
def test_simulated_limit_never_passed_and_littles_law_holds(algorithm):
    consumer = ConsumerConfig(mode="drop", capacity=50, process_rate=100.0)
    producer = ProducerConfig(messages_per_s=200.0, limit_algorithm=algorithm)
    producer.limit_timeout_s = 0.2
    result = simulate(consumer, [producer], duration=10.0, latency=0.0002)
    summary = result.producers[0]
    state = summary["concurrency"]
    assert state["over_limit"] == 0 and summary["identity_errors"] == []
    assert summary["dropped"] == 0 and summary["processed"] == summary["produced"]
    area = state["outstanding_area"] / state["elapsed_s"]
    little = (state["answers"] / state["elapsed_s"]) * (state["rtt_sum_s"] / state["answers"])
    assert area == pytest.approx(little)  # every outstanding message ends as an answer here
    # the worker is kept busy: 100/s for the 10 s run, then the drain's last few
    assert 1000 <= state["answers"] <= 100 * (10.0 + 1.0) + 1


def test_module_defaults_work_under_a_limit():
    for number in (12, 15):
        config = ProducerConfig.for_module(MODULES[number], limit_algorithm="aimd")
        assert config.limit_algorithm == "aimd"
    with pytest.raises(ValueError, match="--limit-algorithm"):
        ProducerConfig.for_module(MODULES[12], limit_algorithm="vegas")
    with pytest.raises(ValueError, match="--limit-timeout-ms"):
        ProducerConfig.for_module(MODULES[12], limit_timeout_ms=0)


def test_concurrency_row_shows_limit_outstanding_and_round_trips():
    from lab.core.telemetry import complete
    from lab.ui.panels import concurrency_row

    assert "none" in concurrency_row(None)[1].plain
    concurrency = {
        "algorithm": "aimd",
        "limit": 18,
        "outstanding": 17,
        "answers": 4,
        "rtt_sum_s": 0.8,
        "rtt_min_s": 0.01,
    }
    snap = complete({"role": "producer", "id": "p", "concurrency": concurrency})
    label, text = concurrency_row(snap)
    assert label == "limit"
    assert text.plain.startswith("aimd 17/18 out · rtt mean 200 ms · min 10 ms")
