"""The credit round trip the consumer measures (``lab.core.round_trip``) and what the window
bounds (``in_flight``), driven through the consumer core with a fake clock. Times are
multiples of 1/8 s, so every value is exact in binary."""

from __future__ import annotations

from lab.core import protocol
from lab.core.clock import FakeClock
from lab.core.config import ConsumerConfig
from lab.core.consumer_core import ConsumerCore
from lab.core.peers import ProducerState
from lab.core.protocol import Record
from lab.core.round_trip import ROUND_TRIP_WINDOW_S, RoundTripMeter

PEER = b"alice"


def data(first: int, count: int) -> bytes:
    return protocol.encode_data(
        [Record(seq, 0.0, 0.0, 0, 0) for seq in range(first, first + count)], first
    )


def hello() -> bytes:
    return protocol.encode_json(protocol.HELLO, {"producer": "alice", "pid": 1, "sent": 0})


def block_core(clock: FakeClock, capacity: int = 4) -> ConsumerCore:
    # 8 msg/s: one service is 1/8 s
    config = ConsumerConfig(mode="block", capacity=capacity, process_rate=8.0)
    return ConsumerCore(config, clock.now(), session="s1")


def test_a_grant_and_the_data_it_allowed_make_one_sample_and_the_recent_minimum():
    clock = FakeClock()
    core = block_core(clock)
    core.on_frame(PEER, hello(), clock.now())  # credit up to 4 goes out at 0
    assert core.load_signals(clock.now(), 0.0).round_trip_s is None
    assert core.in_flight() == 4  # nothing held, 4 promised
    state = core.producers[PEER]
    assert state.credit_probe == (4, 0.0)

    core.on_frame(PEER, data(0, 3), clock.advance(0.125))  # not yet the last granted record
    assert core.round_trip.count == 0
    core.on_frame(PEER, data(3, 1), clock.now())  # ordinal 3: the grant's last record is back
    assert core.round_trip.count == 1 and core.round_trip.last == 0.125
    assert state.credit_probe is None

    core.advance(clock.advance(0.125))  # 0.25: the first message is done, credit up to 5
    assert state.credit_probe == (5, 0.25)
    assert core.in_flight() == 3 + 1
    core.advance(clock.advance(0.125))  # 0.375: credit up to 6; the probe waits for 5
    assert state.credit_probe == (5, 0.25)
    assert core.in_flight() == 2 + 2

    core.on_frame(PEER, data(4, 1), clock.advance(0.125))  # 0.5: ordinal 4 closes the probe
    assert core.round_trip.last == 0.25 and core.round_trip.count == 2
    signals = core.load_signals(clock.now(), 0.0)
    assert signals.round_trip_s == 0.125  # the smaller of the last 0.5 s
    assert signals.in_flight == core.in_flight() == core.buffer.depth + core.credit.promised()

    snap = core.snapshot(clock.now())
    assert snap["round_trip_s"] == 0.125 and snap["in_flight"] == signals.in_flight
    assert ROUND_TRIP_WINDOW_S == 0.5
    # 0.75: the sample taken at 0.125 is older than 0.5 s, the one taken at 0.5 is not
    assert core.round_trip.recent(0.75) == 0.25
    # 1.25: no sample is that recent: the latest one stands
    assert core.round_trip.recent(1.25) == 0.25


def test_the_minimum_follows_a_faster_link_at_once_and_a_slower_one_within_the_window():
    meter = RoundTripMeter(window_s=0.5)
    state = ProducerState(PEER, 0.0)

    def sample(granted_at: float, back_at: float) -> None:
        state.credit_limit += 1
        meter.granted([state], granted_at)
        state.received_ordinal = state.credit_limit
        meter.received(state, back_at)

    sample(0.0, 0.25)
    sample(0.25, 0.375)  # faster: 0.125 at once
    assert meter.recent(0.375) == 0.125
    sample(0.5, 1.0)  # slower: 0.5, but the fast sample of 0.375 is still recent
    assert meter.recent(0.875) == 0.125
    assert meter.recent(1.0) == 0.5  # 0.375 fell out of the window


def test_credit_taken_back_ends_the_probe_so_a_later_arrival_is_no_sample():
    clock = FakeClock()
    core = block_core(clock)
    core.on_frame(PEER, hello(), clock.now())
    state = core.producers[PEER]
    assert state.credit_probe == (4, 0.0)
    core.on_frame(PEER, protocol.encode_json(protocol.BYE, {"producer": "alice"}), 0.125)
    assert state.credit_probe is None and core.in_flight() == 0
    core.on_frame(PEER, data(0, 4), clock.advance(0.25))
    assert core.round_trip.count == 0


def test_outside_credit_modes_nothing_is_timed_and_in_flight_is_what_is_held():
    clock = FakeClock()
    core = ConsumerCore(ConsumerConfig(mode="drop", capacity=4, process_rate=8.0), 0.0, "s1")
    core.on_frame(PEER, hello(), clock.now())
    core.on_frame(PEER, data(0, 3), clock.advance(0.125))
    assert core.in_flight() == 3
    assert core.load_signals(clock.now(), 0.0).round_trip_s is None
