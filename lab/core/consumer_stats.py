"""The consumer's shared tallies: what admission and completion both move.

Theory of operation
-------------------
State: the counts of producers already forgotten (``retired``), the counts per priority
class (``classes``), the rates over the last second in total (``rates``) and per class
(``class_rates``: received, processed, and lost = dropped + shed + sampled out), and the
buffer's depth over time (``max_depth``, ``depth_mean``). Rules: only the admission part
adds arrivals and refusals, only the completion part adds what the worker finished (an
eviction moves one accepted message to dropped); nothing here decides anything.
"""

from __future__ import annotations

from typing import Dict, List

from lab.core.accounting import MAX_CLASSES, ClassCounts, ConsumerCounts
from lab.core.metrics import RateWindow, TimeWeightedMean

RATE_NAMES = (
    "received",
    "accepted",
    "processed",
    "dropped",
    "sampled_out",
    "shed",
    "goodput",
    "wasted",
)
CLASS_RATE_NAMES = ("received", "processed", "lost")


class ConsumerStats:
    """Counters and rates of one consumer, shared by its parts (see the module docstring)."""

    __slots__ = ("retired", "classes", "rates", "class_rates", "max_depth", "depth_mean")

    def __init__(self, now: float) -> None:
        self.retired = ConsumerCounts()  # producers folded away to bound memory
        self.classes = ClassCounts()
        self.rates: Dict[str, RateWindow] = {name: RateWindow() for name in RATE_NAMES}
        self.class_rates: Dict[str, List[RateWindow]] = {
            name: [RateWindow() for _ in range(MAX_CLASSES)] for name in CLASS_RATE_NAMES
        }
        self.max_depth = 0
        self.depth_mean = TimeWeightedMean(now)

    def note_depth(self, now: float, depth: int) -> None:
        if depth > self.max_depth:
            self.max_depth = depth
        self.depth_mean.update(now, depth)

    def lost_by_class(self) -> List[int]:
        classes = self.classes
        return [d + s + o for d, s, o in zip(classes.dropped, classes.shed, classes.sampled_out)]

    def add_class_rates(self, name: str, now: float, before: List[int], after: List[int]) -> None:
        """Feed ``class_rates[name]`` with what each class gained between two readings."""
        windows = self.class_rates[name]
        for cls in range(MAX_CLASSES):
            gained = after[cls] - before[cls]
            if gained:
                windows[cls].add(now, gained)
