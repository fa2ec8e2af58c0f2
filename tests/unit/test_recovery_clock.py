"""RecoveryClock: an empty response window is silence, not recovery."""

from __future__ import annotations

from lab.core.clock import FakeClock
from lab.core.metrics import RecentLatency, RecoveryClock


def _feed(clock: RecoveryClock, time: FakeClock, window: RecentLatency, failures: int = 0) -> None:
    """What the producer core does every 100 ms: the window's p99 and failure count."""
    merged = window.merged(time.now())
    clock.update(time.now(), merged.percentile(99), failures)


def test_an_empty_window_after_the_spike_is_not_recovery():
    time, window, clock = FakeClock(0.0), RecentLatency(seconds=1), RecoveryClock()
    clock.spike(start=1.0, end=3.0, baseline_p99=0.010)
    window.record(0.5, 0.008)
    time.advance(3.0)  # the spike is over, and nothing has completed for over a second
    for _ in range(20):
        _feed(clock, time, window)
        time.advance(0.1)
    assert clock.state(time.now()) == "recovering" and clock.recovery_s is None
    window.record(time.now(), 0.012)  # the first completion, back under the threshold
    _feed(clock, time, window)
    assert clock.state(time.now()) == "recovered"
    assert round(clock.recovery_s, 6) == 2.0


def test_a_completion_count_overrides_the_p99_rule():
    clock = RecoveryClock()
    clock.spike(start=0.0, end=1.0, baseline_p99=0.010)
    clock.update(1.5, recent_p99=0.020, recent_failures=0, recent_completions=0)
    assert clock.recovery_s is None
    clock.update(1.7, recent_p99=0.020, recent_failures=0, recent_completions=4)
    assert round(clock.recovery_s, 6) == 0.7


def test_failures_still_hold_the_clock():
    clock = RecoveryClock()
    clock.spike(start=0.0, end=1.0, baseline_p99=0.010)
    clock.update(2.0, recent_p99=0.011, recent_failures=1, recent_completions=10)
    assert clock.state(2.0) == "recovering"
