"""Challenge 17, an autoscaler: the solver's rule sizes the consumer's pool of workers from
lag, through a load step, in front of a database that gets slower past its knee.

The pool is Module 17's: workers of 100 msg/s, each message one operation on a database of
250 operations a second with a coherence penalty of 0.1, so 4 workers do the most
(249.7 msg/s) and more do less. Each run draws when the step comes, how long it lasts and
how big it is (180 or 220 msg/s on a base of 50). The pass rows hold the lag under its
target, charge the workers the rule kept against an oracle that knew the load in advance,
and refuse any moment past the knee.
"""

from __future__ import annotations

from typing import Sequence, Tuple

from lab.tools.grading import measures as m
from lab.tools.grading.core import Check, Evidence, MissingData, Noted
from lab.tools.grading.table import Challenge, Plan, Scenario, code_checks, flags, rng_for

NAME = "17_autoscaler"
BASE_MPS = 50.0
STEP_ATS = (2.0, 2.5)  # seconds after the producer starts
STEP_FORS = (3.0, 4.0)
STEP_MPS = (180.0, 220.0)  # 3 or 4 workers' worth
TAIL_S = 3.0
PROCESS_RATE = 100.0
DB_CAPACITY = 250.0
DB_COHERENCE = 0.1
# What n workers do in front of that database, msg/s: the pool's exact simulation with a
# full queue for 10 s (lab.core.pool.WorkerPool; tests/unit/test_autoscaler_grader.py
# re-measures it). The knee is the count that does the most.
POOL_THROUGHPUT = (71.4, 142.8, 214.0, 249.7, 227.0, 192.1)
KNEE = 4
MAX_WORKERS = 12  # --autoscale 1-12: the rule may ask for more than the knee
LAG_TARGET_S = 1.5  # the graded bound on lag, told to the rule as lag_target_s
MAX_OVER_ORACLE = 1.3


def oracle_workers(rate: float) -> int:
    """The fewest workers that keep up with ``rate`` msg/s (the knee if none does).

    >>> oracle_workers(50.0), oracle_workers(180.0), oracle_workers(220.0)
    (1, 3, 4)
    """
    for count, throughput in enumerate(POOL_THROUGHPUT[:KNEE], start=1):
        if throughput >= rate:
            return count
    return KNEE


def oracle_seconds(phases: Sequence[Tuple[float, float]]) -> float:
    """Worker-seconds of a pool sized in advance for each (seconds, msg/s) phase.

    >>> oracle_seconds([(2.0, 50.0), (3.0, 180.0), (3.0, 50.0)])
    14.0
    """
    return sum(seconds * oracle_workers(rate) for seconds, rate in phases)


def _worker_seconds(duration: float, oracle: float):
    def measure(evidence: Evidence) -> Noted:
        start = m.producer_start_epoch(evidence.producer_records)
        end = start + duration
        records = [r for r in evidence.consumer_records if m.dig(r, "worker", "workers")]
        inside = [r for r in records if start <= float(r["t"]) <= end]
        if len(inside) < 2:
            raise MissingData("too little telemetry while the producer ran")
        total = 0.0
        for before, after in zip(inside, inside[1:]):
            total += float(before["worker"]["workers"]) * (float(after["t"]) - float(before["t"]))
        # the ends of the window, at the nearest snapshot's count
        total += float(inside[0]["worker"]["workers"]) * (float(inside[0]["t"]) - start)
        total += float(inside[-1]["worker"]["workers"]) * max(0.0, end - float(inside[-1]["t"]))
        return Noted(total, f"the oracle: {oracle:g} worker-s")

    return measure


def _worst_lag(evidence: Evidence) -> float:
    start = m.producer_start_epoch(evidence.producer_records)
    return m.peak_since(evidence.consumer_records, start, "oldest_age_s")


def _checks(duration: float, oracle: float) -> Tuple[Check, ...]:
    return (
        Check(
            "worst lag while the producer ran",
            _worst_lag,
            "<=",
            LAG_TARGET_S,
            "lag in seconds grows a little every second once the pool is behind: add "
            "workers as soon as it starts to grow, not when it reaches the target",
            unit="s",
            digits=2,
        ),
        Check(
            "worker-seconds vs an oracle that knew the load",
            _worker_seconds(duration, oracle),
            "<=",
            round(MAX_OVER_ORACLE * oracle, 1),
            f"the pool kept more workers than the load needed (an oracle used {oracle:g} "
            "worker-s): give workers back when lag stays near zero",
            unit="worker-s",
            digits=1,
        ),
        Check(
            "most workers at once vs the database's knee",
            lambda ev: m.peak(ev.consumer_records, "worker", "workers"),
            "<=",
            KNEE,
            f"past {KNEE} workers the database does less, not more: a message needs "
            f"1/{PROCESS_RATE:g} s of work and 1/{DB_CAPACITY:g} s at the database, so find "
            "the count where the database is full",
        ),
        *code_checks("consumer"),
    )


def draw(seed: int) -> Plan:
    rng = rng_for(seed, NAME)
    step_at, step_for = rng.choice(STEP_ATS), rng.choice(STEP_FORS)
    step_mps = rng.choice(STEP_MPS)
    duration = step_at + step_for + TAIL_S
    oracle = oracle_seconds([(step_at, BASE_MPS), (step_for, step_mps), (TAIL_S, BASE_MPS)])
    scenario = Scenario(
        module=17,
        plugin_role="consumer",
        plugin_flag="--autoscaler-file",
        plugin_kind="autoscaler",
        consumer_flags=flags(
            mode="drop",
            process_rate=PROCESS_RATE,
            workers=1,
            db_capacity=DB_CAPACITY,
            db_coherence=DB_COHERENCE,
            autoscale=f"1-{MAX_WORKERS}",
            lag_target_s=LAG_TARGET_S,
        ),
        producer_flags=flags(
            mps=BASE_MPS,
            profile="spike",
            spike_at=step_at,
            spike_duration=step_for,
            spike_factor=step_mps / BASE_MPS,
            retry="none",
        ),
        duration_s=duration,
    )
    checks = _checks(duration, oracle)
    facts = {
        "step_at_s": step_at,
        "step_for_s": step_for,
        "step_mps": step_mps,
        "oracle_worker_s": oracle,
    }
    return Plan(seed, scenario, checks, facts)


AUTOSCALER = Challenge(
    name=NAME,
    title="Autoscaler",
    goal="size the consumer's pool from lag: keep up with a step, pay for few workers, "
    "stay under the database's knee",
    plugin_role="consumer",
    plugin_flag="--autoscaler-file",
    plugin_kind="autoscaler",
    draw=draw,
)
