"""ConsumerCore: frames in, verdicts and credit out, exact counts, in a fake clock."""

from __future__ import annotations

import math
from typing import Dict, List, Optional, Sequence, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lab.core import protocol
from lab.core.clock import FakeClock
from lab.core.config import ConsumerConfig
from lab.core.consumer_core import MAX_PRODUCERS, ConsumerCore
from lab.core.protocol import Record

ALICE, BOB = b"alice", b"bob"
ACC, DROP, SAMP, SHED = protocol.ACCEPTED, protocol.DROPPED, protocol.SAMPLED_OUT, protocol.SHED
EVIC, PROC = protocol.EVICTED, protocol.PROCESSED
NO_CREDIT = protocol.NO_CREDIT_LIMIT


# -- helpers ---------------------------------------------------------------------------------
def make(mode: str = "drop", capacity: int = 3, rate: float = 1.0, **options) -> ConsumerCore:
    config = ConsumerConfig(mode=mode, capacity=capacity, process_rate=rate, **options)
    return ConsumerCore(config, 0.0, session="s1")


def data(
    seqs: Sequence[int],
    ordinal: Optional[int] = None,
    due: float = 0.0,
    priority: int = 0,
    attempt: int = 0,
) -> bytes:
    """A DATA frame; by default each record's ordinal is its seq (no retries yet)."""
    seqs = list(seqs)
    records = [Record(seq, due, due, priority, attempt) for seq in seqs]
    first = ordinal if ordinal is not None else (seqs[0] if seqs else 0)
    return protocol.encode_data(records, first)


def hello(name: str = "alice", sent: int = 0) -> bytes:
    return protocol.encode_json(
        protocol.HELLO, {"producer": name, "pid": 4242, "session": None, "sent": sent}
    )


def bye(name: str = "alice") -> bytes:
    return protocol.encode_json(protocol.BYE, {"producer": name})


def outgoing(core: ConsumerCore) -> List[Tuple[bytes, str, object]]:
    """Decoded ``take_outgoing()``: (peer, "WELCOME", body) or (peer, "VERDICTS", Verdicts)."""
    out = []
    for peer, frame in core.take_outgoing():
        kind = protocol.frame_type(frame)
        if kind == protocol.VERDICTS:
            out.append((peer, "VERDICTS", protocol.decode_verdicts(frame)))
        else:
            out.append((peer, protocol.FRAME_NAMES[kind], protocol.decode_json(frame)))
    return out


def verdicts(core: ConsumerCore, peer: bytes = ALICE) -> Tuple[Optional[int], List[tuple]]:
    """The last credit limit sent to ``peer`` and every verdict, one (kind, seq, retry) each."""
    credit, flat = None, []
    for to, name, body in outgoing(core):
        if to != peer or name != "VERDICTS":
            continue
        credit = body.credit_limit
        for kind, first, count, retry in body.runs:
            flat += [(kind, seq, retry) for seq in range(first, first + count)]
    return credit, flat


def counts(core: ConsumerCore, name: str = "alice") -> Dict[str, int]:
    return core.summary(0.0)["producers"][name]


def credit_of(core: ConsumerCore, now: float) -> Dict[str, Tuple[bool, int]]:
    return {row["name"]: (row["active"], row["credit"]) for row in core.snapshot(now)["producers"]}


@pytest.fixture(autouse=True)
def _no_core_escapes_with_broken_accounting(monkeypatch):
    """Every core built in these tests must end with its identities closed."""
    built: List[ConsumerCore] = []
    original = ConsumerCore.__init__

    def tracking_init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        built.append(self)

    monkeypatch.setattr(ConsumerCore, "__init__", tracking_init)
    yield
    for core in built:
        assert core.identity_errors() == []


# -- overflow modes --------------------------------------------------------------------------
def test_drop_mode_with_capacity_k_rejects_exactly_the_overflow():
    core = make("drop", capacity=3, rate=1.0)
    core.on_frame(ALICE, data(range(5)), 0.0)
    core.advance(0.0)
    credit, flat = verdicts(core)
    assert credit == NO_CREDIT
    assert flat == [(ACC, 0, 0), (ACC, 1, 0), (ACC, 2, 0), (DROP, 3, 0), (DROP, 4, 0)]
    c = counts(core)
    assert (c["received"], c["accepted"], c["dropped"], c["depth"], c["processed"]) == (
        5,
        3,
        2,
        3,
        0,
    )
    core.advance(1.0)  # one service of 1 s: seq 0 is done, one slot is free
    core.on_frame(ALICE, data([5, 6]), 1.0)
    assert verdicts(core)[1] == [(ACC, 5, 0), (DROP, 6, 0)]
    assert core.summary(1.0)["processed"] == 1


