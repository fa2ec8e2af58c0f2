"""The accounting identities, checked on random simulated runs (and the metrics' invariants).

Every run goes through ``lab.tools.sim.simulate``; its time-stepping function is wrapped so the
identities are checked at every intermediate step too, not only at the end.
"""

from __future__ import annotations

import math
from typing import List
from unittest import mock

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lab.core.accounting import (
    CONSUMER_FIELDS,
    PRODUCER_FIELDS,
    ConsumerCounts,
    ProducerCounts,
    sum_consumer_counts,
)
from lab.core.config import ConsumerConfig, ProducerConfig
from lab.core.disciplines import DISCIPLINE_NAMES
from lab.core.metrics import LatencyHistogram, RateWindow
from lab.core.modes import MODES
from lab.core.pacing import PROFILES
from lab.core.producer_core import RETRY_POLICIES
from lab.tools import sim

SIM_SETTINGS = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,
)
VERDICT_FIELDS = ("accepted", "dropped", "sampled_out", "shed")


# -- the identities themselves ---------------------------------------------------------------
def test_consumer_identities():
    counts = ConsumerCounts()
    assert counts.as_dict() == dict.fromkeys(CONSUMER_FIELDS, 0)
    assert counts.identity_errors() == []
    counts.received, counts.accepted, counts.dropped, counts.processed, counts.depth = 5, 3, 2, 1, 2
    assert counts.identity_errors() == ["processed 1 != goodput 0 + wasted 0"]
    counts.wasted = 1  # processed after its deadline: the third identity closes
    assert counts.identity_errors() == []
    counts.received = 6
    counts.depth = 1
    errors = counts.identity_errors()
    assert len(errors) == 2
    assert "received 6" in errors[0]
    assert "accepted 3 != processed 1 + depth 1" in errors[1]


def test_producer_identity():
    counts = ProducerCounts()
    assert counts.as_dict() == dict.fromkeys(PRODUCER_FIELDS, 0)
    counts.produced, counts.accepted, counts.shed, counts.in_flight = 10, 6, 1, 3
    assert counts.identity_errors() == []
    counts.in_flight = 2
    (error,) = counts.identity_errors()
    assert "produced 10" in error and "in_flight 2" in error


def test_sum_of_consumer_counts():
    a, b = ConsumerCounts(), ConsumerCounts()
    a.received, a.accepted, a.depth = 3, 3, 3
    b.received, b.dropped, b.over_credit = 2, 2, 2
    total = sum_consumer_counts([a, b])
    assert (total.received, total.accepted, total.dropped, total.depth, total.over_credit) == (
        5,
        3,
        2,
        3,
        2,
    )
    assert total.identity_errors() == []


# -- random simulated runs -------------------------------------------------------------------
@st.composite
def producer_configs(draw, unpaced_allowed: bool):
    unpaced = unpaced_allowed and draw(st.integers(0, 9)) == 0
    return ProducerConfig(
        messages_per_s=math.inf if unpaced else draw(st.floats(1.0, 120.0)),
        profile=draw(st.sampled_from(PROFILES)),
        spike_at=draw(st.floats(0.0, 2.0)),
        spike_duration=draw(st.floats(0.1, 1.0)),
        spike_factor=draw(st.sampled_from([2.0, 10.0])),
        priority_mix=draw(st.sampled_from([(1.0,), (1.0, 1.0, 1.0), (0.2, 0.3, 0.5)])),
        retry=draw(st.sampled_from(RETRY_POLICIES)),
        max_attempts=draw(st.integers(1, 4)),
        backoff_base_s=draw(st.sampled_from([0.0, 0.01, 0.05])),
        backoff_cap_s=0.5,
        max_pending=draw(st.sampled_from([None, None, 1, 5, 40])),
        batch_max=draw(st.sampled_from([20, 1000])) if not unpaced else 20,
        deadline_s=draw(st.sampled_from([None, None, 0.05, 0.3, 1.0])),  # Module 19
        seed=draw(st.integers(0, 1000)),
    )


