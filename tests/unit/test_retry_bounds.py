"""RetryBounds: each delay a retry policy returned, against its retry-after and deadline."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from lab.core.config import ProducerConfig
from lab.core.metrics import RecentLatency
from lab.core.outbox import Entry
from lab.core.requests import RequestTracker
from lab.core.retry_bounds import RetryBounds


def test_early_and_late_delays_are_counted_with_their_extreme_shares():
    bounds = RetryBounds()
    bounds.record(0.15, 0.1, 3.0)  # 150 % of its retry-after, 5 % of the deadline
    bounds.record(0.05, 0.1, 3.0)  # too soon
    bounds.record(4.5, 0.1, 3.0)  # longer than the whole deadline
    bounds.record(0.3, 0.0, 3.0)  # after a timeout: no retry-after to keep
    assert bounds.as_dict() == {
        "delays": 4,
        "early": 1,
        "late": 1,
        "soonest_share": 50.0,
        "latest_share": 150.0,
    }


def test_no_delay_and_no_deadline_leave_the_shares_unknown():
    bounds = RetryBounds()
    assert bounds.as_dict()["soonest_share"] is None
    bounds.record(1.0, 0.0, None)
    assert bounds.as_dict() == {
        "delays": 1,
        "early": 0,
        "late": 0,
        "soonest_share": None,
        "latest_share": None,
    }


@given(st.lists(st.tuples(st.floats(0, 10), st.floats(0.01, 1), st.floats(0.5, 5)), min_size=1))
def test_a_delay_is_early_exactly_when_its_share_is_under_100(triples):
    bounds = RetryBounds()
    for delay, retry_after, deadline in triples:
        bounds.record(delay, retry_after, deadline)
    assert (bounds.early > 0) == (bounds.soonest_share < 100.0)
    assert (bounds.late > 0) == (bounds.latest_share > 100.0)


class _Fixed:
    def __init__(self, delay):
        self.value = delay

    def delay(self, attempt, retry_after_s, now):
        return self.value


def test_the_tracker_holds_each_delay_of_a_shed_against_the_bounds_in_force():
    config = ProducerConfig(retry="immediate", deadline_s=2.0, max_attempts=6)
    config.retry_plugin = _Fixed(0.05)
    tracker = RequestTracker(config, random.Random(0), 0.0, RecentLatency())
    entry = Entry(seq=1, due=0.0)
    tracker.shed([entry], retry_after_ms=100, now=0.5)
    assert tracker.bounds.as_dict() == {
        "delays": 1,
        "early": 1,
        "late": 0,
        "soonest_share": 50.0,
        "latest_share": 2.5,
    }