def test_verdicts_are_batched_into_runs_per_producer():
    core = make("drop", capacity=3)
    core.on_frame(ALICE, data(range(5)), 0.0)
    core.on_frame(BOB, data(range(2)), 0.0)
    frames = outgoing(core)
    assert [(peer, name) for peer, name, _ in frames] == [(ALICE, "VERDICTS"), (BOB, "VERDICTS")]
    assert [tuple(r) for r in frames[0][2].runs] == [(ACC, 0, 3, 0), (DROP, 3, 2, 0)]
    assert [tuple(r) for r in frames[1][2].runs] == [(DROP, 0, 2, 0)]
    assert core.take_outgoing() == []


def test_drop_oldest_evicts_the_oldest_waiting_never_the_one_in_service():
    core = make("drop-oldest", capacity=3, rate=1.0)
    core.on_frame(ALICE, data([0]), 0.0)  # the idle worker starts it at once
    core.on_frame(ALICE, data([1, 2, 3, 4]), 0.1)
    _, flat = verdicts(core)
    assert flat == [
        (ACC, 0, 0),
        (ACC, 1, 0),
        (ACC, 2, 0),
        (EVIC, 1, 0),
        (ACC, 3, 0),
        (EVIC, 2, 0),
        (ACC, 4, 0),
    ]
    c = counts(core)
    assert (c["received"], c["accepted"], c["dropped"], c["evicted"], c["depth"]) == (5, 3, 2, 2, 3)
    core.advance(10.0)
    summary = core.summary(10.0)
    assert summary["processed"] == 3  # seqs 0, 3 and 4
    assert verdicts(core)[1] == []  # no confirmations outside block mode


def test_drop_oldest_in_one_batch_still_serves_the_first_arrival():
    """The worker is idle when the batch arrives: seq 0 goes into service as it arrives
    (service.py's rule), so the victim is seq 1, the oldest *waiting* message."""
    core = make("drop-oldest", capacity=3, rate=1.0)
    core.on_frame(ALICE, data(range(4)), 0.0)
    _, flat = verdicts(core)
    assert (EVIC, 1, 0) in flat
    assert (EVIC, 0, 0) not in flat
    core.advance(1.0)
    assert core.summary(1.0)["processed"] == 1
    assert counts(core)["processed"] == 1


def test_drop_oldest_with_only_the_message_in_service_drops_the_arrival():
    core = make("drop-oldest", capacity=1, rate=1.0)
    core.on_frame(ALICE, data([0]), 0.0)
    core.on_frame(ALICE, data([1]), 0.5)
    assert verdicts(core)[1] == [(ACC, 0, 0), (DROP, 1, 0)]
    assert counts(core)["evicted"] == 0


def test_sample_keeps_exactly_one_in_n_above_the_watermark():
    core = make("sample", capacity=10, rate=1.0, sample_every=3, sample_watermark=0.5)
    core.on_frame(ALICE, data(range(11)), 0.0)
    _, flat = verdicts(core)
    kept = [seq for kind, seq, _ in flat if kind == ACC]
    sampled = [seq for kind, seq, _ in flat if kind == SAMP]
    assert kept == [0, 1, 2, 3, 4, 5, 8]
    assert sampled == [6, 7, 9, 10]
    c = counts(core)
    assert (c["accepted"], c["sampled_out"], c["dropped"], c["depth"]) == (7, 4, 0, 7)


def test_shed_answers_with_the_configured_retry_after():
    core = make("shed", capacity=2, rate=1.0, retry_after_ms=350)
    core.on_frame(ALICE, data(range(4)), 0.0)
    assert verdicts(core)[1] == [(ACC, 0, 0), (ACC, 1, 0), (SHED, 2, 350), (SHED, 3, 350)]
    c = counts(core)
    assert (c["received"], c["accepted"], c["shed"]) == (4, 2, 2)


def test_unbounded_accepts_everything():
    core = make("unbounded", capacity=3, rate=1.0)
    core.on_frame(ALICE, data(range(1000)), 0.0)
    summary = core.summary(0.0)
    assert (summary["accepted"], summary["depth"], summary["capacity"]) == (1000, 1000, None)
    assert summary["max_depth"] == 1000


def test_priority_discipline_serves_urgent_messages_first():
    core = make("drop", capacity=10, rate=1.0, discipline="priority")
    core.on_frame(ALICE, data([0], priority=2), 0.0)  # starts at once
    core.on_frame(ALICE, data([1, 2], priority=2), 0.1)
    core.on_frame(ALICE, data([3], priority=0), 0.2)
    core.advance(10.0)
    _, flat = verdicts(core)
    assert [kind for kind, _, _ in flat] == [ACC] * 4
    assert core.summary(10.0)["out_of_order"] == 2  # seqs 1 and 2 after seq 3


