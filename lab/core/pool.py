"""A pool of workers (Module 17): scaling out, a shared database, autoscaling, bulkheads.

Theory of operation
-------------------
:class:`WorkerPool` simulates N workers exactly, in the consumer's clock, with the methods
of ``service.Worker`` (``advance``, ``next_event``, ``charge``, ``stall``), so the consumer
core drives either. The shell calls ``advance(buffer, now)``; every message finished by
``now`` comes back with the exact time it would have finished.

A message's life in the pool::

    waiting -> a free worker of its group takes it -> app work (1 / process_rate)
            -> [with a database] its one operation at the database -> finished

**The shared database** (``db_capacity`` operations a second, ``--db-capacity``) is one
server in front of which the workers queue, first come first served. An operation takes
``(1 / C) * (1 + coherence * (n - 1))`` seconds, where ``n`` is the number of workers at the
database (in service or waiting) when it starts: every extra concurrent caller makes each
operation a little slower (lock contention, cache coherence). So past the database's knee
more workers mean *less* throughput, not just the same: with C = 250/s and a coherence of
0.1, four workers at 100 msg/s each are held near 250 and eight do less than four.

**Groups** are the bulkheads: each worker belongs to a group that serves some classes of
messages (``likes`` = class 0, ``analytics`` = class 1). One shared group serving every class
is the plain pool. Separate groups cannot steal each other's workers, so a flood of one
workload leaves the other's lag alone. (The buffer's ``workload`` discipline keeps one queue
per class, served in arrival order.)

**Autoscaling** (:class:`LagAutoscaler`) sizes the shared group from *lag in seconds* (the
age of the oldest waiting message), checked every ``interval_s``: one worker more at once
when lag is over its target (scale-up is fast), one fewer only after lag has stayed under
half the target for ``cooldown_s`` (scale-down waits: hysteresis, so it does not flap).
A removed worker finishes the message it holds first.

Rules: ``advance(now)`` before a message is pushed at ``now`` (as in ``service.py``);
nothing here reads a clock; ties are broken by worker index, so runs are reproducible.

>>> from lab.core.buffer import Buffer, Message
>>> pool, buf = WorkerPool([PoolGroup("all", (0,), 2)], process_rate=10.0), Buffer(10)
>>> for seq in range(4): buf.push(Message(b"p", seq, enqueued_at=0.0))
>>> [(m.seq, round(t, 3)) for m, t in pool.advance(buf, 0.25)]   # two at a time, 0.1 s each
[(0, 0.1), (1, 0.1), (2, 0.2), (3, 0.2)]
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

from lab.core.buffer import Buffer, Message
from lab.core.metrics import RateWindow

ALL_CLASSES = tuple(range(8))
WORKLOADS = {"likes": 0, "analytics": 1}  # seed 002's two workloads, as priority classes


def parse_bulkheads(text: str) -> List[Tuple[str, int, int]]:
    """``likes=4,analytics=2`` -> [(name, class, workers)]; ValueError with the line to show.

    >>> parse_bulkheads("likes=4,analytics=2")
    [('likes', 0, 4), ('analytics', 1, 2)]
    """
    out: List[Tuple[str, int, int]] = []
    for part in text.split(","):
        name, _, count = part.partition("=")
        name = name.strip()
        if name not in WORKLOADS or not count.strip().isdigit() or int(count) < 1:
            raise ValueError(
                f"--bulkhead takes workload=workers pairs for {', '.join(WORKLOADS)}, e.g. "
                f"likes=4,analytics=2; got {text!r}"
            )
        out.append((name, WORKLOADS[name], int(count)))
    if len({name for name, _, _ in out}) != len(out):
        raise ValueError(f"--bulkhead names each workload once, got {text!r}")
    return out


def parse_workloads(text: str) -> Tuple[float, ...]:
    """``likes=1,analytics=3`` -> the producer's class weights ``(1.0, 3.0)``.

    >>> parse_workloads("analytics=3,likes=1")
    (1.0, 3.0)
    """
    weights = [0.0] * len(WORKLOADS)
    for part in text.split(","):
        name, _, weight = part.partition("=")
        try:
            value = float(weight)
        except ValueError:
            value = -1.0
        if name.strip() not in WORKLOADS or not 0 <= value < math.inf:
            raise ValueError(
                f"--workloads takes name=weight pairs for {', '.join(WORKLOADS)}, e.g. "
                f"likes=1,analytics=3; got {text!r}"
            )
        weights[WORKLOADS[name.strip()]] = value
    if sum(weights) <= 0:
        raise ValueError(f"--workloads needs a positive total weight, got {text!r}")
    return tuple(weights)


def parse_range(text: str) -> Tuple[int, int]:
    """``2-8`` -> (2, 8), for ``--autoscale MIN-MAX``.

    >>> parse_range("2-8")
    (2, 8)
    """
    low, _, high = text.partition("-")
    if not (low.strip().isdigit() and high.strip().isdigit()) or not 1 <= int(low) <= int(high):
        raise ValueError(f"--autoscale takes MIN-MAX workers with 1 <= MIN <= MAX, got {text!r}")
    return int(low), int(high)


def change_workers(worker: Any, value: Any, now: float) -> str:
    """A live change of the pool's size: a number of workers, ``more`` or ``fewer``."""
    if not isinstance(worker, WorkerPool):
        raise ValueError("this consumer has no pool of workers (start it with --workers N)")
    current = worker.workers(0)
    if value == "more":
        count = current + 1
    elif value == "fewer":
        count = max(1, current - 1)
    else:
        try:
            count = int(value)
        except (TypeError, ValueError):
            raise ValueError(f"workers takes a number, more or fewer, got {value!r}") from None
    worker.set_workers(count, now)
    return f"workers set to {count}"


