"""Pull mode wired through both cores: REQUEST(n) from the consumer's ``PullLedger``, the
producer sending only against its ``Demand`` (simulated time, no sockets)."""

from __future__ import annotations

import pytest

from lab.core import protocol
from lab.core.config import ConsumerConfig, ProducerConfig
from lab.core.consumer_core import ConsumerCore
from lab.core.producer_core import ProducerCore
from lab.tools.sim import simulate


def pull_welcome(session: str = "s1") -> bytes:
    body = {"session": session, "mode": "pull", "pull": True, "credit_limit": None}
    return protocol.encode_json(protocol.WELCOME, body)


def producer() -> ProducerCore:
    core = ProducerCore(ProducerConfig(messages_per_s=1000.0, name="p"), 0.0)
    core.advance(0.05)  # 50 messages made and waiting
    return core


def send_all(core: ProducerCore, now: float) -> int:
    sent = 0
    frame = core.pull_frame(now)
    while frame is not None:
        core.mark_sent(frame, now)
        sent += len(frame.entries)
        frame = core.pull_frame(now)
    return sent


def test_the_producer_sends_nothing_before_a_request_and_exactly_what_was_requested():
    core = producer()
    core.on_frame(pull_welcome(), 0.05)
    assert core.sendable() == 0 and send_all(core, 0.05) == 0
    core.on_frame(protocol.encode_request(3), 0.05)
    core.on_frame(protocol.encode_request(4), 0.05)  # demand adds up
    assert send_all(core, 0.05) == 7
    assert (core.demand.requested, core.demand.sent, core.sendable()) == (7, 7, 0)
    core.on_frame(protocol.encode_request(2), 0.06)
    assert send_all(core, 0.06) == 2 and core.demand.outstanding == 0


def test_a_welcome_from_a_new_consumer_drops_the_old_demand_and_request_zero_is_malformed():
    core = producer()
    core.on_frame(pull_welcome("s1"), 0.05)
    core.on_frame(protocol.encode_request(5), 0.05)
    core.on_frame(pull_welcome("s2"), 0.05)
    assert core.demand.outstanding == 0
    core.on_frame(protocol.encode_request(1)[:-8] + bytes(8), 0.05)
    assert core.malformed == 1 and core.demand.outstanding == 0


def test_a_non_pull_welcome_lifts_the_demand():
    core = producer()
    core.on_frame(pull_welcome(), 0.05)
    core.on_frame(protocol.encode_json(protocol.WELCOME, {"session": "s1", "mode": "drop"}), 0.05)
    assert core.demand is None and core.sendable() > 0


def hello(core: ConsumerCore, peer: bytes, now: float) -> list:
    core.on_frame(peer, protocol.encode_json(protocol.HELLO, {"producer": "p", "sent": 0}), now)
    return core.take_outgoing()


def test_the_consumer_requests_its_buffer_in_chunks_and_asks_again_as_room_frees():
    core = ConsumerCore(ConsumerConfig(mode="pull", capacity=10, request_n=4), 0.0)
    out = hello(core, b"a", 0.0)
    kinds = [protocol.frame_type(frame) for _, frame in out]
    assert kinds == [protocol.WELCOME, protocol.REQUEST]
    assert protocol.decode_request(out[1][1]) == 8  # two whole chunks of 4 fit in 10
    assert core.pull.promised() == 8


def test_the_config_checks_request_n():
    with pytest.raises(ValueError, match="--request-n"):
        ConsumerConfig(mode="pull", capacity=10, request_n=0).validate()
    with pytest.raises(ValueError, match="--request-n"):
        ConsumerConfig(mode="pull", capacity=10, request_n=11).validate()


@pytest.mark.parametrize("request_n", [1, 5])
def test_over_a_slow_link_sent_never_passes_requested_and_nothing_is_lost(request_n):
    consumer = ConsumerConfig(mode="pull", capacity=20, process_rate=200.0, request_n=request_n)
    result = simulate(consumer, [ProducerConfig(messages_per_s=1000.0)], 3.0, latency=0.02)
    demand = result.producer_cores[0].demand
    requester = next(iter(result.consumer_core.pull.requesters.values()))
    assert demand.sent <= demand.requested == requester.requested
    assert result.consumer["dropped"] == 0 and result.consumer["max_depth"] <= 20
    assert result.consumer["processed"] > 0
    # the window bound: at most 20 records per 40 ms round trip plus 5 ms of service
    assert result.consumer["processed"] <= 3.0 * 20 / 0.045 + 20
