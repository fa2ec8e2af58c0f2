"""Queue disciplines: which waiting message the worker takes next, and what is dropped at
dequeue (Module 19: deadlines and goodput).

Theory of operation
-------------------
A discipline looks at the waiting messages (a deque, oldest on the left) when the worker
is free at ``now`` and returns ``(message, dropped)``: the message to serve (removed from
the deque, or None when nothing is left) and the messages it removed without serving.
Each message carries its caller's ``deadline`` on the consumer's clock (``math.inf``:
none). Only messages that had arrived by ``now`` are candidates.

* ``fifo``: the oldest first, never a drop (the baseline).
* ``lifo``: the newest first, never a drop.
* ``adaptive-lifo``: FIFO while at most ``short`` messages wait, LIFO above that (the
  overload switch of Facebook's "Fail at Scale", 2015): under overload the newest requests,
  whose callers still wait, are served first.
* ``deadline-drop``: FIFO, but a message that is past its deadline, or would be by the end
  of one mean service time, is dropped at dequeue instead of served: no work is spent on a
  caller who gave up (or will have given up when the work is done).
* ``codel``: FIFO with Nichols and Jacobson's controlled delay ("Controlling Queue Delay",
  ACM Queue 10(5), 2012). The sojourn time of each dequeued message is compared with
  ``target``; once it has stayed above target for a whole ``interval`` the discipline
  enters its dropping state and drops at dequeue, the next drop ``interval / sqrt(count)``
  after the previous one, until a sojourn falls below target. The state machine is the
  paper's ``dodeque``/``deque`` pseudocode, with "less than one MTU in the queue" read as
  "nothing left waiting".

Everything here is pure: the caller hands in ``now``.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Deque, Dict, List, Optional, Tuple

from lab.core.buffer import Message

Picked = Tuple[Optional[Message], List[Message]]
DISCIPLINE_NAMES = ("fifo", "lifo", "adaptive-lifo", "deadline-drop", "codel")
# The paper's 5 ms target and 100 ms interval, scaled to the lab's unit of work: target half
# a service time (5 ms at 100 msg/s: less than one message waiting), interval 10 targets
# (the paper keeps target at 5-10% of interval). An instant worker keeps the paper's values.
CODEL_TARGET_SERVICES = 0.5
CODEL_INTERVAL_TARGETS = 10.0
CODEL_TARGET_S, CODEL_INTERVAL_S = 0.005, 0.1
ADAPTIVE_SHORT = 10  # a "short" queue: at most this many messages waiting


class Discipline:
    """FIFO: the oldest waiting message first, nothing dropped. The base of the others."""

    name = "fifo"

    def pick(self, queue: Deque[Message], now: float) -> Picked:
        return (queue.popleft() if queue else None), []

    def status(self) -> Dict[str, Any]:
        """What the dashboard shows about the discipline's state."""
        return {"discipline": self.name}


def _pop_newest(queue: Deque[Message], now: float) -> Optional[Message]:
    """Remove and return the newest message that had arrived by ``now``."""
    if not queue:
        return None
    if queue[-1].enqueued_at <= now:
        return queue.pop()
    for index in range(len(queue) - 1, -1, -1):  # arrivals after now: rare, scan past them
        if queue[index].enqueued_at <= now:
            message = queue[index]
            del queue[index]
            return message
    return queue.popleft()


class Lifo(Discipline):
    """The newest waiting message first."""

    name = "lifo"

    def pick(self, queue: Deque[Message], now: float) -> Picked:
        return _pop_newest(queue, now), []


class AdaptiveLifo(Discipline):
    """FIFO while at most ``short`` messages wait, LIFO while more do."""

    name = "adaptive-lifo"

    def __init__(self, short: int) -> None:
        if short < 0:
            raise ValueError("short must be >= 0")
        self.short = short
        self.lifo = False
        self.switches = 0

    def pick(self, queue: Deque[Message], now: float) -> Picked:
        overloaded = len(queue) > self.short
        if overloaded != self.lifo:
            self.lifo = overloaded
            self.switches += 1
        if overloaded:
            return _pop_newest(queue, now), []
        return (queue.popleft() if queue else None), []

    def status(self) -> Dict[str, Any]:
        return {"discipline": self.name, "lifo": self.lifo, "switches": self.switches}


class DeadlineDrop(Discipline):
    """FIFO; a message that cannot finish by its deadline is dropped at dequeue."""

    name = "deadline-drop"

    def __init__(self, service_time_s: float = 0.0) -> None:
        self.service_time = service_time_s
        self.drops = 0

    def pick(self, queue: Deque[Message], now: float) -> Picked:
        dropped: List[Message] = []
        done_at = now + self.service_time
        while queue:
            message = queue.popleft()
            if message.deadline >= done_at:
                self.drops += len(dropped)
                return message, dropped
            dropped.append(message)
        self.drops += len(dropped)
        return None, dropped

    def status(self) -> Dict[str, Any]:
        return {"discipline": self.name, "drops": self.drops}