def check_pool(config: Any) -> None:
    """Check (and normalise) a config's pool flags; ``ValueError`` with the line to show."""
    if isinstance(config.autoscale, str):
        config.autoscale = parse_range(config.autoscale)
    if not 1 <= config.workers <= 1000:
        raise ValueError(f"--workers must be between 1 and 1000, got {config.workers}")
    if config.db_capacity is not None and not 0 < config.db_capacity < math.inf:
        raise ValueError(f"--db-capacity must be a finite number > 0, got {config.db_capacity:g}")
    if not 0 <= config.db_coherence <= 10:
        raise ValueError(f"--db-coherence must be between 0 and 10, got {config.db_coherence:g}")
    if not config.lag_target_s > 0 or config.scale_cooldown_s < 0:
        raise ValueError("--lag-target-s must be > 0 and --scale-cooldown-s >= 0")
    if config.bulkhead is not None:
        parse_bulkheads(config.bulkhead)
        if config.autoscale is not None:
            raise ValueError("--bulkhead and --autoscale do not go together (yet): pick one")
        config.discipline = "workload"  # one queue per workload, so a bulkhead can serve one
    if config.pooled and math.isinf(config.process_rate):
        raise ValueError("a pool's workers need a finite --process-rate")
    if config.pooled and config.batching:
        raise ValueError("batching (Module 16) and a pool of workers (Module 17) do not mix")


@dataclass
class PoolGroup:
    """Workers that serve the messages of some classes (a bulkhead, or the whole pool)."""

    name: str
    classes: Tuple[int, ...]
    workers: int
    autoscaler: Any = None  # a LagAutoscaler, or None for a fixed size


class _Slot:
    """One worker: what it holds and until when."""

    __slots__ = ("group", "message", "phase", "until", "free_at", "retiring")

    def __init__(self, group: int, free_at: float) -> None:
        self.group = group
        self.message: Optional[Message] = None
        self.phase = "idle"  # idle, app, db-queue, db
        self.until = math.inf
        self.free_at = free_at
        self.retiring = False


