"""Challenges 16 and 17 without processes: the drawn plans, the measures on made-up
snapshots, the oracle's table against the pool's own simulation, and the autoscaler kind
of plugin as the pool uses it."""

from __future__ import annotations

import pytest

from lab.core.buffer import Buffer, Message
from lab.core.config import ConsumerConfig, ProducerConfig
from lab.core.pool import ALL_CLASSES, PoolGroup, RuleAutoscaler, WorkerPool
from lab.processes import plugins
from lab.tools.grading import autoscaler, batcher
from lab.tools.grading.core import Evidence, evaluate
from lab.tools.sim import simulate
from tests.conftest import REPO

EXERCISES = REPO / "exercises"
T0 = 1_700_000_000.0  # an epoch, so no measure may assume clocks start at 0


def _producer(produced_by_t):
    return [{"t": T0 + t, "uptime_s": t, "totals": {"produced": n}} for t, n in produced_by_t]


def _check(plan, name):
    (check,) = [c for c in plan.checks if c.name == name]
    return check


@pytest.mark.parametrize("count", range(1, 7))
def test_the_oracle_table_is_what_the_pool_does_in_front_of_the_database(count):
    pool = WorkerPool(
        [PoolGroup("all", ALL_CLASSES, count)],
        autoscaler.PROCESS_RATE,
        db_capacity=autoscaler.DB_CAPACITY,
        db_coherence=autoscaler.DB_COHERENCE,
        start=T0,
    )
    buffer = Buffer(10_000)
    for seq in range(5_000):
        buffer.push(Message(b"p", seq, enqueued_at=T0))
    done = pool.advance(buffer, T0 + 10.0)
    assert len(done) / 10.0 == pytest.approx(autoscaler.POOL_THROUGHPUT[count - 1], abs=0.05)


def test_the_knee_is_the_count_that_does_the_most():
    best = max(autoscaler.POOL_THROUGHPUT)
    assert autoscaler.POOL_THROUGHPUT.index(best) + 1 == autoscaler.KNEE


def test_seventeen_states_the_oracle_of_its_draw_in_the_target():
    plans = [autoscaler.AUTOSCALER.plan(seed) for seed in range(40)]
    assert {p.facts["oracle_worker_s"] for p in plans} == {14.0, 14.5, 17.0, 17.5, 21.0, 21.5}
    for plan in plans:
        row = _check(plan, "worker-seconds vs an oracle that knew the load")
        assert row.target == round(1.3 * plan.facts["oracle_worker_s"], 1)
        assert "--autoscale 1-12" in plan.scenario.commands()[0]


def _pool_records(workers_by_t):
    return [{"t": T0 + t, "uptime_s": t + 0.7, "worker": {"workers": n}} for t, n in workers_by_t]


def test_worker_seconds_add_each_snapshot_s_size_until_the_next():
    plan = autoscaler.AUTOSCALER.plan(18)  # 180 msg/s at 2 s for 3 s: 8 s, oracle 14
    assert plan.scenario.duration_s == 8.0 and plan.facts["oracle_worker_s"] == 14.0
    steps = [(0.1 * i, 1 if i < 20 else 4 if i < 50 else 1) for i in range(81)]
    evidence = Evidence(
        consumer_records=_pool_records(steps), producer_records=_producer([(0.1, 0)])
    )
    result = evaluate(_check(plan, "worker-seconds vs an oracle that knew the load"), evidence)
    # 2 s x 1 + 3 s x 4 + 3 s x 1 = 17 worker-s (the window starts at the producer's start)
    assert result.measured == pytest.approx(17.0)
    assert result.passed and result.note == "the oracle: 14 worker-s"
    knee = evaluate(_check(plan, "most workers at once vs the database's knee"), evidence)
    assert knee.measured == 4 and knee.passed


def test_the_rule_autoscaler_asks_every_interval_and_keeps_to_the_range():
    asked = []

    class Rule:
        def decide(self, workers, lag_s, now):
            asked.append(now)
            return 99.7

    scaler = RuleAutoscaler(Rule(), minimum=2, maximum=6, interval_s=0.25)
    answers = [scaler.decide(3, 1.0, T0 + 0.05 * i) for i in range(11)]
    assert asked == [T0, T0 + 0.25, T0 + 0.5]
    assert answers == [6, 3, 3, 3, 3, 6, 3, 3, 3, 3, 6]
    with pytest.raises(ValueError):
        RuleAutoscaler(Rule(), minimum=3, maximum=2)