@st.composite
def scenarios(draw):
    latency = draw(st.sampled_from([0.0, 0.0, 0.0, 0.004, 0.03]))
    n = draw(st.integers(1, 3))
    producers = [draw(producer_configs(unpaced_allowed=latency == 0.0)) for _ in range(n)]
    duration = draw(st.floats(0.2, 3.0))
    consumer = ConsumerConfig(
        mode=draw(st.sampled_from(sorted(MODES))),
        capacity=draw(st.integers(1, 30)),
        process_rate=draw(st.sampled_from([1.0, 5.0, 20.0, 80.0, 500.0, math.inf])),
        service_dist=draw(st.sampled_from(["fixed", "exponential"])),
        sample_every=draw(st.integers(1, 5)),
        sample_watermark=draw(st.sampled_from([0.0, 0.5, 0.9, 1.0])),
        retry_after_ms=draw(st.sampled_from([0, 20, 200])),
        discipline=draw(st.sampled_from(["fifo", "priority"])),
        seed=draw(st.integers(0, 1000)),
    )
    if consumer.discipline == "fifo":  # a queue discipline works on the single FIFO queue
        consumer.queue_discipline = draw(st.sampled_from(DISCIPLINE_NAMES))
    stop_times = [draw(st.floats(0.0, duration)) for _ in range(n)]
    return consumer, producers, duration, stop_times, latency


def _checked_simulate(consumer_config, producer_configs, **kwargs):
    """simulate(), checking every identity after every step; returns (result, steps)."""
    steps: List[float] = []
    original = sim._next_time

    def checking_next_time(now, consumer, producers, *rest):
        assert consumer.identity_errors() == [], now
        for producer in producers:
            assert producer.counts.identity_errors() == [], (producer.name, now)
            assert min(producer.counts.as_dict().values()) >= 0, (producer.name, now)
        assert min(consumer.totals().as_dict().values()) >= 0, now
        steps.append(now)
        return original(now, consumer, producers, *rest)

    with mock.patch.object(sim, "_next_time", checking_next_time):
        result = sim.simulate(consumer_config, producer_configs, **kwargs)
    return result, steps


@SIM_SETTINGS
@given(scenarios())
def test_identities_hold_at_every_step_of_any_run(scenario):
    consumer_config, producer_configs, duration, stop_times, latency = scenario
    result, steps = _checked_simulate(
        consumer_config,
        producer_configs,
        duration=duration,
        drain=1.0 + 4 * latency,
        latency=latency,
        stop_times=stop_times,
    )
    assert len(steps) > 1
    assert result.consumer["identity_errors"] == []
    assert result.consumer_core.identity_errors() == []
    for producer in result.producer_cores:
        assert producer.counts.identity_errors() == []
    for summary in result.producers:
        assert summary["identity_errors"] == []
    if consumer_config.mode == "block":
        # Backpressure loses nothing: no producer ever sends beyond its credit.
        assert result.consumer["over_credit"] == 0
        assert result.consumer["dropped"] == result.consumer["dequeue_dropped"]
        assert result.consumer["sampled_out"] == result.consumer["shed"] == 0
    if consumer_config.mode == "unbounded":
        assert result.consumer["received"] == result.consumer["accepted"]
    if consumer_config.discipline == "fifo" and "lifo" not in consumer_config.queue_discipline:
        assert result.consumer["out_of_order"] == 0
    assert result.consumer["processed"] == result.consumer["goodput"] + result.consumer["wasted"]
    if consumer_config.queue_discipline == "fifo":
        assert result.consumer["dequeue_dropped"] == 0


@SIM_SETTINGS
@given(scenarios())
def test_both_ends_agree_after_a_drain_without_network_latency(scenario):
    consumer_config, producer_configs, duration, stop_times, _ = scenario
    result, _ = _checked_simulate(
        consumer_config, producer_configs, duration=duration, drain=0.5, stop_times=stop_times
    )
    per_producer = result.consumer["producers"]
    assert sorted(per_producer) == [f"sim-{i}" for i in range(len(producer_configs))]
    received = 0
    for index, mine in enumerate(result.producers):
        theirs = per_producer[f"sim-{index}"]
        for field in VERDICT_FIELDS:
            assert mine[field] == theirs[field], (index, field)
        assert mine["in_flight"] == 0
        assert mine["produced"] == theirs["received"]
        assert mine["resent"] == 0
        # an EVICTED verdict tells the producer of both: drop-oldest's and the discipline's
        assert mine["evicted"] == theirs["evicted"] + theirs["dequeue_dropped"]
        if consumer_config.mode == "block":
            assert mine["processed"] == theirs["processed"]
        received += mine["produced"]
    assert result.consumer["received"] == received