# -- the worker ------------------------------------------------------------------------------
def test_worker_finishes_at_exact_times_and_queue_wait_is_measured():
    core = make("drop", capacity=10, rate=2.0)
    core.on_frame(ALICE, data([0, 1, 2]), 0.0)
    core.advance(1.2)
    summary = core.summary(1.2)
    assert (summary["processed"], summary["depth"]) == (2, 1)
    assert summary["queue_wait_max_ms"] == 500.0  # seq 1 waited 0.5 s
    core.advance(1.5)
    summary = core.summary(1.5)
    assert (summary["processed"], summary["depth"]) == (3, 0)
    assert summary["queue_wait_max_ms"] == 1000.0
    assert summary["queue_wait_p50_ms"] == pytest.approx(500.0, rel=0.004)
    assert summary["queue_wait_mean_ms"] == pytest.approx(500.0)


def test_next_deadline_is_the_next_finish_or_the_expiry_check():
    core = make("drop", capacity=10, rate=2.0)
    core.on_frame(ALICE, data([0, 1]), 0.0)
    core.advance(0.45)
    assert core.next_deadline(0.45) == 0.5  # worker finish, before the 0.55 expiry check
    core.advance(0.5)
    assert core.next_deadline(0.5) == 0.55  # the expiry check, before the 1.0 finish
    assert core.next_deadline(7.0) == 7.0  # never in the past


def test_mean_depth_is_time_weighted_even_when_services_finish_in_one_call():
    core = make("drop", capacity=10, rate=8.0)
    core.on_frame(ALICE, data([0, 1, 2]), 0.0)
    core.advance(1.0)  # finishes at 0.125, 0.25, 0.375 in one call
    summary = core.summary(1.0)
    assert summary["max_depth"] == 3
    assert summary["mean_depth"] == pytest.approx((3 + 2 + 1) * 0.125)


def test_infinite_process_rate_finishes_everything_on_arrival():
    core = make("drop", capacity=3, rate=math.inf)
    core.on_frame(ALICE, data(range(100)), 0.0)
    summary = core.summary(0.0)
    assert (summary["received"], summary["processed"], summary["dropped"]) == (100, 100, 0)
    assert summary["depth"] == 0
    assert summary["process_rate"] is None


def test_infinite_process_rate_in_block_mode_confirms_and_respects_credit():
    core = make("block", capacity=3, rate=math.inf)
    core.on_frame(ALICE, hello(), 0.0)
    assert verdicts(core)[0] == 3
    core.on_frame(ALICE, data(range(5)), 0.0)
    core.advance(0.0)
    credit, flat = verdicts(core)
    # Records 3 and 4 are over credit, but nobody was promised the room they use: the
    # worker had already finished 0..2, so they are accepted, not counted as over credit.
    assert [s for k, s, _ in flat if k == ACC] == [0, 1, 2, 3, 4]
    assert [s for k, s, _ in flat if k == PROC] == [0, 1, 2, 3, 4]
    assert counts(core)["over_credit"] == 0
    assert credit == 5 + 3


def test_stall_freezes_the_worker():
    core = make("drop", capacity=10, rate=2.0)
    core.on_frame(ALICE, data([0, 1]), 0.0)
    core.worker.stall(0.0, 3.0)
    core.advance(3.4)
    assert core.summary(3.4)["processed"] == 0
    core.advance(4.0)
    assert core.summary(4.0)["processed"] == 2


def test_out_of_order_ignores_retries():
    core = make("drop", capacity=10, rate=math.inf)
    core.on_frame(ALICE, data([5]), 0.0)
    core.on_frame(ALICE, data([3], ordinal=1, attempt=1), 0.0)
    assert core.summary(0.0)["out_of_order"] == 0
    core.on_frame(ALICE, data([4], ordinal=2), 0.0)
    assert core.summary(0.0)["out_of_order"] == 1


# -- handshake -------------------------------------------------------------------------------
def test_hello_is_answered_with_a_welcome():
    core = make("drop", capacity=7, rate=3.0, producer_timeout_s=4.0, heartbeat_s=0.25)
    core.on_frame(b"peer-id", hello("alice"), 0.0)
    frames = outgoing(core)
    assert [(peer, name) for peer, name, _ in frames] == [(b"peer-id", "WELCOME")]
    welcome = frames[0][2]
    assert welcome == {
        "lag_messages": 0,
        "lag_s": 0.0,
        "session": "s1",
        "module": 12,
        "mode": "drop",
        "capacity": 7,
        "window": 7,
        "credit_limit": None,
        "pull": False,
        "heartbeat_s": 0.25,
        "timeout_s": 4.0,
        "protocol": 2,
    }
    assert list(core.summary(0.0)["producers"]) == ["alice"]


