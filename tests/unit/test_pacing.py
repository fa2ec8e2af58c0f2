"""Pacing: deadline-based due times that never drift, with live rate changes and spikes."""

from __future__ import annotations

import math
import random

import pytest

from lab.core.pacing import PacingSchedule


def test_docstring_quick_facts():
    schedule = PacingSchedule(rate=10.0, start=0.0)
    assert schedule.due_until(0.25) == [0.0, 0.1, 0.2]
    assert schedule.next_due == 0.3


def test_due_times_are_computed_from_the_start_so_rounding_never_accumulates():
    schedule = PacingSchedule(rate=1000.0, start=0.0)
    due = schedule.due_until(10.0)
    assert len(due) == 10_001
    assert due == [k / 1000.0 for k in range(10_001)]


def test_start_offset_and_a_due_time_exactly_at_now():
    schedule = PacingSchedule(rate=4.0, start=100.0)
    assert schedule.due_until(99.9) == []
    assert schedule.due_until(100.5) == [100.0, 100.25, 100.5]
    assert schedule.next_due == 100.75


def test_polling_irregularly_gives_the_same_due_times_as_one_call():
    one = PacingSchedule(rate=7.0, start=0.0).due_until(3.0)
    schedule = PacingSchedule(rate=7.0, start=0.0)
    pieces = []
    for now in (0.01, 0.5, 0.51, 1.3, 2.999, 3.0):
        pieces += schedule.due_until(now)
    assert pieces == one
    assert len(one) == 22


def test_due_until_honours_its_limit_and_keeps_the_rest():
    schedule = PacingSchedule(rate=10.0, start=0.0)
    assert schedule.due_until(1.0, limit=4) == [0.0, 0.1, 0.2, 0.3]
    assert schedule.due_until(1.0, limit=0) == []
    assert schedule.due_until(0.5) == [0.4, 0.5]


def test_expected_count_and_rate_at():
    schedule = PacingSchedule(rate=20.0, start=1.0)
    assert schedule.expected_count(1.0) == 0.0
    assert schedule.expected_count(3.5) == 50.0
    assert schedule.rate_at(2.0) == 20.0


def test_skip_to_forgets_exactly_the_missed_slots():
    schedule = PacingSchedule(rate=10.0, start=0.0)
    assert schedule.due_until(0.25) == [0.0, 0.1, 0.2]
    assert schedule.skip_to(1.0) == 7  # 0.3 .. 0.9; the slot at 1.0 is not missed yet
    assert schedule.next_due == 1.0
    assert schedule.due_until(1.0) == [1.0]


def test_skip_to_between_slots_restarts_the_schedule_at_now():
    schedule = PacingSchedule(rate=10.0, start=0.0)
    schedule.due_until(0.25)
    assert schedule.skip_to(1.05) == 8  # 0.3 .. 1.0
    assert schedule.next_due == pytest.approx(1.05)
    assert schedule.due_until(1.2) == pytest.approx([1.05, 1.15])


def test_skip_to_when_not_behind_skips_nothing():
    schedule = PacingSchedule(rate=10.0, start=0.0)
    schedule.due_until(0.25)
    assert schedule.skip_to(0.3) == 0
    assert schedule.skip_to(0.1) == 0
    assert schedule.next_due == 0.3


def test_set_rate_replans_the_pending_slot_at_the_new_rate():
    schedule = PacingSchedule(rate=10.0, start=0.0)
    schedule.due_until(0.25)  # next due 0.3, half a slot away
    schedule.set_rate(20.0, 0.25)
    assert schedule.next_due == 0.275  # the remaining half slot, at 20 msg/s
    assert schedule.due_until(0.4) == pytest.approx([0.275, 0.325, 0.375])
    assert schedule.rate_at(0.1) == 10.0
    assert schedule.rate_at(0.3) == 20.0


def test_rate_zero_pauses_and_a_new_rate_resumes():
    schedule = PacingSchedule(rate=10.0, start=0.0)
    schedule.due_until(0.25)
    schedule.set_rate(0.0, 0.25)
    assert schedule.next_due == math.inf
    assert schedule.due_until(1000.0) == []
    assert schedule.skip_to(1000.0) == 0
    schedule.set_rate(10.0, 2.0)
    assert schedule.next_due == 2.05
    assert schedule.due_until(2.3) == pytest.approx([2.05, 2.15, 2.25])