class CoDel(Discipline):
    """Controlled delay at dequeue (see the module docstring)."""

    name = "codel"

    def __init__(self, target_s: float, interval_s: float) -> None:
        if not (target_s > 0 and interval_s > 0):
            raise ValueError("codel target and interval must be > 0")
        self.target = target_s
        self.interval = interval_s
        self.first_above_time: Optional[float] = None
        self.dropping = False
        self.drop_next = -math.inf
        self.count = 0
        self.last_sojourn = 0.0
        self.drops = 0

    def control_law(self, t: float) -> float:
        return t + self.interval / math.sqrt(self.count)

    def _dodeque(self, queue: Deque[Message], now: float) -> Tuple[Optional[Message], bool]:
        """The paper's ``dodeque``: the head and whether it is OK to drop it."""
        if not queue:
            self.first_above_time = None
            return None, False
        message = queue.popleft()
        sojourn = now - message.enqueued_at
        self.last_sojourn = sojourn
        if sojourn < self.target or not queue:
            self.first_above_time = None
            return message, False
        if self.first_above_time is None:
            self.first_above_time = now + self.interval
            return message, False
        return message, now >= self.first_above_time

    def pick(self, queue: Deque[Message], now: float) -> Picked:
        dropped: List[Message] = []
        message, ok_to_drop = self._dodeque(queue, now)
        if message is None:
            self.dropping = False
            return None, dropped
        if self.dropping:
            if not ok_to_drop:
                self.dropping = False
            while self.dropping and now >= self.drop_next and message is not None:
                dropped.append(message)
                self.count += 1
                message, ok_to_drop = self._dodeque(queue, now)
                if not ok_to_drop:
                    self.dropping = False
                else:
                    self.drop_next = self.control_law(self.drop_next)
        elif ok_to_drop and (
            now - self.drop_next < self.interval or now - self._first_above() >= self.interval
        ):
            dropped.append(message)
            message, ok_to_drop = self._dodeque(queue, now)
            self.dropping = True
            # Back into dropping soon after the last cycle: resume near its drop rate.
            if now - self.drop_next < self.interval:
                self.count = self.count - 2 if self.count > 2 else 1
            else:
                self.count = 1
            self.drop_next = self.control_law(now)
        self.drops += len(dropped)
        return message, dropped

    def _first_above(self) -> float:
        return math.inf if self.first_above_time is None else self.first_above_time

    def status(self) -> Dict[str, Any]:
        return {
            "discipline": self.name,
            "dropping": self.dropping,
            "count": self.count,
            "sojourn_ms": round(self.last_sojourn * 1000, 3),
            "target_ms": round(self.target * 1000, 3),
            "interval_ms": round(self.interval * 1000, 3),
        }


class FromFile(Discipline):
    """A person's discipline (the consumer's ``--discipline-file``): its ``pick`` chooses;
    its ``status``, if it has one, is what the dashboard shows."""

    name = "file"

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def pick(self, queue: Deque[Message], now: float) -> Picked:
        return self.inner.pick(queue, now)

    def status(self) -> Dict[str, Any]:
        own = getattr(self.inner, "status", None)
        shown = own() if callable(own) else None
        return {"discipline": self.name, **(shown if isinstance(shown, dict) else {})}


def _codel_times(service_time_s: float, options: Dict[str, float]) -> Tuple[float, float]:
    if service_time_s > 0:
        target = CODEL_TARGET_SERVICES * service_time_s
        interval = CODEL_INTERVAL_TARGETS * target
    else:
        target, interval = CODEL_TARGET_S, CODEL_INTERVAL_S
    return options.get("codel_target_s") or target, options.get("codel_interval_s") or interval


def build_discipline(name: str, service_time_s: float, **options: float) -> Discipline:
    """The discipline called ``name`` for a worker whose mean service time is
    ``service_time_s`` (0 for an instant worker); ``options`` override the defaults:
    ``codel_target_s``, ``codel_interval_s``, ``adaptive_short``."""
    makers: Dict[str, Callable[[], Discipline]] = {
        "fifo": Discipline,
        "lifo": Lifo,
        "adaptive-lifo": lambda: AdaptiveLifo(int(options.get("adaptive_short") or ADAPTIVE_SHORT)),
        "deadline-drop": lambda: DeadlineDrop(service_time_s),
        "codel": lambda: CoDel(*_codel_times(service_time_s, options)),
    }
    if name not in makers:
        raise ValueError(f"unknown discipline {name!r}: choose from {', '.join(DISCIPLINE_NAMES)}")
    return makers[name]()