class LagAutoscaler:
    """Scale a group on lag in seconds, checked every ``interval_s``:

    * lag above half of ``target_s``: double the workers at once (scale-up is fast: lag in
      seconds grows by a second every second once the queue is behind, whatever the size of
      the gap, so waiting to be sure costs the whole target);
    * lag under a quarter of the target for ``cooldown_s``: one worker fewer, and the next
      step down waits a whole cooldown again (scale-down waits: hysteresis, no flapping);
    * always within ``[minimum, maximum]``.

    >>> scaler = LagAutoscaler(target_s=1.0, minimum=1, maximum=6, cooldown_s=5.0)
    >>> scaler.decide(workers=1, lag_s=0.8, now=0.0), scaler.decide(2, 0.9, now=0.2)
    (2, 2)
    >>> scaler.decide(2, 0.9, now=0.5), scaler.decide(4, 0.9, now=1.0)   # one step per interval
    (4, 6)
    >>> [scaler.decide(n, 0.1, now=t) for n, t in ((6, 2.0), (6, 4.0), (6, 7.0), (5, 8.0))]
    [6, 6, 5, 5]
    """

    def __init__(
        self,
        target_s: float,
        minimum: int,
        maximum: int,
        cooldown_s: float = 5.0,
        interval_s: float = 0.5,
    ) -> None:
        if not 1 <= minimum <= maximum:
            raise ValueError("need 1 <= minimum workers <= maximum workers")
        if not target_s > 0 or cooldown_s < 0 or not interval_s > 0:
            raise ValueError("need a positive lag target and interval, and a cooldown >= 0")
        self.target_s, self.minimum, self.maximum = target_s, minimum, maximum
        self.cooldown_s, self.interval_s = cooldown_s, interval_s
        self._next_check = -math.inf
        self._calm_since: Optional[float] = None

    def decide(self, workers: int, lag_s: float, now: float) -> int:
        """The number of workers wanted now (``workers`` if nothing changes)."""
        workers = min(max(workers, self.minimum), self.maximum)
        if now < self._next_check:
            return workers
        self._next_check = now + self.interval_s
        if lag_s > self.target_s / 2:
            self._calm_since = None
            return min(self.maximum, workers * 2)
        if lag_s >= self.target_s / 4:
            self._calm_since = None
            return workers
        if self._calm_since is None:
            self._calm_since = now
        if now - self._calm_since >= self.cooldown_s and workers > self.minimum:
            self._calm_since = now
            return workers - 1
        return workers


class RuleAutoscaler:
    """A person's scaling rule (``--autoscaler-file``) in the pool's place of a
    :class:`LagAutoscaler`: asked every ``interval_s`` with ``decide(workers, lag_s, now)``,
    and what it answers is kept within ``[minimum, maximum]`` (an answer that is not a
    whole number is rounded down).

    >>> class Double:
    ...     def decide(self, workers, lag_s, now): return workers * 2 if lag_s > 1 else workers
    >>> scaler = RuleAutoscaler(Double(), minimum=1, maximum=5, interval_s=0.25)
    >>> scaler.decide(2, lag_s=3.0, now=0.0), scaler.decide(4, 3.0, now=0.1)
    (4, 4)
    >>> scaler.decide(4, 3.0, now=0.3)     # 8 wanted, 5 at most
    5
    """

    def __init__(self, rule: Any, minimum: int, maximum: int, interval_s: float = 0.25) -> None:
        if not 1 <= minimum <= maximum:
            raise ValueError("need 1 <= minimum workers <= maximum workers")
        self.rule, self.minimum, self.maximum = rule, minimum, maximum
        self.interval_s = interval_s
        self._next_check = -math.inf

    def decide(self, workers: int, lag_s: float, now: float) -> int:
        workers = min(max(workers, self.minimum), self.maximum)
        if now < self._next_check:
            return workers
        self._next_check = now + self.interval_s
        wanted = int(self.rule.decide(workers, lag_s, now))
        return min(max(wanted, self.minimum), self.maximum)


