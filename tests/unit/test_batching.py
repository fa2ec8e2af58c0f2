"""Batching (Module 16): a worker that serves batches, checked exactly with a fake clock."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lab.core.batching import AdaptiveBatcher, BatchServiceModel, BatchWorker, FixedBatcher
from lab.core.buffer import Buffer, Message
from lab.core.config import ConsumerConfig, ProducerConfig
from lab.core.consumer_core import ConsumerCore
from lab.tools.sim import simulate

OVERHEAD, ITEM = 0.008, 0.002  # the module's defaults: 8 ms per batch, 2 ms per message


def worker(size: int = 10, linger_s: float = 0.0, batcher=None) -> BatchWorker:
    return BatchWorker(
        BatchServiceModel(OVERHEAD, ITEM), batcher or FixedBatcher(size), linger_s=linger_s
    )


def push(buffer: Buffer, seqs, at: float) -> None:
    for seq in seqs:
        buffer.push(Message(b"p", seq, enqueued_at=at))


@pytest.mark.parametrize("size, throughput", [(1, 100.0), (10, 357.142857), (50, 462.962963)])
def test_full_batches_give_b_over_o_plus_b_i(size, throughput):
    buf, w = Buffer(None), worker(size)
    push(buf, range(20_000), 0.0)
    done = w.advance(buf, 10.0)
    # every batch is full, so exactly floor(10 s / duration) batches finished by 10 s
    batches = math.floor(10.0 / (OVERHEAD + size * ITEM) + 1e-9)
    assert len(done) == batches * size
    assert len(done) / 10.0 == pytest.approx(throughput, rel=size * ITEM / 10.0 + 1e-6)
    assert w.model.throughput(size) == pytest.approx(throughput)


def test_a_batch_takes_what_is_waiting_when_the_worker_is_free():
    buf, w = Buffer(100), worker(10)
    push(buf, range(3), 0.0)
    assert [(m.seq, f) for m, f in w.advance(buf, 0.0)] == []  # started at 0, 3 messages
    assert w.finish_at == pytest.approx(OVERHEAD + 3 * ITEM)
    push(buf, range(3, 20), 0.005)  # arrive during the batch: wait for the next one
    done = w.advance(buf, 0.1)
    sizes = sorted({round(f, 6) for _, f in done})
    assert [sum(1 for _, f in done if round(f, 6) == s) for s in sizes] == [3, 10, 7]


def test_linger_holds_a_partial_batch_then_starts_it():
    buf, w = Buffer(100), worker(10, linger_s=0.020)
    push(buf, [0], 1.0)
    assert w.advance(buf, 1.0) == []
    assert w.next_event() == pytest.approx(1.020)  # the shell wakes exactly then
    assert w.advance(buf, 1.019) == []
    done = w.advance(buf, 1.1)
    assert [(m.seq, round(f, 6)) for m, f in done] == [(0, round(1.020 + OVERHEAD + ITEM, 6))]
    assert done[0][0].started_at == pytest.approx(1.020)


def test_a_batch_that_fills_starts_before_its_linger_ends():
    buf, w = Buffer(100), worker(4, linger_s=1.0)
    for seq in range(4):
        w.advance(buf, seq * 0.010)  # the rule: advance before each push
        push(buf, [seq], seq * 0.010)
    done = w.advance(buf, 0.2)
    assert len(done) == 4
    assert done[0][0].started_at == pytest.approx(0.030)  # the moment the 4th arrived


def test_messages_that_arrive_after_a_batch_started_are_not_in_it():
    buf, w = Buffer(100), worker(10, linger_s=0.010)
    push(buf, [0], 0.0)
    push(buf, [1], 0.015)  # after the batch started at 0.010 (lazily simulated)
    done = w.advance(buf, 0.015)
    assert done == [] and buf.waiting == 1 and buf.depth == 2


def test_depth_counts_the_batch_in_service_and_drain_returns_it():
    buf, w = Buffer(20), worker(5)
    push(buf, range(8), 0.0)
    w.advance(buf, 0.0)
    assert (buf.depth, buf.waiting, buf.in_service.seq) == (8, 3, 0)
    assert [m.seq for m in buf.drain()] == [5, 6, 7, 0, 1, 2, 3, 4]
    assert buf.depth == 0


def test_priority_discipline_fills_a_batch_critical_first():
    buf, w = Buffer(20, "priority"), worker(3)
    for seq, cls in enumerate((2, 2, 0, 1, 0)):
        buf.push(Message(b"p", seq, priority=cls, enqueued_at=0.0))
    w.advance(buf, 0.0)
    assert [m.seq for m in buf._batch] == [2, 4, 3]


def test_stall_and_charge_delay_the_batch():
    buf, w = Buffer(20), worker(5)
    w.stall(0.0, 0.5)
    push(buf, range(5), 0.0)
    assert w.advance(buf, 0.4) == [] and w.next_event() == pytest.approx(0.5)
    w.advance(buf, 0.5)
    w.charge(0.5, 0.1)
    assert w.finish_at == pytest.approx(0.5 + OVERHEAD + 5 * ITEM + 0.1)


def test_slowdown_stretches_every_batch():
    model = BatchServiceModel(OVERHEAD, ITEM)
    model.slowdown = 4.0
    assert model.duration(10) == pytest.approx(4 * (OVERHEAD + 10 * ITEM))
    model.batch_size = 10
    assert model.effective_rate == pytest.approx(357.142857 / 4)


def test_adaptive_batcher_follows_seed_003():
    batcher = AdaptiveBatcher(initial=1, target_s=0.050, minimum=1, maximum=20)
    for _ in range(30):
        batcher.observe(batcher.batch_size(), 0.001, 0.0)  # always fast: grows to the max
    assert batcher.batch_size() == 20
    for _ in range(30):
        batcher.observe(batcher.batch_size(), 1.0, 0.0)  # always slow: shrinks to the min
    assert batcher.batch_size() == 1
    batcher.observe(1, 0.050, 0.0)  # on target: stays
    assert batcher.batch_size() == 1


def test_adaptive_worker_settles_where_a_full_batch_is_near_the_target():
    # target 50 ms: grows while a batch takes < 25 ms (b < 8.5), shrinks above 75 ms (b > 33.5)
    buf = Buffer(None)
    w = worker(batcher=AdaptiveBatcher(1, 0.050, 1, 1000))
    push(buf, range(50_000), 0.0)
    w.advance(buf, 30.0)
    assert 9 <= w.batcher.batch_size() <= 33
    assert 0.025 <= w.last_duration_s <= 0.075


@given(
    size=st.integers(1, 60),
    linger_ms=st.sampled_from([0.0, 5.0, 40.0]),
    gaps=st.lists(st.floats(0.0, 0.02), min_size=1, max_size=300),
)
def test_every_message_is_served_once_in_order_and_no_batch_is_too_big(size, linger_ms, gaps):
    buf, w = Buffer(None), worker(size, linger_s=linger_ms / 1e3)
    now, done = 0.0, []
    for seq, gap in enumerate(gaps):
        now += gap
        done += w.advance(buf, now)
        push(buf, [seq], now)
    done += w.advance(buf, now + 100.0)
    assert [m.seq for m, _ in done] == list(range(len(gaps)))
    finishes = [f for _, f in done]
    assert finishes == sorted(finishes)
    assert max(finishes.count(f) for f in set(finishes)) <= size
    for message, finish in done:
        assert message.enqueued_at <= message.started_at < finish
        assert message.started_at - message.enqueued_at <= linger_ms / 1e3 + 1e-9 or w.batches


def test_consumer_core_with_batches_processes_what_theory_says():
    consumer = ConsumerConfig(
        mode="drop", capacity=500, batch_overhead_ms=8.0, item_ms=2.0, batch_size=10
    )
    result = simulate(consumer, [ProducerConfig(messages_per_s=1000.0)], duration=20.0)
    processed = result.consumer["processed"] + result.consumer["depth"]
    # 357.14 msg/s of full batches for 20 s, plus the buffer still held at the end
    assert result.consumer["processed"] == pytest.approx(357.14 * 21.0, rel=0.02)
    assert processed <= result.consumer["accepted"] + 1
    assert not result.consumer["identity_errors"]


def test_consumer_snapshot_reports_batching():
    core = ConsumerCore(ConsumerConfig(batch_overhead_ms=8.0, item_ms=2.0, batch_size=4), 0.0)
    snap = core.snapshot(1.0)
    assert snap["worker"]["batch_limit"] == 4
    assert snap["service_rate"] == pytest.approx(4 / 0.016)
    assert ConsumerCore(ConsumerConfig(), 0.0).snapshot(1.0)["worker"] is None
