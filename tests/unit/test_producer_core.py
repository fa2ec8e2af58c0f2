"""ProducerCore: pacing, credit, verdicts, retries, sessions and latency, in a fake clock."""

from __future__ import annotations

import math
from typing import Dict, List, Optional, Sequence, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lab.core import protocol
from lab.core.clock import FakeClock
from lab.core.config import ConsumerConfig, ProducerConfig
from lab.core.consumer_core import ConsumerCore
from lab.core.producer_core import RETRY_POLICIES, ProducerCore

ACC, DROP, SAMP, SHED = protocol.ACCEPTED, protocol.DROPPED, protocol.SAMPLED_OUT, protocol.SHED
EVIC, PROC = protocol.EVICTED, protocol.PROCESSED
NO_CREDIT = protocol.NO_CREDIT_LIMIT


# -- helpers ---------------------------------------------------------------------------------
def make(rate: float = 10.0, **options) -> ProducerCore:
    options.setdefault("name", "p")
    return ProducerCore(ProducerConfig(messages_per_s=rate, **options), 0.0)


def welcome(session="s1", mode="drop", window=50, credit: Optional[int] = None) -> bytes:
    body = {"session": session, "mode": mode, "capacity": window, "window": window}
    body["credit_limit"] = credit
    return protocol.encode_json(protocol.WELCOME, body)


def verdict(runs: Sequence[Tuple[int, int, int]], credit: int = NO_CREDIT, retry_ms: int = 0):
    """A VERDICTS frame from (kind, first seq, count) runs."""
    return protocol.encode_verdicts(credit, [(k, f, c, retry_ms) for k, f, c in runs])


def control(body) -> bytes:
    return protocol.encode_json(protocol.CONTROL, body)


def connected(rate: float = 10.0, credit: Optional[int] = None, **options) -> ProducerCore:
    producer = make(rate, **options)
    producer.advance(0.0)
    producer.take_control_frames()
    producer.on_frame(welcome(mode="block" if credit is not None else "drop", credit=credit), 0.0)
    return producer


def send(producer: ProducerCore, now: float) -> List[protocol.Record]:
    """Pull and mark sent every frame the producer may send now; returns the records."""
    records: List[protocol.Record] = []
    out = producer.pull_frame(now)
    while out is not None:
        producer.mark_sent(out, now)
        records += protocol.decode_data(out.data)
        out = producer.pull_frame(now)
    return records


def totals(producer: ProducerCore) -> Dict[str, int]:
    return producer.counts.as_dict()


@pytest.fixture(autouse=True)
def _no_core_escapes_with_broken_accounting(monkeypatch):
    built: List[ProducerCore] = []
    original = ProducerCore.__init__

    def tracking_init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        built.append(self)

    monkeypatch.setattr(ProducerCore, "__init__", tracking_init)
    yield
    for core in built:
        assert core.counts.identity_errors() == []


# -- handshake and pacing --------------------------------------------------------------------
def test_nothing_is_sent_before_the_welcome_and_hello_is_repeated_until_then():
    producer = make(rate=10.0, heartbeat_s=0.5)
    producer.advance(0.0)
    (hello,) = producer.take_control_frames()
    assert protocol.frame_type(hello) == protocol.HELLO
    body = protocol.decode_json(hello)
    assert (body["producer"], body["session"], body["sent"]) == ("p", None, 0)
    assert producer.pull_frame(0.0) is None
    assert producer.sendable() == 0
    assert producer.next_deadline(0.0) == 0.05  # knock again soon: the consumer may be starting
    producer.advance(0.05)
    assert len(producer.take_control_frames()) == 1
    producer.on_frame(welcome(), 0.06)
    assert producer.sendable() == 1
    assert producer.next_deadline(0.06) == 0.06  # something may go: do not wait
    producer.advance(0.1)
    assert len(producer.take_control_frames()) == 1
    send(producer, 0.1)
    assert producer.next_deadline(0.1) == pytest.approx(0.2)  # the next due message
    producer.advance(0.59)
    assert producer.take_control_frames() == []
    producer.advance(0.6)
    assert len(producer.take_control_frames()) == 1  # heartbeat every 0.5 s once up


def test_due_messages_go_out_in_one_frame_with_epoch_stamps():
    producer = make(rate=4.0, epoch_offset=1000.0)
    producer.advance(0.5)
    producer.on_frame(welcome(), 0.5)
    out = producer.pull_frame(0.5)
    ordinal, records = protocol.decode_data_frame(out.data)
    assert ordinal == 0
    assert [(r.seq, r.due, r.sent, r.attempt) for r in records] == [
        (0, 1000.0, 1000.5, 0),
        (1, 1000.25, 1000.5, 0),
        (2, 1000.5, 1000.5, 0),
    ]
    producer.mark_sent(out, 0.5)
    assert (producer.counts.produced, producer.counts.in_flight) == (3, 3)
    producer.advance(1.0)
    ordinal, records = protocol.decode_data_frame(producer.pull_frame(1.0).data)
    assert (ordinal, [r.seq for r in records]) == (3, [3, 4])


