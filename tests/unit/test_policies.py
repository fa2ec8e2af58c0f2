"""Overflow policies: one decision per arriving message, computed from a hand-made buffer."""

from __future__ import annotations

import pytest

from lab.core.buffer import Buffer, Message
from lab.core.modes import MODES, build_policy
from lab.core.policies import (
    ACCEPT,
    ACCEPT_EVICTING_OLDEST,
    DROP,
    SAMPLE_OUT,
    SHED,
    BlockPolicy,
    Decision,
    DropNewestPolicy,
    DropOldestPolicy,
    LoadSignals,
    OverflowPolicy,
    SamplePolicy,
    ShedPolicy,
    UnboundedPolicy,
    normalise,
)


def msg(seq: int) -> Message:
    return Message(b"p", seq)


def buffer_holding(capacity, n: int, in_service: bool = False) -> Buffer:
    buf = Buffer(capacity)
    for seq in range(n):
        buf.push(msg(seq))
    if in_service:
        buf.start_next()
    return buf


MODULE_12_MODES = {
    "block": True,
    "drop": True,
    "drop-oldest": True,
    "sample": True,
    "shed": True,
    "unbounded": False,
}


def test_modes_table_has_the_six_backpressure_modes_first():
    assert list(MODES)[:6] == list(MODULE_12_MODES)
    assert {name: MODES[name].bounded for name in MODULE_12_MODES} == MODULE_12_MODES


@pytest.mark.parametrize("mode", list(MODES))
def test_every_mode_in_the_table_builds_a_policy_named_after_it(mode):
    info = MODES[mode]
    assert info.name == mode
    assert info.behaviour
    policy = build_policy(mode)
    assert isinstance(policy, OverflowPolicy)
    assert policy.name == mode
    assert policy.uses_credit is (mode == "block")


@pytest.mark.parametrize(
    "mode, cls, uses_credit",
    [
        ("block", BlockPolicy, True),
        ("drop", DropNewestPolicy, False),
        ("drop-oldest", DropOldestPolicy, False),
        ("sample", SamplePolicy, False),
        ("shed", ShedPolicy, False),
        ("unbounded", UnboundedPolicy, False),
    ],
)
def test_build_policy_builds_each_mode(mode, cls, uses_credit):
    policy = build_policy(mode, sample_every=4, sample_watermark=0.25, retry_after_ms=350)
    assert type(policy) is cls
    assert policy.name == mode
    assert policy.uses_credit is uses_credit


def test_build_policy_passes_the_options_that_matter():
    sample = build_policy("sample", sample_every=4, sample_watermark=0.25)
    assert (sample.keep_one_in, sample.watermark) == (4, 0.25)
    full = buffer_holding(5, 5)
    assert build_policy("shed", retry_after_ms=350).decide(msg(5), full, 0.0) == Decision.shed(350)
    assert build_policy("shed").decide(msg(5), full, 0.0) == Decision.shed(200)
    assert build_policy("admit", retry_after_ms=90).decide(msg(5), full, 0.0) == Decision.shed(90)
    default_sample = build_policy("sample")
    assert (default_sample.keep_one_in, default_sample.watermark) == (10, 0.5)


def test_build_policy_rejects_unknown_modes_and_names_the_choices():
    with pytest.raises(ValueError) as error:
        build_policy("drop-newest")
    assert "drop-newest" in str(error.value)
    for name in MODES:
        assert name in str(error.value)


@pytest.mark.parametrize("mode", ["block", "drop", "drop-oldest", "shed"])
def test_bounded_modes_accept_exactly_while_there_is_room(mode):
    policy = build_policy(mode)
    for depth in range(5):
        assert policy.decide(msg(depth), buffer_holding(5, depth), 0.0) == ACCEPT
    assert policy.admission_limit(buffer_holding(5, 2)) == 5


def test_a_policy_never_touches_the_buffer():
    buf = buffer_holding(3, 3, in_service=True)
    for mode in MODES:
        build_policy(mode, sample_watermark=0.0).decide(msg(9), buf, 0.0)
    assert (buf.depth, buf.waiting, buf.in_service.seq) == (3, 2, 0)


def test_drop_newest_drops_the_arrival_when_full():
    assert DropNewestPolicy().decide(msg(5), buffer_holding(5, 5), 0.0) == DROP


def test_block_drops_a_message_that_finds_the_buffer_full():
    assert BlockPolicy().decide(msg(5), buffer_holding(5, 5), 0.0) == DROP


def test_drop_oldest_evicts_when_something_waits():
    assert DropOldestPolicy().decide(msg(5), buffer_holding(5, 5, True), 0.0) == (
        ACCEPT_EVICTING_OLDEST
    )


def test_drop_oldest_never_evicts_the_message_in_service():
    only_in_service = buffer_holding(1, 1, in_service=True)
    assert DropOldestPolicy().decide(msg(1), only_in_service, 0.0) == DROP


def test_shed_rejects_with_its_retry_after():
    policy = ShedPolicy(retry_after_ms=750)
    decision = policy.decide(msg(5), buffer_holding(5, 5), 0.0)
    assert decision == Decision.shed(750) and decision.kind == SHED.kind
    with pytest.raises(ValueError):
        ShedPolicy(retry_after_ms=-1)


def test_unbounded_accepts_everything():
    policy = UnboundedPolicy()
    assert policy.decide(msg(0), buffer_holding(None, 100_000), 0.0) == ACCEPT
    assert policy.decide(msg(0), buffer_holding(2, 2), 0.0) == ACCEPT


def test_sample_docstring_quick_fact():
    policy, buf = SamplePolicy(keep_one_in=3, watermark=0.0), Buffer(10)
    decisions = [policy.decide(msg(i), buf, 0.0) for i in range(4)]
    assert decisions == [ACCEPT, SAMPLE_OUT, SAMPLE_OUT, ACCEPT]