class WorkerPool:
    """N workers in groups, optionally behind one shared database. See the module docstring."""

    def __init__(
        self,
        groups: Sequence[PoolGroup],
        process_rate: float,
        db_capacity: Optional[float] = None,
        db_coherence: float = 0.1,
        start: float = 0.0,
    ) -> None:
        if not groups or any(g.workers < 1 for g in groups):
            raise ValueError("a pool needs at least one worker in every group")
        if not process_rate > 0 or math.isinf(process_rate):
            raise ValueError("a pool's workers need a finite processing rate > 0")
        if db_capacity is not None and not db_capacity > 0:
            raise ValueError("the database's capacity must be positive")
        self.groups = list(groups)
        self.process_rate = process_rate
        self.slowdown = 1.0
        self.db_capacity = db_capacity
        self.db_coherence = db_coherence
        self.slots: List[_Slot] = []
        for index, group in enumerate(self.groups):
            self.slots.extend(_Slot(index, start) for _ in range(group.workers))
        self.stalled_until = -math.inf
        self.free_at = start
        self._db_queue: List[_Slot] = []  # FIFO of workers waiting for the database
        self._db_busy_until = start
        self._db_ops = RateWindow()
        self._db_time = RateWindow()  # database busy microseconds, for its utilisation
        self._db_latency = 0.0  # the last operation's time at the database, queue included
        self.scale_events: List[Tuple[float, str, int]] = []  # (seconds since start, ...)
        self._started = start
        self._buffer: Optional[Buffer] = None  # the one advance() serves, for per-group lag

    # -- the Worker interface -----------------------------------------------------------------
    def advance(self, buffer: Buffer, now: float) -> List[Tuple[Message, float]]:
        """Complete everything that finishes by ``now``, event by event, in time order."""
        done: List[Tuple[Message, float]] = []
        self._buffer = buffer
        while True:
            event = self._next_event_at(buffer)
            if event is None or event[0] > now:
                if self._autoscale(buffer, now):
                    continue  # new workers may start at once
                return done
            at, kind, slot = event
            if kind == "start":
                self._start(buffer, slot, at)
            elif kind == "app-done" and self.db_capacity:
                self._to_database(slot, at)
            else:  # the app work of a pool without a database, or the database operation
                self._finish(buffer, slot, at, done)

    def next_event(self) -> Optional[float]:
        times = [s.until for s in self.slots if s.phase in ("app", "db")]
        if self.stalled_until > self.free_at:
            times.append(self.stalled_until)
        return min(times) if times else None

    def charge(self, now: float, seconds: float) -> None:
        """Refusing work costs a worker's time: the soonest free worker pays it."""
        if seconds <= 0:
            return
        idle = [s for s in self.slots if s.phase == "idle"]
        if idle:
            slot = min(idle, key=lambda s: s.free_at)
            slot.free_at = max(slot.free_at, now) + seconds

    def stall(self, now: float, seconds: float) -> None:
        self.stalled_until = max(self.stalled_until, now + seconds)
        for slot in self.slots:
            if slot.phase in ("app", "db") and slot.until > now:
                slot.until += seconds
        self._db_busy_until = max(self._db_busy_until, now) + seconds

    # -- reports ------------------------------------------------------------------------------
    def set_workers(self, count: int, now: float, group: int = 0) -> None:
        """Resize a group by hand (the demo's keys, ``bplab ctl workers N``); idle workers go
        at once, busy ones after the message they hold."""
        if not 1 <= count <= 1000:
            raise ValueError(f"a pool has between 1 and 1000 workers, got {count}")
        have = self.workers(group)
        if count > have:
            self.slots.extend(_Slot(group, now) for _ in range(count - have))
        elif count < have:
            self._retire(group, have - count)
        if count != have:
            self.scale_events.append((now - self._started, "up" if count > have else "down", count))

    def workers(self, group: Optional[int] = None) -> int:
        return sum(1 for s in self.slots if not s.retiring and (group is None or s.group == group))

    @property
    def model(self) -> WorkerPool:
        """The pool is its own service model (``slowdown``, ``rate``), as a Worker's is."""
        return self

    @property
    def rate(self) -> float:
        """One worker's messages per second (``ServiceModel.rate``'s meaning)."""
        return self.process_rate

    @property
    def effective_rate(self) -> float:
        """The pool's speed without a database: workers x process rate (slowdown applied)."""
        return self.workers() * self.process_rate / self.slowdown

    def status(self, now: float) -> Dict[str, Any]:
        """The pool's figures for the dashboard, as flat JSON scalars (the telemetry schema's
        ``worker``); each group's own figures come from :meth:`groups`."""
        busy = sum(1 for s in self.slots if s.phase != "idle")
        last = self.scale_events[-1] if self.scale_events else (None, None, None)
        db = self.db_capacity is not None
        return {
            "kind": "pool",
            "workers": self.workers(),
            "busy": busy,
            "idle": len(self.slots) - busy,
            "scaled_at_s": None if last[0] is None else round(last[0], 2),
            "scaled": last[1],  # "up" or "down"
            "scaled_to": last[2],
            "db_capacity": self.db_capacity,
            "db_ops_per_s": self._db_ops.rate(now) if db else None,
            "db_utilisation": min(1.0, self._db_time.count(now) / 1e6) if db else None,
            "db_latency_s": self._db_latency if db else None,
            "db_waiting": len(self._db_queue) if db else None,
        }

    def groups_status(self, now: float) -> List[Dict[str, Any]]:
        """Each group's workers, busy ones and lag (the schema's ``worker_groups``)."""
        return [self._group_status(i, now) for i in range(len(self.groups))]

    def summary(self) -> Dict[str, Any]:
        return {
            "kind": "pool",
            "workers_end": self.workers(),
            "scale_ups": sum(1 for _, what, _ in self.scale_events if what == "up"),
            "scale_downs": sum(1 for _, what, _ in self.scale_events if what == "down"),
        }

    # -- internals ----------------------------------------------------------------------------
    def _group_status(self, index: int, now: float) -> Dict[str, Any]:
        group = self.groups[index]
        mine = [s for s in self.slots if s.group == index]
        buffer = self._buffer
        return {
            "name": group.name,
            "classes": list(group.classes) if len(group.classes) < len(ALL_CLASSES) else None,
            "workers": self.workers(index),
            "busy": sum(1 for s in mine if s.phase != "idle"),
            "lag_s": buffer.oldest_age_of(group.classes, now) if buffer is not None else 0.0,
            "autoscale": [group.autoscaler.minimum, group.autoscaler.maximum]
            if group.autoscaler is not None
            else None,
        }

    def _next_event_at(self, buffer: Buffer) -> Optional[Tuple[float, str, _Slot]]:
        best: Optional[Tuple[float, str, _Slot]] = None
        for slot in self.slots:
            if slot.phase == "app":
                candidate = (slot.until, "app-done", slot)
            elif slot.phase == "db":
                candidate = (slot.until, "db-done", slot)
            elif slot.phase == "idle" and not slot.retiring:
                arrived = buffer.next_arrival(self.groups[slot.group].classes)
                if arrived is None:
                    continue
                at = max(slot.free_at, self.stalled_until, arrived)
                candidate = (at, "start", slot)
            else:
                continue
            if best is None or candidate[0] < best[0]:
                best = candidate
        return best

    def _start(self, buffer: Buffer, slot: _Slot, at: float) -> None:
        message = buffer.take(self.groups[slot.group].classes)
        message.started_at = at
        slot.message, slot.phase = message, "app"
        slot.until = at + self.slowdown / self.process_rate

    def _to_database(self, slot: _Slot, at: float) -> None:
        slot.phase, slot.until = "db-queue", math.inf
        slot.free_at = at  # when it joined the database's queue
        self._db_queue.append(slot)
        self._serve_database(at)

    def _serve_database(self, at: float) -> None:
        """Start the next operation if the database is free (it serves one at a time)."""
        if not self._db_queue or any(s.phase == "db" for s in self.slots):
            return
        slot = self._db_queue.pop(0)
        callers = len(self._db_queue) + 1
        begin = max(at, self._db_busy_until)
        capacity = self.db_capacity or math.inf
        duration = (1 + self.db_coherence * (callers - 1)) / capacity
        slot.phase, slot.until = "db", begin + duration
        self._db_busy_until = slot.until
        self._db_latency = slot.until - slot.free_at
        self._db_time.add(begin, max(1, int(duration * 1e6)))

    def _finish(
        self, buffer: Buffer, slot: _Slot, at: float, done: List[Tuple[Message, float]]
    ) -> None:
        message = slot.message
        assert message is not None
        if slot.phase == "db":
            self._db_ops.add(at)
        buffer.release(message)
        done.append((message, at))
        slot.message, slot.phase, slot.until, slot.free_at = None, "idle", math.inf, at
        self.free_at = max(self.free_at, at)
        if slot.retiring:
            self.slots.remove(slot)
        if self.db_capacity:
            self._serve_database(at)

    def _autoscale(self, buffer: Buffer, now: float) -> bool:
        """Ask each group's autoscaler; True if workers were added."""
        added = False
        for index, group in enumerate(self.groups):
            scaler = group.autoscaler
            if scaler is None:
                continue
            have = self.workers(index)
            want = scaler.decide(have, buffer.oldest_age_of(group.classes, now), now)
            if want > have:
                self.slots.extend(_Slot(index, now) for _ in range(want - have))
                self.scale_events.append((now - self._started, "up", want))
                added = True
            elif want < have:
                self._retire(index, have - want)
                self.scale_events.append((now - self._started, "down", want))
        return added

    def _retire(self, group: int, count: int) -> None:
        """Remove idle workers at once, busy ones when they finish what they hold."""
        mine = [s for s in self.slots if s.group == group and not s.retiring]
        for slot in sorted(mine, key=lambda s: s.phase != "idle")[:count]:
            if slot.phase == "idle":
                self.slots.remove(slot)
            else:
                slot.retiring = True