def test_payload_and_batch_size():
    producer = connected(rate=1000.0, payload_bytes=16, batch_max=40)
    producer.advance(0.099)  # 100 messages due
    frames = []
    out = producer.pull_frame(0.099)
    while out is not None:
        producer.mark_sent(out, 0.099)
        frames.append(protocol.decode_data(out.data))
        out = producer.pull_frame(0.099)
    assert [len(f) for f in frames] == [40, 40, 20]
    assert all(r.payload == b"x" * 16 for f in frames for r in f)


def test_latency_is_verdict_time_minus_due_time():
    producer = connected(rate=4.0)
    producer.advance(0.5)
    send(producer, 0.5)  # dues 0.0, 0.25, 0.5
    producer.on_frame(verdict([(ACC, 0, 3)]), 1.0)
    summary = producer.summary(1.0)
    assert (summary["accepted"], summary["in_flight"]) == (3, 0)
    assert summary["latency_max_ms"] == 1000.0
    assert summary["latency_mean_ms"] == 750.0
    assert summary["latency_p50_ms"] == pytest.approx(750.0, rel=0.004)


def test_every_final_verdict_kind_is_counted_once():
    producer = connected(rate=10.0)
    producer.advance(0.9)
    send(producer, 0.9)  # seqs 0..9
    producer.on_frame(
        verdict([(ACC, 0, 4), (DROP, 4, 3), (SAMP, 7, 2), (SHED, 9, 1)], retry_ms=100), 1.0
    )
    c = totals(producer)
    assert (c["produced"], c["accepted"], c["dropped"], c["sampled_out"], c["shed"]) == (
        10,
        4,
        3,
        2,
        1,
    )
    assert c["in_flight"] == 0
    producer.on_frame(verdict([(ACC, 0, 2)]), 1.1)  # repeated: not counted twice
    assert totals(producer) == c
    assert producer.ledger.stale_verdicts == 2


# -- credit ----------------------------------------------------------------------------------
def test_credit_is_never_exceeded():
    producer = connected(rate=100.0, credit=2, max_pending=20)
    producer.advance(0.05)  # 6 messages due
    assert producer.sendable() == 2
    records = send(producer, 0.05)
    assert [r.seq for r in records] == [0, 1]
    assert producer.pull_frame(0.05) is None
    producer.on_frame(verdict([(ACC, 0, 2)], credit=5), 0.06)
    out = producer.pull_frame(0.06)
    ordinal, records = protocol.decode_data_frame(out.data)
    assert (ordinal, [r.seq for r in records]) == (2, [2, 3, 4])
    producer.mark_sent(out, 0.06)
    assert producer.pull_frame(0.06) is None
    assert producer.snapshot(0.06)["credit"] == 0


def test_credit_is_cumulative_so_a_repeated_or_stale_limit_grants_nothing():
    producer = connected(rate=100.0, credit=3, max_pending=20)
    producer.advance(0.1)
    assert len(send(producer, 0.1)) == 3
    producer.on_frame(verdict([], credit=3), 0.1)  # the same limit again
    producer.on_frame(verdict([], credit=2), 0.1)  # an older, smaller one
    assert send(producer, 0.1) == []
    producer.on_frame(verdict([], credit=4), 0.1)
    assert send(producer, 0.1) == []  # a partial frame waits out the frame interval ...
    assert [r.seq for r in send(producer, 0.102)] == [3]  # ... then the new credit is used


# -- the frame interval: few, full frames at high rates ------------------------------------------
def run_turns(producer: ProducerCore, until: float, step: float) -> List[Tuple[float, int]]:
    """A shell that wakes every ``step`` s (as verdicts would wake it) and sends what it
    may: (time, records) of every frame sent."""
    frames = []
    now = 0.0
    while now < until:
        now = round(now + step, 9)
        producer.advance(now)
        out = producer.pull_frame(now)
        while out is not None:
            producer.mark_sent(out, now)
            frames.append((now, len(out.entries)))
            out = producer.pull_frame(now)
    return frames


def test_at_100k_msg_s_a_frame_goes_once_a_millisecond_however_often_the_loop_wakes():
    producer = connected(rate=100_000.0)
    frames = run_turns(producer, 0.1, step=0.0001)  # woken every 0.1 ms
    # about one frame per millisecond (a wake-up every 0.1 ms can be up to 0.1 ms late for
    # it), not one per wake-up: 1,000
    assert 90 <= len(frames) <= 100
    assert sum(n for _, n in frames) == producer.counts.produced
    assert 9_890 <= producer.counts.produced <= 10_001  # all that came due, but the last ms
    assert all(100 <= n <= 110 for _, n in frames[1:])
    due_to_sent = [e.sent_at - e.due for e in producer.in_flight.values()]
    # the wait it adds: at most the interval, plus the wake-up that was late for it
    assert max(due_to_sent) <= 0.001 + 0.0001 + 1e-9


