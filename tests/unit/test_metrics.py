"""Metrics: sliding-window rates, latency histograms, recent percentiles, time averages."""

from __future__ import annotations

import math

import pytest

from lab.core.metrics import (
    LatencyHistogram,
    RateWindow,
    RecentLatency,
    TimeWeightedMean,
    round_up,
)

RESOLUTION = 0.004  # the documented bound: within 0.4% of the true sample


# -- RateWindow ------------------------------------------------------------------------------
def test_rate_docstring_quick_facts():
    rate = RateWindow(window=1.0)
    rate.add(0.0, 5)
    rate.add(0.5, 5)
    assert (rate.rate(0.9), rate.rate(1.2)) == (10.0, 5.0)


def test_rate_window_is_half_open_on_the_left():
    rate = RateWindow(window=1.0)
    rate.add(2.0, 3)
    assert rate.count(2.0) == 3
    assert rate.count(2.999) == 3
    assert rate.count(3.0) == 0  # stamped at now - window: outside (now - window, now]


def test_rate_counts_exactly_over_a_longer_window():
    rate = RateWindow(window=2.0)
    for k in range(100):
        rate.add(k * 0.1)  # one event every 100 ms, 0.0 .. 9.9
    assert rate.count(9.9) == 20  # stamps 8.0 .. 9.9 (7.9 is exactly on the edge)
    assert rate.rate(9.9) == 10.0
    assert rate.total == 100


def test_rate_events_closer_than_the_resolution_share_a_stamp():
    rate = RateWindow(window=1.0)
    rate.add(0.0)
    rate.add(0.0005, 2)
    rate.add(0.002)
    assert rate.count(0.9995) == 4
    assert rate.count(1.0) == 1  # the first three were stamped 0.0 together
    assert rate.count(1.002) == 0


def test_rate_ignores_non_positive_counts_and_validates_the_window():
    rate = RateWindow()
    rate.add(0.0, 0)
    rate.add(0.0, -3)
    assert (rate.count(0.0), rate.total) == (0, 0)
    with pytest.raises(ValueError):
        RateWindow(window=0.0)


# -- LatencyHistogram ------------------------------------------------------------------------
def test_histogram_docstring_quick_facts():
    hist = LatencyHistogram()
    for ms in range(1, 101):
        hist.record(ms / 1000)
    assert round(hist.percentile(50), 4) == 0.05
    assert hist.max == 0.1
    assert round(hist.mean, 4) == 0.0505


def test_empty_histogram():
    hist = LatencyHistogram()
    assert (hist.count, hist.max, hist.mean, hist.percentile(99)) == (0, 0.0, 0.0, 0.0)


def test_values_below_256_microseconds_are_kept_exactly():
    hist = LatencyHistogram()
    for us in (0, 1, 17, 123, 255):
        hist.record(us / 1e6)
    assert [hist.percentile(p) for p in (20, 40, 60, 80, 100)] == [
        0.0,
        1e-6,
        17e-6,
        123e-6,
        255e-6,
    ]


def test_nearest_rank_percentiles():
    hist = LatencyHistogram()
    for us in range(1, 201):  # exact range: 1..200 microseconds
        hist.record(us / 1e6)
    assert hist.percentile(50) == 100e-6
    assert hist.percentile(99) == 198e-6
    assert hist.percentile(99.5) == 199e-6
    assert hist.percentile(100) == 200e-6
    assert hist.percentile(0) == 1e-6  # rank is at least 1: the smallest sample


@pytest.mark.parametrize(
    "seconds", [0.000256, 0.0002579, 0.000257999, 0.001031, 0.003, 0.0495, 0.1, 1.7, 63.0, 3600.0]
)
def test_a_single_sample_is_reported_within_the_resolution(seconds):
    hist = LatencyHistogram()
    hist.record(seconds)
    assert abs(hist.percentile(50) - seconds) <= RESOLUTION * seconds
    assert hist.max == seconds


def test_percentiles_of_a_wide_spread_are_within_the_resolution():
    samples = [0.0003 * 1.01**k for k in range(900)]  # 0.3 ms .. about 2.3 s
    hist = LatencyHistogram()
    for value in samples:
        hist.record(value)
    for p in (1, 10, 50, 90, 99, 99.9, 100):
        true = samples[max(1, math.ceil(p / 100 * len(samples))) - 1]
        assert abs(hist.percentile(p) - true) <= RESOLUTION * true, p