def test_every_welcome_carries_the_lag_in_messages_and_seconds():
    core = make("drop", capacity=10, rate=1.0)
    core.on_frame(ALICE, hello(), 0.0)
    core.on_frame(ALICE, data([0, 1, 2, 3, 4]), 0.0)
    outgoing(core)
    lags = []
    for now in (0.5, 2.5):
        core.advance(now)
        core.on_frame(ALICE, hello(sent=5), now)
        welcome = [body for _, name, body in outgoing(core) if name == "WELCOME"][0]
        lags.append((welcome["lag_messages"], welcome["lag_s"]))
    # held = waiting + in service (5, then 3 after two 1 s services); the oldest waiting
    # message arrived at 0
    assert lags == [(5, 0.5), (3, 2.5)]


def test_block_mode_welcome_carries_the_credit():
    core = make("block", capacity=5)
    core.on_frame(ALICE, hello(), 0.0)
    frames = outgoing(core)
    assert [name for _, name, _ in frames] == ["WELCOME", "VERDICTS"]
    assert frames[0][2]["credit_limit"] == 5
    assert frames[1][2].credit_limit == 5
    assert frames[1][2].runs == []


def test_a_producer_without_hello_is_still_served():
    core = make("drop", capacity=3)
    core.on_frame(b"\xffodd\x00peer", data([0]), 0.0)
    assert core.summary(0.0)["received"] == 1
    (name,) = core.summary(0.0)["producers"]
    assert name.isprintable()


# -- block mode: credit ----------------------------------------------------------------------
def test_block_mode_grants_cumulative_credit_as_room_frees_up():
    core = make("block", capacity=4, rate=4.0)
    core.on_frame(ALICE, hello(), 0.0)
    assert verdicts(core)[0] == 4
    core.on_frame(ALICE, data(range(4)), 0.0)
    core.advance(0.0)
    credit, flat = verdicts(core)
    assert credit == 4
    assert flat == [(ACC, s, 0) for s in range(4)]
    core.advance(0.5)  # two services of 0.25 s done: two slots come back as credit
    credit, flat = verdicts(core)
    assert credit == 6
    assert flat == [(PROC, 0, 0), (PROC, 1, 0)]
    core.advance(0.6)
    assert verdicts(core) == (None, [])  # nothing new: no frame at all
    assert counts(core)["over_credit"] == 0


def test_confirmations_follow_the_verdicts_in_one_frame():
    core = make("block", capacity=4, rate=4.0)
    core.on_frame(ALICE, hello(), 0.0)
    outgoing(core)
    core.on_frame(ALICE, data([0, 1]), 0.0)
    core.advance(0.25)
    core.on_frame(ALICE, data([2]), 0.25)
    core.advance(0.25)
    _, flat = verdicts(core)
    assert flat == [(ACC, 0, 0), (ACC, 1, 0), (ACC, 2, 0), (PROC, 0, 0)]


def test_over_credit_messages_are_dropped_and_counted():
    core = make("block", capacity=3, rate=1.0)
    core.on_frame(ALICE, hello(), 0.0)
    outgoing(core)
    core.on_frame(ALICE, data(range(5)), 0.0)
    _, flat = verdicts(core)
    assert flat == [(ACC, 0, 0), (ACC, 1, 0), (ACC, 2, 0), (DROP, 3, 0), (DROP, 4, 0)]
    c = counts(core)
    assert (c["accepted"], c["dropped"], c["over_credit"]) == (3, 2, 2)


def test_credit_is_split_fairly_between_two_producers():
    core = make("block", capacity=10, rate=8.0)  # 0.125 s per message
    core.on_frame(ALICE, hello("alice"), 0.0)
    core.on_frame(BOB, hello("bob"), 0.0)
    assert credit_of(core, 0.0) == {"alice": (True, 10), "bob": (True, 0)}
    core.on_frame(ALICE, data(range(10)), 0.0)
    core.advance(0.625)  # 5 done: 5 slots free, and bob holds nothing
    assert credit_of(core, 0.625) == {"alice": (True, 0), "bob": (True, 5)}
    outgoing(core)
    core.on_frame(BOB, data(range(5)), 0.625)
    core.advance(1.25)  # alice's other 5 done
    assert credit_of(core, 1.25) == {"alice": (True, 5), "bob": (True, 0)}
    assert verdicts(core, ALICE)[0] == 15
    core.on_frame(ALICE, data(range(10, 15)), 1.25)
    rows = {row["name"]: row for row in core.snapshot(1.25)["producers"]}
    assert rows["alice"]["depth"] == rows["bob"]["depth"] == 5
    assert core.totals().over_credit == 0