def test_a_full_frame_goes_at_once_and_low_rates_are_never_held_back():
    fast = connected(rate=100_000.0, batch_max=50)
    frames = run_turns(fast, 0.01, step=0.0001)
    assert max(n for _, n in frames) == 50 and 990 <= sum(n for _, n in frames) <= 1001
    assert len(frames) >= 19  # full frames of 50 as soon as 50 are due (every 0.5 ms)
    assert sum(1 for _, n in frames if n == 50) >= 18
    slow = connected(rate=20.0)
    run_turns(slow, 1.0, step=0.0001)
    assert slow.counts.produced == 21  # the slots at 0, 0.05, ..., 1.0
    assert all(abs(e.sent_at - e.due) < 1e-3 for e in slow.in_flight.values())


def test_a_held_back_frame_sets_the_deadline_so_the_shell_does_not_spin():
    producer = connected(rate=100_000.0)
    producer.advance(0.01)
    assert send(producer, 0.01)  # a partial frame went ...
    producer.advance(0.0103)
    assert producer.pull_frame(0.0103) is None  # ... so the next one waits
    assert producer.next_deadline(0.0103) == pytest.approx(0.011)
    unpaced = connected(rate=math.inf)
    unpaced.advance(0.0)
    assert send(unpaced, 0.0)
    unpaced.advance(0.0001)
    assert unpaced.pull_frame(0.0001) is not None  # unpaced: no interval at all


def test_in_block_mode_the_outbox_is_the_consumers_window():
    producer = make(rate=100.0)
    producer.advance(0.0)
    producer.on_frame(welcome(mode="block", window=5, credit=0), 0.0)
    producer.advance(1.0)
    assert len(producer.outbox) == 5
    assert producer.outbox_limit() == 5
    assert producer.skipped == 95  # 0.05 .. 0.99; the slot at 1.0 is not missed yet


def test_a_blocked_producer_skips_its_slots_and_counts_them():
    producer = make(rate=10.0, max_pending=3)  # no consumer: nothing can leave
    producer.advance(1.0)
    assert len(producer.outbox) == 3
    assert producer.skipped == 7  # 0.3 .. 0.9; the slot at 1.0 is not missed yet
    producer.advance(1.25)
    assert producer.skipped == 10  # 1.0, 1.1, 1.2
    assert [e.seq for e in producer.outbox] == [0, 1, 2]
    summary = producer.summary(1.25)
    assert (summary["pending"], summary["skipped"], summary["produced"]) == (3, 10, 0)


def test_a_blocked_producer_does_not_ask_to_be_woken_before_its_heartbeat():
    producer = connected(rate=100.0, credit=0, max_pending=4)
    producer.advance(0.1)
    assert len(producer.outbox) == 4
    assert producer.sendable() == 0
    deadline = producer.next_deadline(0.1)
    assert deadline > 0.1  # no busy loop while blocked
    assert deadline == pytest.approx(0.6)  # the next heartbeat
    producer.on_frame(verdict([], credit=2), 0.2)
    assert producer.next_deadline(0.2) == 0.2  # credit came: send at once


def test_a_full_socket_is_waited_for_not_polled():
    producer = connected(rate=10.0)
    producer.advance(0.3)
    out = producer.pull_frame(0.3)
    producer.mark_unsent(out)  # the socket refused it
    assert [e.seq for e in producer.outbox] == [0, 1, 2, 3]
    assert producer.next_deadline(0.3) > 0.3
    out = producer.pull_frame(0.35)
    assert [r.seq for r in protocol.decode_data(out.data)] == [0, 1, 2, 3]
    producer.mark_sent(out, 0.35)
    assert producer.counts.produced == 4
    producer.advance(0.4)
    assert producer.next_deadline(0.4) == 0.4


# -- retries ---------------------------------------------------------------------------------
def test_without_retries_a_shed_message_is_given_up():
    producer = connected(rate=10.0, retry="none")
    producer.advance(0.0)
    send(producer, 0.0)
    producer.on_frame(verdict([(SHED, 0, 1)], retry_ms=200), 0.5)
    summary = producer.summary(0.5)
    assert (summary["shed"], summary["gave_up"], summary["produced"]) == (1, 1, 1)
    assert summary["latency_max_ms"] == 500.0
    producer.advance(2.0)
    assert [r.attempt for r in send(producer, 2.0)] == [0] * 20  # only new messages


