"""The lab producer's ``--throttle-on-lag``: the consumer's lag in its WELCOMEs sets the rate.

The rule is Module 20's ``LagThrottle`` (tested in ``test_stream_lag.py``), fed by
``lab/core/lag_reader.py``; these tests pin the producer's side: which frames feed it, its
ceiling, its log lines, its config checks, and (in simulated time, both cores, no sockets)
Module 17's scenario end to end.
"""

from __future__ import annotations

import pytest

from lab.core import protocol
from lab.core.config import ConsumerConfig, ProducerConfig
from lab.core.lag_reader import LAG_READ_S
from lab.core.modules import MODULES
from lab.core.producer_core import ProducerCore
from lab.tools.sim import simulate


def throttled(rate: float = 300.0, **options) -> ProducerCore:
    config = ProducerConfig(messages_per_s=rate, throttle_on_lag=True, name="p", **options)
    return ProducerCore(config, 0.0)


def welcome(**lag) -> bytes:
    return protocol.encode_json(protocol.WELCOME, {"session": "s1", "mode": "drop", **lag})


def test_it_slows_on_lag_and_recovers_to_its_ceiling_when_the_lag_is_gone():
    core = throttled()
    core.on_frame(welcome(lag_s=0.0, lag_messages=0), 0.0)
    assert core.target_rate(0.0) == 300.0  # no drain estimate yet: the rate holds
    # 40 more waiting after 0.2 s at 300/s: the consumer drains 100/s; aim 5 messages
    # (0.1 x 0.5 s x 100/s), so 100 + (5 - 40) / 1 s
    core.on_frame(welcome(lag_s=0.4, lag_messages=40), 0.2)
    assert core.target_rate(0.2) == pytest.approx(65.0)
    assert core.throttle.rate == core.target_rate(0.2)
    now = 0.2
    for _ in range(20):  # the backlog is gone: probe up 20% a read, never past 300
        now += LAG_READ_S
        core.on_frame(welcome(lag_s=0.0, lag_messages=0), now)
    assert core.target_rate(now) == 300.0
    assert [text for _, text in core.events][-2:] == [
        "lag 0.40 s: slowing to 65 msg/s",
        "lag 0.00 s: back to 300 msg/s",
    ]
    assert core.snapshot(now)["throttle"] == {
        "target_lag_s": 0.5,
        "rate_mps": 300.0,
        "lag_s": 0.0,
        "lag_messages": 0,
    }


def test_it_asks_for_the_lag_five_times_a_second():
    assert throttled().link.heartbeat_s == LAG_READ_S
    assert ProducerCore(ProducerConfig(messages_per_s=300.0), 0.0).link.heartbeat_s == 0.5


def test_a_welcome_without_lag_holds_the_rate_and_nonsense_is_malformed():
    core = throttled()
    core.on_frame(welcome(), 0.0)
    core.on_frame(welcome(), 0.2)
    assert core.target_rate(0.2) == 300.0 and core.malformed == 0
    for bad in ({"lag_s": "late", "lag_messages": 3}, {"lag_s": 1.0, "lag_messages": -1}):
        core.on_frame(welcome(**bad), 0.4)
    core.on_frame(welcome(lag_s=float("inf"), lag_messages=True), 0.6)
    assert core.malformed == 3 and core.target_rate(0.6) == 300.0
    assert core.snapshot(0.6)["throttle"]["lag_s"] is None


def test_a_live_rate_change_is_the_new_ceiling():
    core = throttled()
    core.on_frame(welcome(lag_s=0.0, lag_messages=0), 0.0)
    core.on_frame(protocol.encode_json(protocol.CONTROL, {"rate": 50}), 0.1)
    for step in range(1, 10):
        core.on_frame(welcome(lag_s=0.0, lag_messages=0), 0.1 + step * LAG_READ_S)
    assert core.throttle.ceiling == 50 and core.target_rate(2.0) == 50


def test_the_flags_are_checked():
    spec = MODULES[17]
    config = ProducerConfig.for_module(spec, throttle_on_lag=True, target_lag_ms=250.0)
    assert (config.throttle_on_lag, config.target_lag_s) == (True, 0.25)
    with pytest.raises(ValueError, match="--throttle-on-lag needs a paced producer"):
        ProducerConfig.for_module(spec, throttle_on_lag=True, mps="max")
    with pytest.raises(ValueError, match="--profile steady or poisson"):
        ProducerConfig.for_module(spec, throttle_on_lag=True, profile="spike")
    with pytest.raises(ValueError, match="--target-lag-ms"):
        ProducerConfig.for_module(spec, throttle_on_lag=True, target_lag_ms=0.0)


def test_module_17_lag_stays_small_with_no_drops_and_the_rate_falls_to_the_consumers():
    consumer = ConsumerConfig(mode="drop", capacity=20_000, process_rate=100.0)
    plain, throttle = (
        simulate(consumer, [ProducerConfig(messages_per_s=300.0, throttle_on_lag=on)], 30.0)
        for on in (False, True)
    )
    assert plain.consumer["max_depth"] > 5_000  # 200/s more than it can do, for 30 s
    # the most waiting is at the first read of the lag, 0.25 s in at 200/s too many
    assert throttle.consumer["dropped"] == 0 and throttle.consumer["max_depth"] <= 60
    produced = throttle.producers[0]["produced"]
    assert 2_900 <= produced <= 3_100  # 100 msg/s for 30 s, give or take the first second
