"""Module 18's live knobs: the window a consumer allows and the delay of its slow link.

The demo's keys and ``bplab ctl window`` / ``bplab ctl delay`` turn a word or a number
into the new setting here, so the keys, the control socket and the tests agree on one set
of steps and bounds:

* the window (the buffer's capacity, which block mode's credit and pull mode's demand are
  handed out against) doubles or halves, or takes a number, between ``request_n`` (a pull
  request must fit in it) and :data:`MAX_WINDOW`;
* the link delay, each way, steps along :data:`DELAY_STEPS_MS` (``more``, ``less``), or
  takes a number of ms up to ``--link-delay-ms``'s own bound.
"""

from __future__ import annotations

import math
from typing import Any

from lab.core.delayline import check_link_delay

MAX_WINDOW = 100_000  # far past any lesson's bandwidth-delay product (401 at 200 ms each way)
DELAY_STEPS_MS = (0.0, 10.0, 50.0, 100.0, 200.0)
WINDOW_WORDS = ("double", "half")
DELAY_WORDS = ("more", "less")


def window_after(current: int, value: Any, lowest: int = 1) -> int:
    """The window after ``value`` (``double``, ``half`` or a number) from ``current``."""
    if value == "double":
        return min(MAX_WINDOW, current * 2)
    if value == "half":
        return max(lowest, current // 2)
    window = _whole(value, "window", WINDOW_WORDS)
    if not lowest <= window <= MAX_WINDOW:
        raise ValueError(f"a window is between {lowest} and {MAX_WINDOW}, got {window}")
    return window


def delay_after(current_ms: float, value: Any) -> float:
    """The link delay (ms, each way) after ``value`` (``more``, ``less`` or a number)."""
    if value == "more":
        return next((step for step in DELAY_STEPS_MS if step > current_ms), current_ms)
    if value == "less":
        lower = [step for step in DELAY_STEPS_MS if step < current_ms]
        return lower[-1] if lower else 0.0
    try:
        delay = float(value)
    except (TypeError, ValueError):
        raise ValueError(
            f"delay takes a number of ms or one of {', '.join(DELAY_WORDS)}, got {value!r}"
        ) from None
    check_link_delay(delay)
    return delay


def _whole(value: Any, name: str, words: Any) -> int:
    number = None
    if not isinstance(value, bool):  # JSON's true is not a window of 1
        try:
            number = float(value)
        except (TypeError, ValueError):
            pass
    if number is None or not math.isfinite(number) or number != int(number):
        raise ValueError(f"{name} takes a whole number or one of {', '.join(words)}, got {value!r}")
    return int(number)