@settings(max_examples=25, deadline=None, derandomize=True)
@given(
    st.sampled_from(sorted(MODES)),
    st.integers(1, 20),
    st.floats(5.0, 60.0),
)
def test_mode_switches_mid_run_keep_the_identities(first_mode, capacity, rate):
    """A live ``set_mode`` in the middle of a run: the counters carry on and still close."""
    second_mode = sorted(MODES)[(sorted(MODES).index(first_mode) + 1) % len(MODES)]
    original = sim._next_time
    switched = []

    def switching_next_time(now, consumer, producers, *rest):
        if now >= 1.0 and not switched:
            consumer.set_mode(second_mode, now)
            switched.append(now)
        assert consumer.identity_errors() == []
        for producer in producers:
            assert producer.counts.identity_errors() == []
        return original(now, consumer, producers, *rest)

    with mock.patch.object(sim, "_next_time", switching_next_time):
        result = sim.simulate(
            ConsumerConfig(mode=first_mode, capacity=capacity, process_rate=10.0),
            [
                ProducerConfig(messages_per_s=rate),
                ProducerConfig(messages_per_s=rate / 2, retry="backoff"),
            ],
            duration=2.5,
            drain=1.0,
        )
    assert switched
    assert result.consumer["mode"] == second_mode
    assert result.consumer["identity_errors"] == []
    for index, mine in enumerate(result.producers):
        theirs = result.consumer["producers"][f"sim-{index}"]
        assert [mine[f] for f in VERDICT_FIELDS] == [theirs[f] for f in VERDICT_FIELDS]
        assert mine["in_flight"] == 0
        assert mine["duplicates"] == 0


# -- metrics invariants ----------------------------------------------------------------------
latencies = st.lists(
    st.one_of(st.floats(0.0, 0.0003), st.floats(0.0, 120.0), st.sampled_from([0.0, 0.25, 1.0])),
    min_size=1,
    max_size=300,
)
percents = st.lists(st.floats(0.0, 100.0), min_size=2, max_size=10)


def _nearest_rank(samples: List[float], percent: float) -> float:
    ordered = sorted(samples)
    return ordered[max(1, math.ceil(percent / 100.0 * len(ordered))) - 1]


@settings(max_examples=200, deadline=None, derandomize=True)
@given(latencies, percents)
def test_histogram_percentiles_are_monotone_and_within_the_resolution(samples, ps):
    hist = LatencyHistogram()
    for value in samples:
        hist.record(value)
    assert hist.count == len(samples)
    assert hist.max == max(samples)
    assert math.isclose(hist.mean, sum(samples) / len(samples), rel_tol=1e-9, abs_tol=1e-12)
    values = [hist.percentile(p) for p in sorted(ps)]
    assert values == sorted(values)
    assert hist.percentile(100) >= hist.percentile(0)
    for p in ps:
        true = _nearest_rank(samples, p)
        reported = hist.percentile(p)
        if true * 1e6 < 256:
            assert abs(reported - true) <= 0.5e-6 + 1e-12  # kept exactly, to the microsecond
        else:
            assert abs(reported - true) <= 0.004 * true


@settings(max_examples=100, deadline=None, derandomize=True)
@given(latencies, latencies)
def test_histogram_merge_equals_recording_everything(a, b):
    one, two, both = LatencyHistogram(), LatencyHistogram(), LatencyHistogram()
    for value in a:
        one.record(value)
        both.record(value)
    for value in b:
        two.record(value)
        both.record(value)
    one.merge(two)
    assert (one.count, one.max) == (both.count, both.max)
    assert [one.percentile(p) for p in (0, 25, 50, 90, 99, 100)] == [
        both.percentile(p) for p in (0, 25, 50, 90, 99, 100)
    ]


@settings(max_examples=150, deadline=None, derandomize=True)
@given(
    st.lists(st.tuples(st.floats(0.0, 0.5), st.integers(1, 5)), min_size=0, max_size=80),
    st.sampled_from([0.25, 1.0, 2.0]),
    st.lists(st.floats(0.0, 3.0), min_size=1, max_size=10),
)
def test_rate_window_counts_exactly(gaps, window, query_offsets):
    rate = RateWindow(window=window, resolution=0.0)  # no merging: every stamp is exact
    events, now = [], 0.0
    for gap, count in gaps:
        now += gap
        rate.add(now, count)
        events.append((now, count))
    assert rate.total == sum(c for _, c in events)
    for query in sorted(now + offset for offset in query_offsets):
        expected = sum(c for t, c in events if query - window < t <= query)
        assert rate.count(query) == expected
        assert rate.rate(query) == expected / window