def test_immediate_retries_until_max_attempts():
    producer = connected(rate=0.5, retry="immediate", max_attempts=3)
    producer.advance(0.0)
    assert [(r.seq, r.attempt) for r in send(producer, 0.0)] == [(0, 0)]
    for attempt in (1, 2):
        producer.on_frame(verdict([(SHED, 0, 1)], retry_ms=500), 0.1 * attempt)
        producer.advance(0.1 * attempt)
        assert [(r.seq, r.attempt) for r in send(producer, 0.1 * attempt)] == [(0, attempt)]
    producer.on_frame(verdict([(SHED, 0, 1)]), 0.3)
    producer.advance(0.3)
    assert send(producer, 0.3) == []
    summary = producer.summary(0.3)
    assert (summary["produced"], summary["retried"], summary["shed"], summary["gave_up"]) == (
        3,
        2,
        3,
        1,
    )
    assert (summary["unique"], summary["retry_amplification"]) == (1, 3.0)
    assert summary["latency_max_ms"] == pytest.approx(300.0)  # due 0.0, final verdict at 0.3


def test_backoff_honours_the_retry_after():
    producer = connected(rate=1.0, retry="backoff", backoff_base_s=0.05, backoff_cap_s=2.0)
    producer.advance(0.0)
    send(producer, 0.0)
    producer.advance(0.125)
    producer.on_frame(verdict([(SHED, 0, 1)], retry_ms=250), 0.125)
    assert producer.next_deadline(0.125) == 0.375  # the retry, before the heartbeat
    producer.advance(0.374)
    assert send(producer, 0.374) == []
    producer.advance(0.375)
    assert [(r.seq, r.attempt) for r in send(producer, 0.375)] == [(0, 1)]
    producer.on_frame(verdict([(ACC, 0, 1)]), 0.5)
    summary = producer.summary(0.5)
    assert (summary["produced"], summary["retried"], summary["shed"], summary["accepted"]) == (
        2,
        1,
        1,
        1,
    )
    assert summary["latency_max_ms"] == 500.0


def test_backoff_without_retry_after_waits_at_most_the_jittered_ceiling():
    producer = connected(rate=1.0, retry="backoff", backoff_base_s=0.1, backoff_cap_s=1.0)
    producer.advance(0.0)
    send(producer, 0.0)
    producer.on_frame(verdict([(SHED, 0, 1)]), 0.0)
    producer.advance(0.1)  # the first retry waits a uniform fraction of 0.1 s
    assert [(r.seq, r.attempt) for r in send(producer, 0.1)] == [(0, 1)]


def test_unknown_retry_policy_is_rejected():
    with pytest.raises(ValueError):
        make(retry="sometimes")


# -- sessions --------------------------------------------------------------------------------
def test_consumer_restart_resends_in_flight_without_producing_again():
    producer = connected(rate=10.0)
    producer.advance(0.2)
    send(producer, 0.2)  # seqs 0, 1, 2
    producer.on_frame(verdict([(ACC, 0, 1)]), 0.2)
    producer.on_frame(welcome(session="s2"), 0.3)  # a new consumer
    assert [(e.seq, e.resend) for e in producer.outbox] == [(1, True), (2, True)]
    producer.advance(0.3)
    records = send(producer, 0.3)
    assert [r.seq for r in records] == [1, 2, 3]
    c = totals(producer)
    assert (c["produced"], c["resent"], c["in_flight"], c["accepted"]) == (4, 2, 3, 1)
    producer.on_frame(verdict([(ACC, 1, 3)]), 0.3)
    assert (producer.counts.accepted, producer.counts.in_flight) == (4, 0)
    assert producer.summary(0.3)["consumer_sessions"] == 2


def test_consumer_restart_in_block_mode_also_resends_unconfirmed_messages():
    producer = connected(rate=10.0, credit=10)
    producer.advance(0.3)
    send(producer, 0.3)  # seqs 0..3
    producer.on_frame(verdict([(ACC, 0, 3), (PROC, 0, 1)], credit=10), 0.3)
    c = totals(producer)
    assert (c["accepted"], c["processed"], c["in_flight"]) == (3, 1, 1)
    assert producer.summary(0.3)["unconfirmed"] == 2
    producer.on_frame(welcome(session="s2", mode="block", credit=4 + 5), 0.4)
    c = totals(producer)
    assert (c["accepted"], c["in_flight"]) == (1, 3)  # 1 and 2 are no longer known to be held
    producer.advance(0.5)
    records = send(producer, 0.5)
    assert [r.seq for r in records] == [1, 2, 3, 4, 5]
    c = totals(producer)
    assert (c["produced"], c["resent"]) == (6, 3)
    assert producer.summary(0.5)["duplicates"] == 0
    assert producer.pull_frame(0.5) is None  # the new credit (9) is used up


def test_the_same_session_is_not_a_restart():
    producer = connected(rate=10.0)
    producer.advance(0.2)
    send(producer, 0.2)
    producer.on_frame(welcome(session="s1"), 0.3)
    assert producer.counts.resent == 0
    assert producer.summary(0.3)["consumer_sessions"] == 1