def test_a_newcomer_is_never_starved_by_a_fast_producer():
    core = make("block", capacity=6, rate=8.0)
    core.on_frame(ALICE, hello("alice"), 0.0)
    core.on_frame(BOB, hello("bob"), 0.0)
    sent = {ALICE: 0, BOB: 0}
    now = 0.0
    for step in range(80):  # both always send every credit they have
        core.advance(now)
        for peer, name, body in outgoing(core):
            if name != "VERDICTS":
                continue
            n = body.credit_limit - sent[peer]
            if n > 0:
                core.on_frame(peer, data(range(sent[peer], body.credit_limit)), now)
                sent[peer] = body.credit_limit
        if step >= 3:  # alice had it all at first; from then on each holds its half
            assert (counts(core, "alice")["depth"], counts(core, "bob")["depth"]) == (3, 3)
        now += 0.125
    alice, bob = counts(core, "alice"), counts(core, "bob")
    assert alice["over_credit"] == bob["over_credit"] == 0
    assert abs(alice["processed"] - bob["processed"]) <= 6
    assert alice["processed"] + bob["processed"] == 79  # the worker never idled


def test_credit_of_a_silent_producer_is_taken_back():
    core = make("block", capacity=10, rate=8.0, producer_timeout_s=2.0)
    clock = FakeClock(0.0)
    core.on_frame(ALICE, hello("alice"), clock.now())
    core.on_frame(BOB, hello("bob"), clock.now())
    core.on_frame(ALICE, data(range(10)), clock.now())
    core.advance(clock.advance(0.625))
    assert credit_of(core, clock.now()) == {"alice": (True, 0), "bob": (True, 5)}
    core.advance(clock.advance(0.625))  # alice's messages are all done
    assert credit_of(core, clock.now()) == {"alice": (True, 5), "bob": (True, 5)}
    while clock.now() < 2.0:  # alice keeps saying hello; bob says nothing
        core.on_frame(ALICE, hello("alice"), clock.advance(0.25))
        core.advance(clock.now())
    assert credit_of(core, clock.now())["bob"] == (True, 5)
    core.on_frame(ALICE, hello("alice"), clock.advance(0.25))
    core.advance(clock.now())
    assert clock.now() > 2.0
    assert credit_of(core, clock.now()) == {"alice": (True, 10), "bob": (False, 0)}
    assert any("bob" in text and "silent" in text for _, text in core.events)


def test_bye_gives_the_credit_back_at_once():
    core = make("block", capacity=10, rate=8.0)
    core.on_frame(ALICE, hello("alice"), 0.0)
    core.on_frame(BOB, hello("bob"), 0.0)
    core.on_frame(ALICE, data(range(10)), 0.0)
    core.advance(1.25)
    assert credit_of(core, 1.25) == {"alice": (True, 5), "bob": (True, 5)}
    outgoing(core)
    core.on_frame(BOB, bye("bob"), 1.25)
    assert credit_of(core, 1.25) == {"alice": (True, 10), "bob": (False, 0)}
    assert verdicts(core, ALICE)[0] == 20


def test_a_producer_that_comes_back_gets_credit_again():
    core = make("block", capacity=4, rate=4.0)
    core.on_frame(ALICE, hello("alice"), 0.0)
    core.on_frame(ALICE, bye("alice"), 0.0)
    assert credit_of(core, 0.0) == {"alice": (False, 0)}
    core.on_frame(ALICE, hello("alice"), 1.0)
    core.advance(1.0)
    assert credit_of(core, 1.0) == {"alice": (True, 4)}


def test_switching_to_block_mode_live_counts_credit_from_what_was_sent():
    core = make("drop", capacity=10, rate=1.0)
    core.on_frame(ALICE, hello(), 0.0)
    core.on_frame(ALICE, data(range(5)), 0.0)
    outgoing(core)
    core.set_mode("block", 0.0)
    credit, _ = verdicts(core)
    assert credit == 10  # 5 sent so far + the 5 free slots
    core.on_frame(ALICE, data(range(5, 10)), 0.0)
    assert counts(core)["over_credit"] == 0
    core.set_mode("drop", 0.0)
    assert verdicts(core)[0] == NO_CREDIT
    assert core.summary(0.0)["mode"] == "drop"
    assert counts(core)["accepted"] == 10


