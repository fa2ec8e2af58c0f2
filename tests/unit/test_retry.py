"""Backoff: exponential, capped, fully jittered, never sooner than the server's retry-after."""

from __future__ import annotations

import random

import pytest

from lab.core.retry import Backoff


def test_docstring_quick_facts():
    backoff = Backoff(base_s=0.1, cap_s=1.0, rng=random.Random(1), jitter=False)
    assert [backoff.delay(attempt) for attempt in (1, 2, 3, 4, 5)] == [0.1, 0.2, 0.4, 0.8, 1.0]
    assert backoff.delay(1, retry_after_s=0.5) == 0.5


def test_without_jitter_the_delay_doubles_up_to_the_cap():
    backoff = Backoff(base_s=0.05, cap_s=2.0, jitter=False)
    assert [backoff.delay(a) for a in range(1, 9)] == [0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0]


def test_attempt_zero_or_less_counts_as_the_first_retry():
    backoff = Backoff(base_s=0.25, cap_s=4.0, jitter=False)
    assert backoff.delay(0) == 0.25
    assert backoff.delay(-3) == 0.25


def test_full_jitter_draws_between_zero_and_the_ceiling():
    backoff = Backoff(base_s=0.1, cap_s=1.0, rng=random.Random(3))
    for attempt in range(1, 8):
        ceiling = min(1.0, 0.1 * 2 ** (attempt - 1))
        draws = [backoff.delay(attempt) for _ in range(500)]
        assert all(0.0 <= d < ceiling for d in draws)
        assert max(draws) > 0.9 * ceiling
        assert min(draws) < 0.1 * ceiling


def test_jitter_is_reproducible_from_the_rng():
    a = Backoff(rng=random.Random(11))
    b = Backoff(rng=random.Random(11))
    assert [a.delay(3) for _ in range(20)] == [b.delay(3) for _ in range(20)]


def test_retry_after_is_a_floor_even_with_jitter():
    backoff = Backoff(base_s=0.1, cap_s=1.0, rng=random.Random(0))
    assert all(backoff.delay(2, retry_after_s=0.3) >= 0.3 for _ in range(200))
    assert all(backoff.delay(1, retry_after_s=0.3) == 0.3 for _ in range(200))
    no_jitter = Backoff(base_s=0.1, cap_s=1.0, jitter=False)
    assert no_jitter.delay(4, retry_after_s=0.3) == 0.8


@pytest.mark.parametrize("base, cap", [(-0.1, 1.0), (2.0, 1.0)])
def test_invalid_bounds_are_rejected(base, cap):
    with pytest.raises(ValueError):
        Backoff(base_s=base, cap_s=cap)


def test_zero_base_means_no_wait_but_retry_after_still_holds():
    backoff = Backoff(base_s=0.0, cap_s=0.0)
    assert backoff.delay(5) == 0.0
    assert backoff.delay(5, retry_after_s=0.2) == 0.2
