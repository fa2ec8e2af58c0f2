"""Challenge 13, priority shedding: through a spike, lose no critical message and keep its
wait short; in calm periods, refuse nothing.

Each run draws when the spike comes and how big it is, so a policy cannot key on a time.
"""

from __future__ import annotations

from lab.tools.grading import measures as m
from lab.tools.grading.core import Check, Evidence
from lab.tools.grading.table import Challenge, Plan, Scenario, code_checks, flags, rng_for

NAME = "13_priority_shedding"
RATE = 100.0
BUFFER = 100  # a FIFO of 100 makes a checkout wait a whole second
MPS = 60.0  # calm traffic: well within the worker's speed
SPIKE_ATS = (1.5, 2.5)
SPIKE_FACTORS = (6.0, 10.0)
SPIKE_FOR = 3.0
AFTER_S = 1.5  # the run goes on this long after the spike
MIX = "0.1,0.6,0.3"  # critical, normal, optional
TARGET_MS = 250.0  # critical queue wait p99
MIN_BUSY = 0.90  # the worker's share of its speed used during the spike
SETTLE_S = 0.5  # the spike's first half second is not judged for busyness


def _busy(spike_at: float):
    def measure(evidence: Evidence) -> float:
        start = m.producer_start_epoch(evidence.producer_records) + spike_at + SETTLE_S
        end = start - SETTLE_S + SPIKE_FOR
        rate = m.rate_between(evidence.consumer_records, start, end, "totals", "processed")
        return 100.0 * rate / RATE

    return measure


def _refused_calm(spike_at: float):
    def measure(evidence: Evidence) -> float:
        start = m.producer_start_epoch(evidence.producer_records)
        return m.refused_between(evidence.consumer_records, start, start + spike_at)

    return measure


def draw(seed: int) -> Plan:
    rng = rng_for(seed, NAME)
    spike_at, factor = rng.choice(SPIKE_ATS), rng.choice(SPIKE_FACTORS)
    scenario = Scenario(
        module=13,
        plugin_role="consumer",
        plugin_flag="--policy-file",
        plugin_kind="policy",
        consumer_flags=flags(buffer=BUFFER, process_rate=RATE),
        producer_flags=flags(
            mps=MPS,
            profile="spike",
            spike_at=spike_at,
            spike_duration=SPIKE_FOR,
            spike_factor=factor,
            priority_mix=MIX,
            retry="none",
        ),
        duration_s=spike_at + SPIKE_FOR + AFTER_S,
    )
    checks = (
        Check(
            "class 0 dropped + shed",
            lambda ev: m.class_lost(ev.consumer, 0),
            "==",
            0,
            "critical messages were refused: when the buffer is full, ask what else "
            "is waiting that matters less",
        ),
        Check(
            "class 0 queue-wait p99",
            lambda ev: m.class_row(ev.consumer, 0)["wait_p99_ms"],
            "<=",
            TARGET_MS,
            "critical messages waited behind the others: look at which message the "
            "worker serves next (the discipline)",
            unit="ms",
        ),
        Check(
            "worker busy during the spike",
            _busy(spike_at),
            ">=",
            100.0 * MIN_BUSY,
            "the worker had time for work that was refused during the spike",
            unit="%",
            digits=1,
        ),
        Check(
            "refused before the spike, with room to spare",
            _refused_calm(spike_at),
            "==",
            0,
            f"at {MPS:g} msg/s the worker ({RATE:g} msg/s) keeps up, yet messages were "
            "refused: shedding is for when there is no room",
        ),
        *code_checks("consumer"),
    )
    return Plan(seed, scenario, checks, {"spike_at_s": spike_at, "spike_factor": factor})


PRIORITY = Challenge(
    name=NAME,
    title="Priority shedding",
    goal="through a spike, lose no critical message and keep its wait short",
    plugin_role="consumer",
    plugin_flag="--policy-file",
    plugin_kind="policy",
    draw=draw,
)
