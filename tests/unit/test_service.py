"""The worker: an exact single-server simulation in the consumer's own clock."""

from __future__ import annotations

import math
import random

import pytest

from lab.core.buffer import Buffer, Message
from lab.core.clock import FakeClock
from lab.core.service import ServiceModel, Worker


def push(buf: Buffer, seq: int, at: float, priority: int = 0) -> None:
    buf.push(Message(b"p", seq, priority=priority, enqueued_at=at))


def finished(worker: Worker, buf: Buffer, now: float):
    return [(m.seq, t) for m, t in worker.advance(buf, now)]


def test_docstring_quick_facts():
    buf, worker = Buffer(10), Worker(ServiceModel(rate=2.0))
    for seq in range(3):
        push(buf, seq, 0.0)
    assert finished(worker, buf, 1.2) == [(0, 0.5), (1, 1.0)]
    assert (buf.depth, worker.next_event()) == (1, 1.5)


def test_message_finishing_exactly_at_now_is_completed():
    buf, worker = Buffer(10), Worker(ServiceModel(rate=4.0))
    push(buf, 0, 0.0)
    assert finished(worker, buf, 0.2499) == []
    assert finished(worker, buf, 0.25) == [(0, 0.25)]
    assert worker.next_event() is None


@pytest.mark.parametrize("rate", [0.0, -1.0, math.nan])
def test_rate_must_be_positive(rate):
    with pytest.raises(ValueError):
        ServiceModel(rate)


def test_unknown_distribution_is_rejected():
    with pytest.raises(ValueError):
        ServiceModel(1.0, "uniform")


def test_fixed_durations_and_slowdown():
    model = ServiceModel(8.0)
    assert [model.next_duration() for _ in range(3)] == [0.125] * 3
    assert model.effective_rate == 8.0
    model.slowdown = 4.0
    assert model.next_duration() == 0.5
    assert model.effective_rate == 2.0


def test_infinite_rate_means_zero_service_time():
    model = ServiceModel(math.inf)
    assert model.next_duration() == 0.0
    buf, worker = Buffer(5), Worker(model)
    for seq in range(3):
        push(buf, seq, 1.0)
    assert finished(worker, buf, 1.0) == [(0, 1.0), (1, 1.0), (2, 1.0)]


def test_exponential_is_seeded_and_has_mean_one_over_rate():
    a = ServiceModel(10.0, "exponential", random.Random(5))
    b = ServiceModel(10.0, "exponential", random.Random(5))
    draws = [a.next_duration() for _ in range(20_000)]
    assert draws == [b.next_duration() for _ in range(20_000)]
    assert sum(draws) / len(draws) == pytest.approx(0.1, rel=0.03)
    assert len(set(draws)) > 19_000


def test_idle_worker_starts_a_message_the_moment_it_arrives():
    clock = FakeClock(0.0)
    buf, worker = Buffer(10), Worker(ServiceModel(rate=2.0), start=clock.now())
    clock.advance(2.0)
    assert worker.advance(buf, clock.now()) == []  # the rule: advance before pushing
    push(buf, 0, clock.now())
    clock.advance(1.0)
    done = worker.advance(buf, clock.now())
    assert [(m.seq, m.started_at, t) for m, t in done] == [(0, 2.0, 2.5)]


def test_busy_worker_chains_services_back_to_back():
    buf, worker = Buffer(10), Worker(ServiceModel(rate=4.0))
    push(buf, 0, 0.0)
    worker.advance(buf, 0.1)
    push(buf, 1, 0.1)
    worker.advance(buf, 0.2)
    push(buf, 2, 0.2)
    done = worker.advance(buf, 5.0)
    assert [(m.seq, m.started_at, t) for m, t in done] == [
        (0, 0.0, 0.25),
        (1, 0.25, 0.5),
        (2, 0.5, 0.75),
    ]


def test_lazy_advance_equals_eager_advance():
    def run(step: float):
        buf, worker = Buffer(None), Worker(ServiceModel(3.0, "exponential", random.Random(1)))
        arrivals = [(i * 0.2, i) for i in range(40)]
        out, now = [], 0.0
        while arrivals or buf.depth:
            now += step
            while arrivals and arrivals[0][0] <= now:
                at, seq = arrivals.pop(0)
                out += [(m.seq, m.started_at, t) for m, t in worker.advance(buf, at)]
                push(buf, seq, at)
            out += [(m.seq, m.started_at, t) for m, t in worker.advance(buf, now)]
        return out

    assert run(0.01) == run(3.0)


def test_advance_before_push_keeps_priority_honest():
    """A high-priority message arriving at 0.7 cannot be picked at 0.5, before it existed."""
    buf, worker = Buffer(10, discipline="priority"), Worker(ServiceModel(rate=2.0))
    push(buf, 0, 0.0, priority=2)
    push(buf, 1, 0.0, priority=2)
    assert finished(worker, buf, 0.7) == [(0, 0.5)]  # seq 1 started at 0.5
    push(buf, 2, 0.7, priority=0)
    assert finished(worker, buf, 5.0) == [(1, 1.0), (2, 1.5)]


def test_next_event_is_the_finish_of_the_message_in_service():
    buf, worker = Buffer(10), Worker(ServiceModel(rate=5.0))
    assert worker.next_event() is None
    push(buf, 0, 0.0)
    push(buf, 1, 0.0)
    worker.advance(buf, 0.0)
    assert worker.next_event() == 0.2
    worker.advance(buf, 0.2)
    assert worker.next_event() == 0.4
    worker.advance(buf, 0.4)
    assert worker.next_event() is None


def test_stall_delays_the_message_in_service_and_everything_after_it():
    buf, worker = Buffer(10), Worker(ServiceModel(rate=2.0))
    push(buf, 0, 0.0)
    push(buf, 1, 0.0)
    worker.advance(buf, 0.2)
    worker.stall(0.2, 1.0)
    assert worker.next_event() == 1.5
    assert finished(worker, buf, 1.49) == []
    assert finished(worker, buf, 10.0) == [(0, 1.5), (1, 2.0)]


def test_stall_of_an_idle_worker_holds_the_next_arrival():
    buf, worker = Buffer(10), Worker(ServiceModel(rate=2.0))
    worker.stall(0.0, 1.0)
    assert worker.next_event() == 1.0
    worker.advance(buf, 0.5)
    push(buf, 0, 0.5)
    assert finished(worker, buf, 0.99) == []
    done = worker.advance(buf, 3.0)
    assert [(m.seq, m.started_at, t) for m, t in done] == [(0, 1.0, 1.5)]


def test_stalls_do_not_shorten_each_other():
    worker = Worker(ServiceModel(rate=1.0))
    worker.stall(0.0, 5.0)
    worker.stall(1.0, 1.0)
    assert worker.stalled_until == 5.0


def test_slowdown_applies_to_services_started_after_it():
    model = ServiceModel(rate=2.0)
    buf, worker = Buffer(10), Worker(model)
    push(buf, 0, 0.0)
    push(buf, 1, 0.0)
    worker.advance(buf, 0.0)
    model.slowdown = 4.0
    assert finished(worker, buf, 10.0) == [(0, 0.5), (1, 2.5)]


def test_fake_clock_moves_only_when_told():
    clock = FakeClock(100.0)
    assert clock.now() == clock.now() == 100.0
    assert clock.advance(0.5) == 100.5
    assert clock.advance(0.0) == 100.5
    with pytest.raises(ValueError):
        clock.advance(-0.1)
    assert clock.now() == 100.5
    assert clock.to_epoch(3.0) == clock.from_epoch(3.0) == 3.0