def test_a_silent_consumer_is_noticed():
    producer = connected(rate=10.0, consumer_timeout_s=2.0)
    producer.advance(0.5)
    send(producer, 0.5)
    producer.advance(2.0)
    assert producer.consumer_up
    producer.advance(2.01)
    assert not producer.consumer_up
    assert producer.pull_frame(2.01) is None
    assert producer.lost() == 6  # in flight to a consumer that is gone
    producer.on_frame(welcome(session="s1"), 2.5)
    assert producer.consumer_up


# -- verdicts after acceptance ---------------------------------------------------------------
def test_evicted_moves_a_message_from_accepted_to_dropped():
    producer = connected(rate=10.0)
    producer.advance(0.2)
    send(producer, 0.2)
    producer.on_frame(verdict([(ACC, 0, 3), (EVIC, 1, 1)]), 0.3)
    c = totals(producer)
    assert (c["accepted"], c["dropped"]) == (2, 1)
    assert producer.summary(0.3)["evicted"] == 1


def test_processed_confirmations_are_counted_once():
    producer = connected(rate=10.0, credit=10)
    producer.advance(0.2)
    send(producer, 0.2)
    producer.on_frame(verdict([(ACC, 0, 3), (PROC, 0, 2)], credit=12), 0.3)
    producer.on_frame(verdict([(PROC, 1, 2)], credit=13), 0.4)
    c = totals(producer)
    assert (c["accepted"], c["processed"]) == (3, 3)
    assert producer.summary(0.4)["duplicates"] == 1
    assert producer.summary(0.4)["unconfirmed"] == 0


def test_leaving_block_mode_forgets_confirmations():
    producer = connected(rate=10.0, credit=10)
    producer.advance(0.2)
    send(producer, 0.2)
    producer.on_frame(verdict([(ACC, 0, 3)], credit=10), 0.2)
    assert producer.summary(0.2)["unconfirmed"] == 3
    producer.on_frame(verdict([], credit=NO_CREDIT), 0.3)
    assert producer.summary(0.3)["unconfirmed"] == 0
    assert producer.credit_limit is None


# -- live control ----------------------------------------------------------------------------
def test_control_rate_changes_the_pace():
    producer = connected(rate=10.0)
    producer.advance(1.0)
    producer.on_frame(control({"rate": 20}), 1.0)
    assert producer.target_rate(1.0) == 20.0
    producer.advance(1.5)
    assert [e.due for e in producer.outbox][-10:] == pytest.approx(
        [1.05 + 0.05 * k for k in range(10)]
    )


def test_control_spike_multiplies_the_rate_for_a_while():
    producer = connected(rate=10.0)
    producer.advance(1.0)
    producer.on_frame(control({"spike": {"factor": 5, "duration": 2}}), 1.0)
    assert producer.target_rate(1.5) == 50.0
    assert producer.target_rate(3.5) == 10.0


@pytest.mark.parametrize(
    "body", [{"rate": "fast"}, {"rate": -1}, {"rate": None}, {"spike": {"factor": "x"}}]
)
def test_bad_control_values_are_malformed_and_ignored(body):
    producer = connected(rate=10.0)
    producer.on_frame(control(body), 0.5)
    assert producer.malformed == 1
    assert producer.target_rate(0.5) == 10.0


def test_an_unpaced_producer_cannot_be_given_a_rate():
    producer = connected(rate=math.inf)
    producer.on_frame(control({"rate": 5}), 0.0)
    assert producer.malformed == 1
    assert producer.target_rate(0.0) == math.inf
    with pytest.raises(ValueError):
        producer.start_spike(0.0, 2.0, 1.0)


# -- malformed input -------------------------------------------------------------------------
MALFORMED = {
    "empty": b"",
    "wrong-magic": b"XX\x01\x04" + b"\x00" * 12,
    "wrong-version": b"BP\x09\x04" + b"\x00" * 12,
    "unknown-type": b"BP\x02\x63",
    "data-wrong-direction": protocol.encode_data([protocol.Record(0, 0.0, 0.0)]),
    "hello-wrong-direction": protocol.encode_json(protocol.HELLO, {}),
    "bye-wrong-direction": protocol.encode_json(protocol.BYE, {}),
    "verdicts-truncated": verdict([(ACC, 0, 1)])[:-2],
    "verdicts-unknown-kind": protocol.encode_verdicts(NO_CREDIT, [(9, 0, 1, 0)]),
    "welcome-not-json": b"BP\x02\x02{",
}


@pytest.mark.parametrize("which", sorted(MALFORMED))
def test_malformed_frames_are_counted_and_change_nothing_else(which):
    producer = connected(rate=10.0)
    producer.advance(0.3)
    send(producer, 0.3)
    before = (totals(producer), producer.credit_limit, producer.last_heard, len(producer.outbox))
    producer.on_frame(MALFORMED[which], 0.4)
    assert producer.malformed == 1
    after = (totals(producer), producer.credit_limit, producer.last_heard, len(producer.outbox))
    assert after == before


