"""A slow link as a delay line: each item comes out ``delay`` seconds after it went in.

Theory of operation
-------------------
The shell puts every frame it would send into a :class:`DelayLine` with ``now`` and takes
out what :meth:`DelayLine.release` says is due at a later ``now``; it sleeps (or polls)
until :meth:`DelayLine.next_deadline`, so the whole line costs one wait, never one sleep
per frame. A link keeps order: when the delay is lowered, an item never overtakes the one
before it (its release time is at least the previous one's). The delay may change while
items are on the way; items already in the line keep the release time they were given.
An item comes out *at* its deadline: the shell hands it on stamped with that time, so a
late wake-up of the shell's loop does not lengthen the link.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Deque, List, Optional, Tuple

MAX_LINK_DELAY_MS = 10_000.0  # --link-delay-ms, and what a live change may ask for


def check_link_delay(ms: float, flag: str = "--link-delay-ms") -> None:
    """``--link-delay-ms`` (or a live change of it) out of range: one line saying so."""
    if not 0.0 <= ms <= MAX_LINK_DELAY_MS:
        raise ValueError(f"{flag} must be between 0 and {MAX_LINK_DELAY_MS:g}, got {ms:g}")


class DelayLine:
    """FIFO of items, each released at its own deadline."""

    __slots__ = ("delay", "_items", "_last", "passed")

    def __init__(self, delay: float) -> None:
        if delay < 0:
            raise ValueError("a link delay cannot be negative")
        self.delay = delay
        self._items: Deque[Tuple[float, Any]] = deque()
        self._last = float("-inf")
        self.passed = 0

    def __len__(self) -> int:
        return len(self._items)

    def set_delay(self, delay: float) -> None:
        if delay < 0:
            raise ValueError("a link delay cannot be negative")
        self.delay = delay

    def push(self, item: Any, now: float) -> float:
        """Put ``item`` on the line; returns when it will come out."""
        due = max(now + self.delay, self._last)
        self._last = due
        self._items.append((due, item))
        return due

    def release(self, now: float) -> List[Tuple[float, Any]]:
        """Every item whose deadline is at or before ``now``, as (deadline, item), in the
        order they went in. The deadline is when the item came out of the link, however
        late the caller looked: the shell hands it on with that time."""
        out = []
        items = self._items
        while items and items[0][0] <= now:
            out.append(items.popleft())
        self.passed += len(out)
        return out

    def next_deadline(self) -> Optional[float]:
        return self._items[0][0] if self._items else None