def test_count_sum_max_mean_are_exact_and_negative_values_count_as_zero():
    hist = LatencyHistogram()
    for value in (0.5, 0.25, -1.0, 0.75):
        hist.record(value)
    assert (hist.count, hist.sum, hist.max, hist.mean) == (4, 1.5, 0.75, 0.375)
    assert hist.percentile(25) == 0.0


def test_record_with_a_count():
    hist = LatencyHistogram()
    hist.record(0.000100, 3)
    hist.record(0.000200)
    assert (hist.count, hist.percentile(75), hist.percentile(100)) == (4, 100e-6, 200e-6)


def test_merge_adds_everything():
    a, b = LatencyHistogram(), LatencyHistogram()
    for us in (10, 20, 30):
        a.record(us / 1e6)
    for us in (40, 50):
        b.record(us / 1e6)
    a.merge(b)
    assert (a.count, a.max, a.percentile(60), a.percentile(100)) == (5, 50e-6, 30e-6, 50e-6)
    assert a.sum == pytest.approx(150e-6)


# -- RecentLatency ---------------------------------------------------------------------------
def test_recent_docstring_quick_fact():
    recent = RecentLatency(seconds=2)
    recent.record(0.0, 0.010)
    recent.record(2.5, 0.020)
    assert recent.summary(2.5)["max"] == 0.02


def test_recent_keeps_the_last_whole_seconds_including_the_current_one():
    recent = RecentLatency(seconds=5)
    for t in range(10):
        recent.record(t + 0.5, float(t))  # a sample of value t at each second
    summary = recent.summary(9.9)
    assert summary["count"] == 5  # seconds 5, 6, 7, 8, 9
    assert summary["max"] == 9.0
    assert summary["p50"] == pytest.approx(7.0, rel=RESOLUTION)
    assert recent.summary(12.0)["count"] == 2  # seconds 8 and 9
    assert recent.summary(100.0)["count"] == 0


def test_recent_summary_keys():
    recent = RecentLatency()
    recent.record(0.0, 0.001)
    assert set(recent.summary(0.0, percents=(50, 99.9))) == {"p50", "p99_9", "max", "count", "mean"}
    with pytest.raises(ValueError):
        RecentLatency(seconds=0)


def test_recent_total_keeps_every_sample_once():
    recent = RecentLatency(seconds=2)
    for t in range(10):
        recent.record(float(t), 0.001 * (t + 1))
    recent.summary(9.0)
    total = recent.total()
    assert (total.count, total.max) == (10, 0.01)
    assert total.sum == pytest.approx(0.055)


# -- TimeWeightedMean ------------------------------------------------------------------------
def test_time_weighted_mean_docstring_quick_fact():
    mean = TimeWeightedMean(start=0.0)
    mean.update(0.0, 2)
    mean.update(1.0, 4)
    assert mean.value(2.0) == 3.0


def test_time_weighted_mean_steps():
    mean = TimeWeightedMean(start=10.0, value=1.0)
    assert mean.value(10.0) == 1.0  # nothing has elapsed: the current value
    mean.update(11.0, 3.0)
    mean.update(13.0, 0.0)
    assert mean.value(14.0) == (1.0 * 1 + 3.0 * 2 + 0.0 * 1) / 4
    assert mean.value() == (1.0 + 6.0) / 3  # up to the last update
    mean.reset(14.0)
    assert mean.value(16.0) == 0.0


def test_time_weighted_mean_ignores_updates_from_the_past():
    mean = TimeWeightedMean(start=0.0)
    mean.update(2.0, 4.0)
    mean.update(1.0, 2.0)  # late: only the value changes, no negative area
    assert mean.value(4.0) == (0.0 * 2 + 2.0 * 2) / 4


def test_no_percentile_passes_the_exact_max():
    """Module 20's run once reported p99 17.8555 ms over a max of 17.8535 ms: the bucket's
    value lay above every sample in it."""
    hist = LatencyHistogram()
    for _ in range(100):
        hist.record(0.0178535)
    assert hist.percentile(99) == hist.percentile(50) == hist.max == 0.0178535
    recent = RecentLatency(seconds=2)
    recent.record(1.0, 0.0178535)
    summary = recent.summary(1.0)
    assert summary["p99"] <= summary["max"] == 0.0178535


def test_round_up_never_lets_a_peak_past_a_limit_read_as_the_limit():
    assert round_up(150.0001) == 150.1
    assert round_up(150.03) == 150.1
    assert round_up(150.0) == 150.0
    assert round_up(149.96) == 150.0
    assert round_up(0.1 + 0.2) == 0.3  # float noise below the last place does not round up
    assert round_up(1.234, places=2) == 1.24