def test_a_welcome_without_a_session_is_malformed():
    producer = make()
    producer.on_frame(protocol.encode_json(protocol.WELCOME, {"mode": "drop"}), 0.0)
    assert producer.malformed == 1
    assert producer.summary(0.0)["consumer_sessions"] == 0


# -- stopping, unpaced, priorities -----------------------------------------------------------
def test_stop_ends_production_but_not_verdicts():
    producer = connected(rate=10.0)
    producer.advance(0.2)
    send(producer, 0.2)
    producer.stop(0.25)
    producer.advance(5.0)
    assert send(producer, 5.0) == []
    assert producer.next_deadline(5.0) == 5.5  # only the heartbeat: the schedule is over
    producer.on_frame(verdict([(ACC, 0, 3)]), 5.0)
    summary = producer.summary(5.0)
    assert (summary["produced"], summary["accepted"], summary["duration_s"]) == (3, 3, 0.25)
    bye = producer.bye_frame()
    assert protocol.frame_type(bye) == protocol.BYE
    assert protocol.decode_json(bye) == {"producer": "p"}


def test_unpaced_producer_makes_a_batch_at_a_time():
    producer = connected(rate=math.inf, batch_max=100)
    producer.advance(0.0)
    assert len(producer.outbox) == 100
    assert producer.next_deadline(0.0) == 0.0
    producer.advance(0.0)
    assert len(producer.outbox) == 100  # no more until these leave
    assert len(send(producer, 0.0)) == 100
    producer.advance(0.001)
    assert len(producer.outbox) == 100
    assert producer.summary(0.001)["target_mps"] is None


def test_priority_mix_draws_classes_by_weight():
    only_one = connected(rate=100.0, priority_mix=(0.0, 1.0))
    only_one.advance(1.0)
    assert {e.priority for e in only_one.outbox} == {1}
    mixed = connected(rate=300.0, priority_mix=(1.0, 1.0, 1.0), seed=4)
    mixed.advance(1.0)
    classes = [e.priority for e in mixed.outbox]
    assert set(classes) == {0, 1, 2}
    assert all(70 <= classes.count(c) <= 130 for c in (0, 1, 2))


# -- frame to frame with a real ConsumerCore -------------------------------------------------
class Link:
    """One consumer and some producers, wired by passing encoded frames, in a FakeClock."""

    def __init__(self, consumer: ConsumerCore, producers: List[ProducerCore]) -> None:
        self.clock = FakeClock(0.0)
        self.consumer = consumer
        self.producers = {p.name.encode(): p for p in producers}
        self.over_credit_frames = 0

    def step(self, dt: float, switch_to: Optional[str] = None) -> None:
        """One turn of the real consumer's loop: data in, then control (``switch_to``, a
        live mode switch), then the worker advances and verdicts go out."""
        now = self.clock.advance(dt)
        for peer, producer in self.producers.items():
            producer.advance(now)
            for frame in producer.take_control_frames():
                self.consumer.on_frame(peer, frame, now)
            out = producer.pull_frame(now)
            while out is not None:
                ordinal, records = protocol.decode_data_frame(out.data)
                limit = producer.credit_limit
                if limit is not None and ordinal + len(records) > limit:
                    self.over_credit_frames += 1
                producer.mark_sent(out, now)
                self.consumer.on_frame(peer, out.data, now)
                out = producer.pull_frame(now)
        if switch_to is not None:
            self.consumer.set_mode(switch_to, now)
        self.consumer.advance(now)
        for peer, frame in self.consumer.take_outgoing():
            self.producers[peer].on_frame(frame, now)

    def run(self, seconds: float, dt: float = 0.01) -> None:
        for _ in range(round(seconds / dt)):
            self.step(dt)


def consumer(mode: str, capacity: int, rate: float, session: str = "c1") -> ConsumerCore:
    config = ConsumerConfig(mode=mode, capacity=capacity, process_rate=rate)
    return ConsumerCore(config, 0.0, session=session)


def test_block_mode_end_to_end_loses_nothing_and_latency_is_k_over_mu():
    link = Link(consumer("block", capacity=10, rate=10.0), [make(rate=20.0)])
    link.run(20.0)
    producer = link.producers[b"p"]
    summary, theirs = producer.summary(20.0), link.consumer.summary(20.0)
    assert link.over_credit_frames == 0
    assert (theirs["dropped"], theirs["over_credit"]) == (0, 0)
    assert producer.skipped > 150  # the producer was held back, not the buffer overrun
    assert summary["accepted"] == theirs["accepted"]
    assert summary["latency_p50_ms"] == pytest.approx(1000.0, rel=0.05)  # K / mu
    assert 0.95 * 200 <= theirs["processed"] <= 200