def test_confirmations_owed_in_block_mode_go_out_under_its_limit_before_a_switch():
    core = make("block", capacity=10, rate=10.0)
    core.on_frame(ALICE, hello(), 0.0)
    core.on_frame(ALICE, data(range(5)), 0.0)
    core.advance(0.0)
    outgoing(core)
    core.on_frame(ALICE, data(range(5, 8)), 0.35)  # the worker catches up first: 3 finished
    core.set_mode("drop", 0.35)
    frames = [body for _, name, body in outgoing(core) if name == "VERDICTS"]
    assert [f.credit_limit for f in frames] == [10, NO_CREDIT]
    assert [tuple(run) for run in frames[0].runs] == [(ACC, 5, 3, 0), (PROC, 0, 3, 0)]
    assert frames[1].runs == []


# -- malformed input -------------------------------------------------------------------------
def _too_big_data() -> bytes:
    return protocol.encode_data([Record(0, 0.0, 0.0, payload=b"x" * (4 * 1024 * 1024))])


def _data_with_count(frame: bytes, count: int) -> bytes:
    out = bytearray(frame)
    out[4:8] = count.to_bytes(4, "little")
    return bytes(out)


MALFORMED = {
    "empty": b"",
    "truncated-header": b"BP\x02",
    "wrong-magic": b"PB" + data([0])[2:],
    "wrong-version": b"BP\x03" + data([0])[3:],
    "unknown-type": b"BP\x02\x09" + data([0])[4:],
    "oversize": _too_big_data(),
    "trailing-bytes": data([0, 1]) + b"\x00",
    "truncated-record": data([0, 1])[:-3],
    "count-too-high": _data_with_count(data([0]), 2),
    "verdicts-wrong-direction": protocol.encode_verdicts(5, [(ACC, 0, 1, 0)]),
    "welcome-wrong-direction": protocol.encode_json(protocol.WELCOME, {"session": "x"}),
    "control-wrong-direction": protocol.encode_json(protocol.CONTROL, {"rate": 5}),
    "hello-not-json": b"BP\x02\x01{oops",
    "hello-not-object": b"BP\x02\x01[1,2]",
    "hello-oversize": protocol.encode_json(protocol.HELLO, {"pad": "x" * 20_000}),
    "bye-not-utf8": b"BP\x02\x05\xff\xfe",
}


@pytest.mark.parametrize("mode", ["drop", "block"])
@pytest.mark.parametrize("which", sorted(MALFORMED))
def test_malformed_frames_are_counted_and_change_nothing_else(which, mode):
    core = make(mode, capacity=4, rate=2.0)
    core.on_frame(ALICE, hello(), 0.0)
    core.on_frame(ALICE, data(range(6)), 0.0)
    core.advance(0.2)
    outgoing(core)
    before = core.snapshot(0.3)
    core.on_frame(ALICE, MALFORMED[which], 0.3)
    core.on_frame(b"stranger", MALFORMED[which], 0.3)
    after = core.snapshot(0.3)
    assert after["malformed"] == before["malformed"] + 2 == 2
    before.pop("malformed")
    after.pop("malformed")
    assert after == before
    assert core.take_outgoing() == []
    assert sum(core.malformed_reasons.values()) == 2


def test_the_shell_can_count_a_message_that_never_became_a_frame():
    core = make()
    core.count_malformed("message of 3 parts")
    assert core.summary(0.0)["malformed"] == 1
    assert core.malformed_reasons == {"message of 3 parts": 1}


def test_malformed_reasons_are_bounded():
    core = make()
    for i in range(100):
        core.count_malformed(f"reason {i}")
    assert core.malformed == 100
    assert len(core.malformed_reasons) == 32


# -- reports and housekeeping ----------------------------------------------------------------
def test_snapshot_shape():
    core = make("drop", capacity=4, rate=2.0)
    core.on_frame(ALICE, hello(), 0.0)
    core.on_frame(ALICE, data(range(6)), 0.0)
    snap = core.snapshot(0.5)
    assert snap["role"] == "consumer"
    assert snap["session"] == "s1"
    assert (snap["depth"], snap["capacity"], snap["limit"], snap["max_depth"]) == (4, 4, 4, 4)
    assert snap["totals"]["received"] == 6
    assert snap["rates"]["received"] == 6.0
    assert snap["credit_outstanding"] is None
    assert snap["identity_ok"] is True
    assert snap["oldest_age_s"] == 0.5


def test_memory_guard_trips_once():
    core = make(max_memory_mb=100.0)
    assert core.observe(0.0, 50.0) is None
    assert core.observe(0.1, 150.0) == "memory_guard"
    assert core.observe(0.2, 200.0) is None
    assert core.summary(0.2)["stopped_by"] == "memory_guard"


def test_memory_guard_message_never_shows_the_peak_at_the_limit():
    core = make(max_memory_mb=100.0)
    assert core.observe(0.0, 100.0) is None  # the limit is a strict >
    assert core.observe(0.1, 100.02) == "memory_guard"
    assert any("RSS 100.1 MB > 100 MB" in text for _, text in core.events)


