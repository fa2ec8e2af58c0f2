"""Run producers and a consumer together in simulated time, with no sockets at all.

This is the cores' own test bench: frames go from one core to the other through in-memory
lists, and time jumps from one deadline to the next, so a minute of traffic takes a blink
and every number is reproducible. The property tests use it for the accounting identities,
and ``bplab check`` uses it nowhere (graders run real processes).

>>> from lab.core.config import ConsumerConfig
>>> from lab.core.config import ProducerConfig
>>> result = simulate(ConsumerConfig(mode="drop", capacity=50, process_rate=10),
...                   [ProducerConfig(messages_per_s=20)], duration=30.0)
>>> consumer = result.consumer
>>> consumer["received"], consumer["accepted"] == consumer["processed"] + consumer["depth"]
(600, True)
>>> 10 * 30 - 50 - 2 <= consumer["dropped"] <= 10 * 30 - 50 + 2    # (lambda - mu) t - K
True
"""

from __future__ import annotations

from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple

from lab.core.config import ConsumerConfig, ProducerConfig
from lab.core.consumer_core import ConsumerCore
from lab.core.producer_core import ProducerCore


class SimResult(NamedTuple):
    consumer: Dict[str, Any]
    producers: List[Dict[str, Any]]
    consumer_core: ConsumerCore
    producer_cores: List[ProducerCore]
    dead_consumers: Tuple[Dict[str, Any], ...] = ()  # summaries of consumers killed mid-run


def simulate(
    consumer_config: ConsumerConfig,
    producer_configs: Sequence[ProducerConfig],
    duration: float,
    drain: float = 1.0,
    latency: float = 0.0,
    max_step: float = 0.05,
    start: float = 0.0,
    stop_times: Optional[Sequence[float]] = None,
    consumer_restarts: Sequence[Tuple[float, float]] = (),
) -> SimResult:
    """Run for ``duration`` seconds of simulated time, then let verdicts drain for ``drain``.

    ``latency`` delays every frame in both directions (a one-way network delay).
    ``stop_times`` optionally stops each producer at its own time (default: ``duration``).
    ``consumer_restarts`` are ``(time, downtime)`` pairs: the consumer process is killed at
    ``time`` (frames on the wire to or from it are lost, producers see the connection
    close) and a fresh one, with a new session, starts ``downtime`` seconds later.
    """
    now = start
    consumer: Optional[ConsumerCore] = ConsumerCore(consumer_config, now, session="sim")
    kills = sorted((start + at, down) for at, down in consumer_restarts)
    dead: List[Dict[str, Any]] = []
    back_at = 0.0
    producers = [
        ProducerCore(_named(config, index), now) for index, config in enumerate(producer_configs)
    ]
    stops = list(stop_times) if stop_times is not None else [duration] * len(producers)
    wire: List[tuple] = []  # (arrival time, direction, producer index, frame)
    end = start + duration + drain
    while now <= end:
        if kills and now >= kills[0][0]:
            back_at = now + kills.pop(0)[1]
            if consumer is not None:
                dead.append(consumer.summary(now))
            consumer = None
            wire.clear()
            for producer in producers:
                producer.on_disconnect(now)
        if consumer is None and now >= back_at:
            consumer = ConsumerCore(consumer_config, now, session=f"sim-{len(dead)}")
        _advance_producers(producers, [start + s for s in stops], wire, now, latency)
        _exchange(consumer, producers, wire, now, latency)
        wakes = [at for at, _ in kills[:1]] + ([back_at] if consumer is None else [])
        now = _next_time(now, consumer, producers, wire, max_step, end, wakes)
    if consumer is None:  # killed and not back by the end: an empty one reports
        consumer = ConsumerCore(consumer_config, now, session=f"sim-{len(dead)}")
    return SimResult(
        consumer.summary(now),
        [p.summary(now) for p in producers],
        consumer,
        producers,
        tuple(dead),
    )


def _advance_producers(producers, stop_at: Sequence[float], wire, now: float, latency: float):
    """Each producer stops when its time comes, makes what came due, and knocks."""
    for index, producer in enumerate(producers):
        if producer.stopped_at is None and now >= stop_at[index]:
            producer.stop(now)
        producer.advance(now)
        for frame in producer.take_control_frames():
            wire.append((now + latency, "up", index, frame))


def _exchange(consumer: Optional[ConsumerCore], producers, wire, now: float, latency: float):
    """Frames back and forth at ``now`` until no producer may send more: a WELCOME or fresh
    credit that arrived just now is used at once, as a real producer would; each pass
    empties some of a finite outbox, so this ends."""
    while True:
        for index, producer in enumerate(producers):
            out = producer.pull_frame(now)
            while out is not None:
                producer.mark_sent(out, now)
                wire.append((now + latency, "up", index, out.data))
                out = producer.pull_frame(now)
        _deliver(wire, now, consumer, producers)
        if consumer is not None:
            consumer.advance(now)
            for peer, frame in consumer.take_outgoing():
                index = int(peer.decode().split("-")[-1])
                wire.append((now + latency, "down", index, frame))
        _deliver(wire, now, consumer, producers)
        if not any(p.ready(now) for p in producers):
            return


def _named(config: ProducerConfig, index: int) -> ProducerConfig:
    from dataclasses import replace

    return replace(config, name=f"sim-{index}")


def _deliver(wire: List[tuple], now: float, consumer: Optional[ConsumerCore], producers) -> None:
    due = [item for item in wire if item[0] <= now]
    if not due:
        return
    wire[:] = [item for item in wire if item[0] > now]
    for _, direction, index, frame in due:
        if direction == "up":
            if consumer is not None:  # a dead consumer receives nothing
                consumer.on_frame(f"sim-{index}".encode(), frame, now)
        else:
            producers[index].on_frame(frame, now)


def _next_time(now, consumer, producers, wire, max_step, end, wakes=()) -> float:
    candidates = list(wakes) + ([consumer.next_deadline(now)] if consumer is not None else [])
    candidates += [p.next_deadline(now) for p in producers]
    candidates += [item[0] for item in wire]
    later = [t for t in candidates if t > now]
    step_to = min(later) if later else now + max_step
    if wire or any(p.ready(now) for p in producers):
        step_to = min(step_to, now + 1e-6) if any(t <= now for t in candidates) else step_to
    return min(max(step_to, now + 1e-9), now + max_step) if step_to <= end else end + 1e-9
