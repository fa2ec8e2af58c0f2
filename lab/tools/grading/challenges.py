"""The table of graded challenges, one module each, and how a person names one.

* ``adaptive.py``: 12, adaptive backpressure (the consumer's ``--policy-file``);
* ``priority.py``: 13, priority shedding (the consumer's ``--policy-file``);
* ``token_bucket.py``: 14, a token bucket (the producer's ``--limiter-file``);
* ``retry.py``: 15, a retry policy (the producer's ``--retry-file``);
* ``batcher.py``: 16, an adaptive batch size (the consumer's ``--batcher-file``);
* ``autoscaler.py``: 17, a pool's size from lag (the consumer's ``--autoscaler-file``);
* ``window.py``: 18, the credit window over a slow link (the consumer's ``--policy-file``);
* ``goodput.py``: 19, a dequeue discipline (the consumer's ``--discipline-file``);
* ``lag_throttle.py``: 20, a producer's rate from a real broker's lag (``--throttle-file``).

Every number a challenge's README quotes comes from the constants of its module, so the
lesson and the grader cannot disagree. What a challenge is made of (a seeded plan, its
checks, a probe) is in ``table.py``.

>>> find_challenge("12").name, find_challenge("exercises/15_retry_policy/").number
('12_adaptive_backpressure', 15)
"""

from __future__ import annotations

from typing import Dict, List, Optional

from lab.tools.grading.adaptive import ADAPTIVE
from lab.tools.grading.autoscaler import AUTOSCALER
from lab.tools.grading.batcher import BATCHER
from lab.tools.grading.goodput import GOODPUT
from lab.tools.grading.lag_throttle import LAG_THROTTLE
from lab.tools.grading.priority import PRIORITY
from lab.tools.grading.retry import RETRY
from lab.tools.grading.table import Challenge, Plan, Scenario
from lab.tools.grading.token_bucket import TOKEN_BUCKET
from lab.tools.grading.window import WINDOW

__all__ = ["CHALLENGES", "Challenge", "Plan", "Scenario", "find_challenge", "known_names"]

CHALLENGES: Dict[str, Challenge] = {
    challenge.name: challenge
    for challenge in (
        ADAPTIVE,
        PRIORITY,
        TOKEN_BUCKET,
        RETRY,
        BATCHER,
        AUTOSCALER,
        WINDOW,
        GOODPUT,
        LAG_THROTTLE,
    )
}


def known_names() -> List[str]:
    return sorted(CHALLENGES)


def find_challenge(text: str) -> Optional[Challenge]:
    """A challenge by its full name or its number ("12" or "12_adaptive_backpressure")."""
    text = text.strip().rstrip("/").split("/")[-1]
    if text in CHALLENGES:
        return CHALLENGES[text]
    for challenge in CHALLENGES.values():
        if text.isdigit() and int(text) == challenge.number:
            return challenge
    return None