def test_sample_keeps_everything_below_the_watermark():
    policy = SamplePolicy(keep_one_in=3, watermark=0.5)
    buf = buffer_holding(10, 4)  # 4 < 0.5 * 10
    assert [policy.decide(msg(i), buf, 0.0) for i in range(20)] == [ACCEPT] * 20


def test_sample_keeps_exactly_one_in_n_above_the_watermark():
    policy = SamplePolicy(keep_one_in=4, watermark=0.5)
    buf = buffer_holding(10, 5)  # at the watermark: sampling starts
    decisions = [policy.decide(msg(i), buf, 0.0) for i in range(12)]
    assert decisions == [ACCEPT, SAMPLE_OUT, SAMPLE_OUT, SAMPLE_OUT] * 3
    assert decisions.count(ACCEPT) == 3


def test_sample_counting_restarts_when_depth_falls_below_the_watermark():
    policy = SamplePolicy(keep_one_in=3, watermark=0.5)
    above, below = buffer_holding(10, 6), buffer_holding(10, 2)
    assert [policy.decide(msg(i), above, 0.0) for i in range(2)] == [ACCEPT, SAMPLE_OUT]
    assert policy.decide(msg(2), below, 0.0) == ACCEPT
    assert [policy.decide(msg(i), above, 0.0) for i in range(3)] == [
        ACCEPT,
        SAMPLE_OUT,
        SAMPLE_OUT,
    ]


def test_sample_drops_a_kept_message_that_finds_the_buffer_full():
    policy = SamplePolicy(keep_one_in=2, watermark=0.5)
    full = buffer_holding(4, 4)
    assert [policy.decide(msg(i), full, 0.0) for i in range(4)] == [
        DROP,
        SAMPLE_OUT,
        DROP,
        SAMPLE_OUT,
    ]


def test_sample_on_an_unbounded_buffer_keeps_everything():
    policy = SamplePolicy(keep_one_in=5, watermark=0.0)
    assert [policy.decide(msg(i), buffer_holding(None, 50), 0.0) for i in range(5)] == [ACCEPT] * 5


@pytest.mark.parametrize("kwargs", [{"keep_one_in": 0}, {"watermark": -0.1}, {"watermark": 1.5}])
def test_sample_validates_its_options(kwargs):
    with pytest.raises(ValueError):
        SamplePolicy(**kwargs)


def test_keep_one_in_one_keeps_everything_that_fits():
    policy = SamplePolicy(keep_one_in=1, watermark=0.0)
    assert [policy.decide(msg(i), buffer_holding(3, 2), 0.0) for i in range(3)] == [ACCEPT] * 3


def test_admission_limit_hook_shortens_the_queue_for_every_mode_using_it():
    class HalfFull(DropNewestPolicy):
        def admission_limit(self, buffer):
            return buffer.capacity // 2

    policy = HalfFull()
    assert policy.decide(msg(0), buffer_holding(10, 4), 0.0) == ACCEPT
    assert policy.decide(msg(0), buffer_holding(10, 5), 0.0) == DROP


def test_observe_is_a_harmless_hook():
    signals = LoadSignals(10.0, 5.0, 5.0, 3, 10, 0.2, 0.4, 40.0)
    for mode in MODULE_12_MODES:
        assert build_policy(mode).observe(signals, 1.0) is None
    assert OverflowPolicy().decide(msg(0), buffer_holding(1, 1), 0.0) == DROP


# -- decisions as data ------------------------------------------------------------------------
def test_every_policy_returns_decisions():
    full, empty = buffer_holding(2, 2, in_service=True), buffer_holding(2, 0)
    for mode in MODES:
        policy = build_policy(mode, sample_watermark=0.0)
        for buf in (empty, full):
            assert type(policy.decide(msg(0), buf, 0.0)) is Decision, mode


def test_the_retry_after_travels_in_the_decision_not_in_the_policy():
    from lab.core.ratelimit import AdmissionPolicy

    policy = AdmissionPolicy(rate=4.0, burst=1, retry_after_ms=500)
    room = buffer_holding(10, 0)
    assert policy.decide(msg(0), room, 0.0) == ACCEPT
    assert policy.decide(msg(1), room, 0.0) == Decision.shed(250)  # next token in 1/4 s
    assert policy.decide(msg(2), room, 0.1) == Decision.shed(150)
    assert policy.decide(msg(3), buffer_holding(10, 10), 0.1) == Decision.shed(500)  # full
    assert not hasattr(policy, "retry_after_ms")


def test_old_plain_string_answers_are_normalised():
    class OldStyle(OverflowPolicy):
        retry_after_ms = 640

    policy = OldStyle()
    assert normalise("accept", policy) is ACCEPT
    assert normalise("accept-evicting-oldest", policy) is ACCEPT_EVICTING_OLDEST
    assert normalise("drop", policy) is DROP
    assert normalise("sample-out", policy) is SAMPLE_OUT
    assert normalise("shed", policy) == Decision.shed(640)  # its attribute, as before
    assert normalise(SHED, policy) == Decision.shed(640)
    assert normalise(SHED, OverflowPolicy()) == Decision.shed(0)
    assert normalise(Decision.shed(7), policy) == Decision.shed(7)
    with pytest.raises(ValueError, match="returned 'maybe'"):
        normalise("maybe", policy)


def test_the_default_retry_after_has_one_home():
    from lab.core.config import ConsumerConfig
    from lab.core.policies import DEFAULT_RETRY_AFTER_MS

    assert ConsumerConfig().retry_after_ms == DEFAULT_RETRY_AFTER_MS
    assert ShedPolicy().retry_after_ms == DEFAULT_RETRY_AFTER_MS