def test_load_signals_reach_the_policy():
    seen = []
    core = make("drop", capacity=4, rate=2.0)
    core.policy.observe = lambda signals, now: seen.append((signals, now))
    core.on_frame(ALICE, data(range(3)), 0.0)
    core.observe(0.5, 12.0)
    ((signals, now),) = seen
    assert now == 0.5
    assert (signals.arrival_per_s, signals.depth, signals.capacity, signals.rss_mb) == (
        3.0,
        3,
        4,
        12.0,
    )
    assert signals.service_rate_per_s == 2.0


def test_many_producers_are_folded_without_losing_counts():
    core = make("drop", capacity=10, rate=math.inf)
    for i in range(MAX_PRODUCERS + 10):
        core.on_frame(f"p{i}".encode(), data([0]), float(i))
    assert len(core.producers) <= MAX_PRODUCERS
    summary = core.summary(1000.0)
    assert (summary["received"], summary["processed"]) == (MAX_PRODUCERS + 10,) * 2
    assert summary["identity_errors"] == []


# -- per-class rates ---------------------------------------------------------------------------
def test_class_rows_carry_rates_from_the_core():
    core = make("priority-shed", capacity=4, rate=2.0)
    records = [Record(i, 0.0, 0.0, 2 if i % 2 else 0) for i in range(8)]
    core.on_frame(ALICE, protocol.encode_data(records, 0), 0.0)
    core.advance(0.5)  # one of the four held is done
    rows = {row["class"]: row for row in core.snapshot(0.5)["classes"]}
    assert (rows[0]["received"], rows[2]["received"]) == (4, 4)
    assert (rows[0]["received_per_s"], rows[2]["received_per_s"]) == (4.0, 4.0)
    lost = {c: rows[c]["dropped"] + rows[c]["shed"] + rows[c]["sampled_out"] for c in rows}
    assert (rows[0]["lost_per_s"], rows[2]["lost_per_s"]) == (float(lost[0]), float(lost[2]))
    assert lost[2] > 0  # optional traffic is shed first
    assert rows[0]["processed_per_s"] == 1.0 and rows[2]["processed_per_s"] == 0.0
    core.advance(1.6)
    later = {row["class"]: row for row in core.snapshot(1.6)["classes"]}
    assert later[0]["received_per_s"] == 0.0  # the window has moved past the burst
    assert later[0]["processed_per_s"] == 2.0  # done at 1.0 and 1.5


# -- policies from files ------------------------------------------------------------------------
def test_a_policy_returning_plain_strings_still_works():
    from lab.core.policies import OverflowPolicy

    class OldStyle(OverflowPolicy):
        name = "old-style"
        retry_after_ms = 450

        def decide(self, message, buffer, now):
            return ("accept", "drop", "sample-out", "shed")[message.seq % 4]

    core = make("drop", capacity=10)
    core.set_policy(OldStyle(), 0.0)
    core.on_frame(ALICE, data(range(4)), 0.0)
    assert verdicts(core)[1] == [(ACC, 0, 0), (DROP, 1, 0), (SAMP, 2, 0), (SHED, 3, 450)]
    assert (counts(core)["dropped"], counts(core)["sampled_out"], counts(core)["shed"]) == (1,) * 3


def test_a_policy_returning_nonsense_is_an_error_that_names_it():
    from lab.core.policies import OverflowPolicy

    class Broken(OverflowPolicy):
        name = "broken"

        def decide(self, message, buffer, now):
            return 42

    core = make("drop", capacity=10)
    core.set_policy(Broken(), 0.0)
    with pytest.raises(ValueError, match="policy broken returned 42"):
        core.on_frame(ALICE, data([0]), 0.0)
    core.buffer.drain()  # the record was counted as received: close the books for the fixture
    core.producers.clear()


# -- the fast paths change nothing ------------------------------------------------------------
FAST_MODES = [
    "drop",
    "block",
    "drop-oldest",
    "sample",
    "shed",
    "priority",
    "priority-shed",
    "degrade",
    "admit",
    "unbounded",
]


@st.composite
def _scripts(draw):
    """A consumer's life: a mode, a service rate, and steps of frames, stalls and time."""
    mode = draw(st.sampled_from(FAST_MODES))
    rate = draw(st.sampled_from([math.inf, math.inf, 300.0]))
    steps, next_seq = [], {ALICE: 0, BOB: 0}
    for _ in range(draw(st.integers(1, 12))):
        what = draw(st.sampled_from(["data", "data", "data", "advance", "stall", "hello"]))
        peer = draw(st.sampled_from([ALICE, BOB]))
        if what == "data":
            n = draw(st.integers(0, 40))
            retry = draw(st.booleans())
            first = next_seq[peer] - (n if retry and next_seq[peer] >= n else 0)
            classes = draw(st.lists(st.integers(0, 9), min_size=n, max_size=n))
            records = [
                Record(first + i, 0.0, 0.0, cls, 1 if retry else 0) for i, cls in enumerate(classes)
            ]
            steps.append(("data", peer, protocol.encode_data(records, next_seq[peer])))
            next_seq[peer] += n
        elif what == "hello":
            steps.append(("hello", peer, hello(peer.decode(), next_seq[peer])))
        else:
            steps.append((what, peer, draw(st.floats(0.0, 0.3))))
    return mode, rate, steps