def test_drop_mode_end_to_end_counts_agree_on_both_ends():
    link = Link(consumer("drop", capacity=10, rate=10.0), [make(rate=20.0)])
    link.run(10.0)
    producer = link.producers[b"p"]
    mine, theirs = producer.summary(10.0), link.consumer.summary(10.0)["producers"]["p"]
    for field in ("accepted", "dropped", "sampled_out", "shed"):
        assert mine[field] == theirs[field], field
    assert mine["produced"] == theirs["received"] == 200
    assert 90 <= theirs["dropped"] <= 100


def test_live_switches_in_and_out_of_block_mode_report_no_duplicates():
    """Switching out of block mode right after data came in: the worker has just confirmed
    some records (PROCESSED is owed) when the limit changes. Those confirmations must reach
    the producer as block-mode news, not as unexpected repeats after it stopped waiting."""
    link = Link(consumer("block", capacity=10, rate=1000.0), [make(rate=2000.0)])
    producer = link.producers[b"p"]
    for turn in range(1, 2001):
        switch = None
        if turn % 37 == 0:
            switch = "drop" if link.consumer.mode == "block" else "block"
        link.step(0.005, switch_to=switch)
    link.run(1.0)
    summary = producer.summary(link.clock.now())
    assert summary["duplicates"] == 0
    assert summary["processed"] > 0 and summary["in_flight"] == 0
    assert link.over_credit_frames == 0


def test_consumer_restart_end_to_end_in_block_mode():
    first = consumer("block", capacity=10, rate=2.0, session="first")
    link = Link(first, [make(rate=5.0)])
    link.run(3.0)
    producer = link.producers[b"p"]
    held = producer.summary(3.0)["unconfirmed"] + producer.counts.in_flight
    assert held > 0
    link.consumer = consumer("block", capacity=50, rate=100.0, session="second")
    link.run(3.0)
    summary = producer.summary(6.0)
    assert summary["consumer_sessions"] == 2
    assert summary["resent"] == held
    second = link.consumer.summary(6.0)["producers"]["p"]
    assert (
        second["received"]
        == summary["resent"]
        + summary["produced"]
        - (first.summary(3.0)["producers"]["p"]["received"])
    )
    assert summary["unconfirmed"] <= 1 and summary["in_flight"] == 0
    assert link.over_credit_frames == 0


def test_a_producer_restarted_under_the_same_name_loses_nothing_in_block_mode():
    link = Link(consumer("block", capacity=5, rate=10.0), [make(rate=20.0)])
    link.run(3.0)
    old = link.producers[b"p"]
    link.consumer.on_frame(b"p", old.bye_frame(), link.clock.now())
    new = ProducerCore(ProducerConfig(messages_per_s=20.0, name="p"), link.clock.now())
    link.producers = {b"p": new}
    link.run(3.0)
    theirs = link.consumer.summary(link.clock.now())["producers"]["p"]
    assert (theirs["dropped"], theirs["over_credit"]) == (0, 0)
    assert theirs["received"] == old.counts.produced + new.counts.produced
    assert new.counts.accepted == new.counts.produced - new.counts.in_flight
    assert new.counts.produced >= 25


def test_a_producer_waiting_for_its_limiter_sleeps_until_the_next_token():
    """With messages waiting and no token, the next deadline is the next token, not now
    (a producer that said "now" would spin a CPU at 100% until the token came)."""
    producer = connected(rate=100.0, limiter="token-bucket", limiter_rate=10.0, limiter_burst=2)
    producer.advance(0.05)  # five messages due, two tokens
    assert len(send(producer, 0.05)) == 2
    assert producer.sendable() > 0 and not producer.ready(0.05)
    assert 0.05 < producer.next_deadline(0.05) <= 0.15  # next message due, or next token
    assert producer.ready(0.16) and len(send(producer, 0.16)) == 1


# -- one accounting path: a run of verdicts settles as its messages one by one would -----------
def split_into_ones(frame: bytes) -> bytes:
    """The same VERDICTS frame with every run cut into runs of one message."""
    if protocol.frame_type(frame) != protocol.VERDICTS:
        return frame
    verdicts = protocol.decode_verdicts(frame)
    ones = [
        (kind, seq, 1, retry_ms)
        for kind, first, count, retry_ms in verdicts.runs
        for seq in range(first, first + count)
    ]
    return protocol.encode_verdicts(verdicts.credit_limit, ones)