def test_a_schedule_starting_at_rate_zero_waits_forever():
    schedule = PacingSchedule(rate=0.0, start=0.0)
    assert schedule.next_due == math.inf
    assert schedule.due_until(10.0) == []


@pytest.mark.parametrize("rate", [-1.0, math.inf, math.nan])
def test_invalid_rates_are_rejected(rate):
    with pytest.raises(ValueError):
        PacingSchedule(rate=rate, start=0.0)
    with pytest.raises(ValueError):
        PacingSchedule(rate=1.0, start=0.0).set_rate(rate, 0.0)


def test_unknown_profile_is_rejected():
    with pytest.raises(ValueError):
        PacingSchedule(rate=1.0, start=0.0, profile="bursty")


def test_spike_profile_runs_ten_times_faster_during_the_spike():
    schedule = PacingSchedule(
        rate=10.0, start=0.0, profile="spike", spike_at=1.0, spike_duration=1.0, spike_factor=10.0
    )
    assert schedule.rate_at(0.5) == 10.0
    assert schedule.rate_at(1.5) == 100.0
    assert schedule.rate_at(2.5) == 10.0
    due = schedule.due_until(3.0)
    assert len([t for t in due if t < 1.0]) == 10
    assert len([t for t in due if 1.0 <= t < 2.0]) == 100
    assert len([t for t in due if 2.0 <= t <= 3.0]) == 11
    assert schedule.expected_count(3.0) == 120.0


def test_spike_profile_default_is_five_seconds_in():
    schedule = PacingSchedule(rate=2.0, start=10.0, profile="spike")
    assert schedule.rate_at(14.9) == 2.0
    assert schedule.rate_at(15.0) == 20.0
    assert schedule.rate_at(20.0) == 2.0


def test_start_spike_live():
    schedule = PacingSchedule(rate=10.0, start=0.0)
    assert len(schedule.due_until(1.0)) == 11  # 0.0 .. 1.0
    schedule.start_spike(1.0, factor=10.0, duration=0.5)
    assert schedule.next_due == 1.01
    spike = schedule.due_until(1.5)
    assert len(spike) == 50
    assert spike[-1] == pytest.approx(1.5)
    assert schedule.due_until(1.85) == pytest.approx([1.6, 1.7, 1.8])


def test_set_rate_cancels_a_planned_spike():
    schedule = PacingSchedule(rate=10.0, start=0.0, profile="spike", spike_at=2.0)
    schedule.set_rate(5.0, 1.0)
    assert schedule.rate_at(3.0) == 5.0
    assert schedule.rate_at(10.0) == 5.0


def test_poisson_is_reproducible_and_has_the_right_mean():
    a = PacingSchedule(rate=50.0, start=0.0, profile="poisson", rng=random.Random(7))
    b = PacingSchedule(rate=50.0, start=0.0, profile="poisson", rng=random.Random(7))
    due_a, due_b = a.due_until(100.0), b.due_until(100.0)
    assert due_a == due_b
    assert due_a == sorted(due_a)
    assert 5000 - 300 <= len(due_a) <= 5000 + 300  # mean 5000, sd 71
    gaps = [y - x for x, y in zip(due_a, due_a[1:])]
    assert min(gaps) >= 0.0
    assert max(gaps) > 3 / 50  # exponential gaps, not a fixed 1/50


def test_poisson_follows_a_rate_change():
    schedule = PacingSchedule(rate=10.0, start=0.0, profile="poisson", rng=random.Random(3))
    schedule.due_until(10.0)
    schedule.set_rate(200.0, 10.0)
    assert 2000 - 200 <= len(schedule.due_until(20.0)) <= 2000 + 200


def test_a_rate_set_five_times_a_second_keeps_few_segments_and_the_same_due_times():
    plain = PacingSchedule(rate=10.0, start=0.0)
    changed = PacingSchedule(rate=10.0, start=0.0)
    due_plain, due_changed = [], []
    for step in range(1, 501):  # 100 s, as the throttle on lag does
        now = step * 0.2 + 0.05  # between due times: no float tie at the boundary
        due_plain += plain.due_until(now)
        due_changed += changed.due_until(now)
        changed.set_rate(10.0, now)
    assert due_changed == pytest.approx(due_plain) and len(due_plain) == 1001
    assert len(changed._segments) <= 2
