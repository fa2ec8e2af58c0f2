"""Module 19's panel: goodput next to throughput and the discipline's state, from snapshots
of a simulated 2x overload with a 500 ms deadline."""

from __future__ import annotations

from lab.core.config import ConsumerConfig, ProducerConfig
from tests.unit.test_panels import dashboard, screen, snapshots_at


def overload_screen(discipline: str) -> str:
    consumer = ConsumerConfig(
        module=19, capacity=100, process_rate=100.0, queue_discipline=discipline
    )
    producer = ProducerConfig(module=19, messages_per_s=200.0, deadline_s=0.5)
    runs = [(at, snapshots_at(consumer, producer, at)) for at in (4.0, 5.0)]
    return screen(dashboard(19, runs), 5.0)


def test_fifo_shows_the_waste():
    text = overload_screen("fifo")
    assert "goodput" in text and "wasted" in text and "dropped at dequeue 0" in text
    assert "within the deadline, of what was processed" in text
    assert "discipline fifo" in text


def test_codel_shows_its_dropping_state():
    text = overload_screen("codel")
    assert "codel · dropping, count" in text and "(target 5 ms)" in text
