"""Backoff (exponential, capped, fully jittered, never sooner than the retry-after) and the
retry modes built from the one ``RETRY_MODES`` table."""

from __future__ import annotations

import random

import pytest

from lab.core import producer_core
from lab.core.config import ProducerConfig
from lab.core.retry import RETRY_MODES, RETRY_POLICIES, Backoff, build_retry_policy


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


# -- the retry modes, as objects behind the plugins' interface ------------------------------------
def config(**options) -> ProducerConfig:
    return ProducerConfig(backoff_base_s=0.1, backoff_cap_s=1.0, **options)


def test_the_mode_names_come_from_the_one_table():
    assert RETRY_POLICIES == tuple(RETRY_MODES) == ("none", "immediate", "exponential", "backoff")
    assert producer_core.RETRY_POLICIES is RETRY_POLICIES  # what the CLI imports


def test_none_gives_up_and_immediate_ignores_the_retry_after():
    rng = random.Random(0)
    assert RETRY_MODES["none"](config(), rng).delay(1, 0.5, 0.0) is None
    assert RETRY_MODES["immediate"](config(), rng).delay(3, 0.5, 0.0) == 0.0


def test_exponential_doubles_without_jitter_and_backoff_jitters_below_the_same_ceiling():
    exponential = RETRY_MODES["exponential"](config(), random.Random(0))
    assert [exponential.delay(a, 0.0, 0.0) for a in (1, 2, 3, 4, 5)] == [0.1, 0.2, 0.4, 0.8, 1.0]
    assert exponential.delay(1, 0.3, 0.0) == 0.3
    jittered = RETRY_MODES["backoff"](config(), random.Random(0))
    draws = [jittered.delay(3, 0.0, 0.0) for _ in range(200)]
    assert all(0.0 <= d < 0.4 for d in draws) and len(set(draws)) == 200
    assert all(jittered.delay(3, 0.35, 0.0) >= 0.35 for _ in range(50))


def test_backoff_draws_from_the_generator_it_is_handed():
    a = RETRY_MODES["backoff"](config(), random.Random(5))
    b = RETRY_MODES["backoff"](config(), random.Random(5))
    assert [a.delay(2, 0.0, 0.0) for _ in range(10)] == [b.delay(2, 0.0, 0.0) for _ in range(10)]


def test_a_plugin_replaces_the_mode_and_an_unknown_mode_is_refused():
    class Plugin:
        def delay(self, attempt, retry_after_s, now):
            return 1.5

    plugin = Plugin()
    assert build_retry_policy(config(retry="none", retry_plugin=plugin), random.Random(0)) is plugin
    built = build_retry_policy(config(retry="exponential"), random.Random(0))
    assert built.delay(2, 0.0, 0.0) == 0.2
    with pytest.raises(ValueError, match="unknown retry policy 'sometimes'"):
        build_retry_policy(config(retry="sometimes"), random.Random(0))