def _reference(name: str, kind: str):
    cls = plugins.load_class(str(EXERCISES / "solutions" / f"{name}.py"), kind)
    return cls


def test_the_autoscaler_kind_finds_decide_classes_and_not_policies():
    assert _reference("17_autoscaler", "autoscaler").__name__ == "Scaler"
    starter = plugins.load_class(str(EXERCISES / "17_autoscaler" / "starter.py"), "autoscaler")
    assert starter.__name__ == "Scaler"
    with pytest.raises(plugins.PluginError, match="decide"):
        plugins.load_class(str(EXERCISES / "solutions" / "13_priority_shedding.py"), "autoscaler")


def test_the_reference_scaler_meets_a_step_under_the_knee_in_simulated_time():
    rule = plugins.build(_reference("17_autoscaler", "autoscaler"), {"lag_target_s": 1.5})
    consumer = ConsumerConfig(
        module=17, mode="drop", capacity=20_000, process_rate=100.0, db_capacity=250.0,
        autoscale=(1, 12), lag_target_s=1.5, autoscaler_plugin=rule,
    )  # fmt: skip
    producer = ProducerConfig(
        module=17, messages_per_s=50.0, profile="spike", spike_at=2.0, spike_duration=4.0,
        spike_factor=4.4,
    )  # fmt: skip
    result = simulate(consumer, [producer], duration=9.0, drain=0.0)
    pool = result.consumer_core.worker
    assert max(n for _, _, n in pool.scale_events) == autoscaler.KNEE
    assert pool.workers() <= 2  # back down after the step
    assert result.consumer["dropped"] == 0 and result.consumer["queue_wait_max_ms"] < 1500


# -- 16 ---------------------------------------------------------------------------------------
def _batch_records(rows):
    """(t, received, processed, p99 s) -> consumer snapshots."""
    return [
        {"t": T0 + t, "uptime_s": t + 0.7, "totals": {"received": got, "processed": done},
         "worker": {"latency_p99_s": p99, "batch_limit": 8}}
        for t, got, done, p99 in rows
    ]  # fmt: skip


def test_sixteen_judges_the_burst_and_half_a_second_after_and_the_quiet_steps_apart():
    plan = batcher.BATCHER.plan(4)  # 400 msg/s at 2.5 s for 2 s
    assert plan.facts == {"spike_at_s": 2.5, "spike_for_s": 2.0, "burst_mps": 400.0}
    producer = _producer([(0.0, 0)])
    rows = [(0.0, 0, 0, None), (2.4, 120, 120, 0.012), (2.5, 125, 125, 0.012),
            (4.5, 925, 800, 0.180), (5.0, 950, 940, 0.150), (7.5, 1075, 1075, 0.011)]  # fmt: skip
    evidence = Evidence(consumer_records=_batch_records(rows), producer_records=producer)
    burst = evaluate(_check(plan, "processed vs received, burst + 0.5 s"), evidence)
    assert burst.measured == pytest.approx(100.0 * (940 - 125) / (950 - 125)) and burst.passed
    quiet = evaluate(_check(plan, "message latency p99 in the quiet steps"), evidence)
    assert quiet.measured == pytest.approx(12.0) and quiet.passed
    rows[-1] = (7.5, 1075, 1075, 0.110)
    late = Evidence(consumer_records=_batch_records(rows), producer_records=producer)
    quiet = evaluate(_check(plan, "message latency p99 in the quiet steps"), late)
    assert quiet.measured == pytest.approx(110.0) and not quiet.passed


def test_the_reference_batcher_keeps_up_with_the_burst_in_simulated_time():
    rule = plugins.build(_reference("16_adaptive_batcher", "batcher"), {"batch_max": 200})
    consumer = ConsumerConfig(
        module=16, mode="drop", capacity=500, batch_overhead_ms=8.0, item_ms=2.0,
        batch_wait_ms=100.0, batch_max=200, batcher_plugin=rule,
    )  # fmt: skip
    producer = ProducerConfig(
        module=16, messages_per_s=50.0, profile="spike", spike_at=2.5, spike_duration=2.0,
        spike_factor=8.0,
    )  # fmt: skip
    result = simulate(consumer, [producer], duration=7.5, drain=0.5)
    worker = result.consumer_core.worker
    assert result.consumer["dropped"] == 0
    assert rule.batch_size() == 1  # quiet again: no waiting for a batch to fill
    assert worker.sojourn.summary(7.5)["p99"] < 0.060