def state(producer: ProducerCore, now: float) -> Dict[str, object]:
    """Everything a verdict can change: counts, rates, every latency histogram (buckets,
    sum, max), what is in flight, unconfirmed, waiting or retried, and both reports."""

    def histogram(recent) -> tuple:
        total = recent.total()
        return (sorted(total._buckets.items()), total.count, total.sum, total.max)

    ledger, requests = producer.ledger, producer.requests
    return {
        "summary": producer.summary(now),
        "snapshot": producer.snapshot(now),
        "rates": {
            name: (r.total, list(r._times), list(r._counts)) for name, r in ledger.rates.items()
        },
        "latency": histogram(ledger.latency_recent),
        "classes": [histogram(recent) for recent in ledger.class_latency],
        "response": histogram(requests.response_recent),
        "failures": (requests.failures.total, list(requests.failures._counts)),
        "in_flight": sorted(ledger.in_flight),
        "unconfirmed": sorted(ledger.unconfirmed),
        "outbox": [(e.seq, e.attempt, e.resend) for e in producer.outbox],
        "retries": [(at, seq, e.attempt) for at, seq, e in sorted(requests.retry_heap)],
        "open": sorted(requests.open.items()),
        "breaker": None if requests.breaker is None else requests.breaker.transitions,
        "stale": ledger.stale_verdicts,
    }


def _run_pair(mode: str, process_rate: float, rate: float, steps: int, split: bool):
    """A producer and a consumer core wired together in fake time (1 ms a step); with
    ``split``, every verdict frame reaches the producer cut into runs of one."""
    now = 100.0
    consumer = ConsumerCore(ConsumerConfig(mode=mode, capacity=40, process_rate=process_rate), now)
    producer = ProducerCore(ProducerConfig(messages_per_s=rate, name="p", seed=3), now)
    for _ in range(steps):
        producer.advance(now)
        for frame in producer.take_control_frames():
            consumer.on_frame(b"p", frame, now)
        out = producer.pull_frame(now)
        while out is not None:
            producer.mark_sent(out, now)
            consumer.on_frame(b"p", out.data, now)
            out = producer.pull_frame(now)
        consumer.advance(now)
        for _, frame in consumer.take_outgoing():
            producer.on_frame(split_into_ones(frame) if split else frame, now)
        now += 0.001
    return producer


@pytest.mark.parametrize(
    "mode, process_rate, rate",
    [
        ("drop", 2000.0, 5000.0),
        ("block", 2000.0, 5000.0),
        ("sample", 1500.0, 4000.0),
        ("shed", 1500.0, 4000.0),
        ("drop", math.inf, math.inf),
    ],
)
def test_verdict_runs_end_to_end_give_what_one_verdict_at_a_time_gives(mode, process_rate, rate):
    steps = 150 if math.isinf(rate) else 600  # unpaced: 1,000 messages a step already
    whole = _run_pair(mode, process_rate, rate, steps, split=False)
    ones = _run_pair(mode, process_rate, rate, steps, split=True)
    end = 100.0 + steps / 1000
    assert state(whole, end) == state(ones, end)
    assert whole.counts.produced > 0 and whole.counts.identity_errors() == []


KINDS = (ACC, DROP, SAMP, SHED, EVIC, PROC)


@st.composite
def verdict_scripts(draw):
    """A producer's config and, per turn, the verdict runs a consumer might send: any kind,
    any stretch of what was made so far (so repeats, stale and out-of-order ones too)."""
    options = draw(
        st.fixed_dictionaries(
            {
                "retry": st.sampled_from(RETRY_POLICIES),
                "max_attempts": st.integers(1, 4),
                "priority_mix": st.sampled_from([(1.0,), (0.2, 0.5, 0.3)]),
                "breaker": st.booleans(),
                "breaker_failures": st.integers(1, 4),
                "timeout_s": st.sampled_from([None, 0.05, 0.3]),
                "deadline_s": st.sampled_from([None, 0.2]),
                "seed": st.integers(0, 3),
            }
        )
    )
    credit = draw(st.sampled_from([None, 10**6]))
    turns = []
    for _ in range(draw(st.integers(1, 12))):
        runs = draw(
            st.lists(
                st.tuples(
                    st.sampled_from(KINDS),
                    st.integers(0, 200),
                    st.integers(1, 30),
                    st.integers(0, 300),
                ),
                max_size=6,
            )
        )
        turns.append((draw(st.sampled_from([0.01, 0.1, 0.7])), runs))
    return options, credit, turns


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(verdict_scripts())
def test_any_verdicts_as_whole_runs_or_one_by_one_give_the_same_state(script):
    """The property behind the fast path: ``Ledger.apply`` for a run of n is ``apply`` for
    each of its n messages, whatever the kinds, the retry mode, breaker or timeouts."""
    options, credit, turns = script
    whole = connected(rate=100.0, credit=credit, **options)
    ones = connected(rate=100.0, credit=credit, **options)
    now = 0.0
    for step, runs in turns:
        now = round(now + step, 6)
        for producer in (whole, ones):
            producer.advance(now)
            send(producer, now)
        made = whole.maker.next_seq
        runs = [(k, f, min(c, made - f), ms) for k, f, c, ms in runs if f < made]
        limit = NO_CREDIT if credit is None else credit
        whole.on_frame(protocol.encode_verdicts(limit, runs), now)
        ones.on_frame(split_into_ones(protocol.encode_verdicts(limit, runs)), now)
        assert state(whole, now) == state(ones, now)
