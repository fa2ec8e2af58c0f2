"""A pool of workers (Module 17): scaling, a shared database, autoscaling and bulkheads,
checked exactly with simulated time."""

from __future__ import annotations

import pytest

from lab.core.buffer import Buffer, Message
from lab.core.config import ConsumerConfig, ProducerConfig
from lab.core.pool import (
    ALL_CLASSES,
    LagAutoscaler,
    PoolGroup,
    WorkerPool,
    parse_bulkheads,
    parse_range,
)
from lab.tools.sim import simulate


def saturated_rate(workers: int, db_capacity=None, seconds: float = 20.0) -> float:
    """Messages per second a pool does with a queue that never runs dry."""
    buf = Buffer(None)
    for seq in range(int(2000 * seconds)):
        buf.push(Message(b"p", seq, enqueued_at=0.0))
    pool = WorkerPool([PoolGroup("all", ALL_CLASSES, workers)], 100.0, db_capacity)
    return len(pool.advance(buf, seconds)) / seconds


@pytest.mark.parametrize("workers", [1, 2, 4, 8])
def test_n_workers_do_n_times_the_rate(workers):
    assert saturated_rate(workers) == pytest.approx(100.0 * workers, rel=1e-3)


def test_past_the_databases_knee_more_workers_do_less():
    rates = {n: saturated_rate(n, db_capacity=250.0) for n in (1, 2, 4, 8)}
    assert rates[1] == pytest.approx(1 / (0.010 + 0.004), rel=0.01)  # app work + one op
    assert rates[4] == pytest.approx(250.0, rel=0.03)  # held near the database's capacity
    assert rates[8] < rates[4] * 0.8  # more callers: every operation slower


def test_messages_finish_in_time_order_and_each_once():
    buf, pool = Buffer(None), WorkerPool([PoolGroup("all", ALL_CLASSES, 3)], 10.0, 50.0)
    for seq in range(30):
        buf.push(Message(b"p", seq, enqueued_at=seq * 0.01))
    done = pool.advance(buf, 100.0)
    assert sorted(m.seq for m, _ in done) == list(range(30))
    assert [t for _, t in done] == sorted(t for _, t in done)
    assert buf.depth == 0 and buf.in_service is None


def test_the_autoscaler_scales_up_fast_and_down_after_its_cooldown():
    scaler = LagAutoscaler(target_s=1.0, minimum=1, maximum=5, cooldown_s=3.0, interval_s=1.0)
    assert [scaler.decide(n, 2.0, t) for n, t in ((1, 0.0), (2, 1.0), (4, 2.0))] == [2, 4, 5]
    assert scaler.decide(5, 0.3, 3.0) == 5  # between a quarter and half the target: hold
    assert [scaler.decide(5, 0.1, t) for t in (4.0, 5.0, 6.0, 7.0)] == [5, 5, 5, 4]
    assert scaler.decide(4, 0.1, 8.0) == 4  # the next step down waits a whole cooldown
    with pytest.raises(ValueError):
        LagAutoscaler(1.0, 3, 2)


def test_autoscaling_on_lag_holds_lag_through_a_4x_step():
    consumer = ConsumerConfig(
        module=17, mode="drop", capacity=20_000, process_rate=100.0, autoscale=(1, 8),
        lag_target_s=1.0, scale_cooldown_s=5.0, discipline="workload",
    )  # fmt: skip
    producer = ProducerConfig(
        module=17, messages_per_s=100.0, profile="spike", spike_at=5.0, spike_duration=20.0,
        spike_factor=4.0,
    )  # fmt: skip
    result = simulate(consumer, [producer], duration=40.0, drain=0.0)
    pool = result.consumer_core.worker
    ups = [n for _, what, n in pool.scale_events if what == "up"]
    downs = [n for _, what, n in pool.scale_events if what == "down"]
    assert max(ups) >= 4 and downs  # grew for the step, shrank after it
    assert result.consumer["dropped"] == 0
    # the step (100 -> 400 msg/s) is met before any message waits past the target
    assert result.consumer["queue_wait_max_ms"] < 1000


def test_a_bulkhead_keeps_likes_lag_flat_through_an_analytics_flood():
    def run(**pool):
        consumer = ConsumerConfig(
            module=17, mode="drop", capacity=50_000, process_rate=100.0,
            discipline="workload", **pool,
        )  # fmt: skip
        likes = ProducerConfig(module=17, messages_per_s=100.0, priority_mix=(1.0,), name="likes-0")
        flood = ProducerConfig(
            module=17, messages_per_s=50.0, priority_mix=(0.0, 1.0), profile="spike", spike_at=2.0,
            spike_duration=10.0, spike_factor=28.0, name="analytics-1",
        )  # fmt: skip
        result = simulate(consumer, [likes, flood], duration=14.0, drain=0.0)
        return {row["class"]: row for row in result.consumer["classes"]}

    shared = run(workers=6)
    bulkhead = run(bulkhead="likes=2,analytics=4")
    assert shared[0]["wait_p99_ms"] > 5_000  # likes stuck behind the flood
    assert bulkhead[0]["wait_p99_ms"] < 100  # likes have their own workers
    assert bulkhead[0]["dropped"] == shared[0]["dropped"] == 0


def test_flag_parsers_say_what_is_wrong():
    assert parse_bulkheads("analytics=1,likes=3") == [("analytics", 1, 1), ("likes", 0, 3)]
    assert parse_range("3-3") == (3, 3)
    for bad in ("likes", "likes=0", "photos=2", "likes=2,likes=3"):
        with pytest.raises(ValueError, match="--bulkhead"):
            parse_bulkheads(bad)
    for bad in ("4", "5-2", "0-3", "a-b"):
        with pytest.raises(ValueError, match="--autoscale"):
            parse_range(bad)