def _run_script(mode: str, rate: float, steps, fast: bool):
    config = ConsumerConfig(mode=mode, capacity=6, process_rate=rate, admit_rate=50.0)
    core = ConsumerCore(config, 0.0, session="s1", fast_paths=fast)
    seen, now = [], 0.0
    for what, peer, arg in steps:
        if what == "advance":
            now += arg
            core.advance(now)
        elif what == "stall":
            core.stall(arg, now)
        else:
            core.on_frame(peer, arg, now)
        seen.append(core.take_outgoing())
        seen.append(core.snapshot(now))
    now += 1.0
    core.advance(now)
    seen.append(core.take_outgoing())
    seen.append(core.summary(now))
    seen.append(core.snapshot(now))
    return seen


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_scripts())
def test_the_fast_paths_give_exactly_what_the_plain_path_gives(script):
    """Zero service time and whole-batch waits are shortcuts: the same frames through the
    core with and without them give identical counters, per-class counts and rates, waits,
    verdict frames and snapshots."""
    mode, rate, steps = script
    fast, plain = _run_script(mode, rate, steps, True), _run_script(mode, rate, steps, False)
    assert _rounded(fast) == _rounded(plain)


def _rounded(value):
    """Floats to 12 significant digits: a batch of waits is summed in another order than one
    by one (``record_many``), so a mean may differ in its last bit. Everything else exact."""
    if isinstance(value, float):
        return float(f"{value:.12g}")
    if isinstance(value, dict):
        return {key: _rounded(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_rounded(item) for item in value]
    return value


def test_the_fast_path_is_taken_in_the_script_above():
    """The property is not vacuous: zero service time and an idle worker do take the
    shortcut (the buffer is never used)."""
    core = make("drop", capacity=3, rate=math.inf)
    judged = []
    core.admission.judge = lambda *args: judged.append(args)  # the plain path's per record
    core.on_frame(ALICE, data(range(50)), 0.0)
    assert judged == [] and core.summary(0.0)["processed"] == 50


def test_zero_service_time_still_asks_a_policy_that_counts():
    """Admission control spends a token per message even when the worker is instant (the
    shortcut used to skip the bucket, so ``admit`` with ``--process-rate max`` shed nothing)."""
    core = make("admit", capacity=100, rate=math.inf, admit_rate=1.0, admit_burst=3)
    core.on_frame(ALICE, data(range(5)), 0.0)
    kinds = [kind for kind, _, _ in verdicts(core)[1]]
    assert kinds == [ACC, ACC, ACC, SHED, SHED]
    assert counts(core)["processed"] == 3


def test_credit_is_a_promise_a_window_that_shrank_still_accepts_what_it_granted():
    from lab.core.policies import BlockPolicy

    class Shrinking(BlockPolicy):
        window = 4

        def admission_limit(self, buffer):
            return min(self.window, buffer.free_slots() + buffer.depth)

    core = make(mode="block", capacity=10, rate=1.0, producer_timeout_s=60.0)
    policy = Shrinking()
    core.set_policy(policy, 0.0)
    core.on_frame(ALICE, hello(), 0.0)
    assert verdicts(core)[0] == 4  # a window of 4: credit up to ordinal 4
    policy.window = 1  # the window shrinks while the 4 are on their way
    core.on_frame(ALICE, data([0, 1, 2, 3]), 0.5)
    credit, flat = verdicts(core)
    assert flat == [(ACC, 0, 0), (ACC, 1, 0), (ACC, 2, 0), (ACC, 3, 0)]
    assert counts(core)["dropped"] == 0 and core.buffer.depth == 4
    # 1 s a message from 0.5: done at 1.5, 2.5, 3.5, 4.5
    core.advance(2.0)  # one done, three held: above the new window, so no new credit
    assert core.credit.promised() == 0 and core.in_flight() == 3
    core.advance(3.5)  # three done, one held: the window of 1 is full
    assert core.credit.promised() == 0 and core.in_flight() == 1
    core.advance(4.5)  # all done: credit for one more
    assert core.credit.promised() == 1 and core.in_flight() == 1
