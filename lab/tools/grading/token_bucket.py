"""Challenge 14, a token bucket in the producer: what it lets through never passes the
consumer's capacity, and it never blocks the producer's loop.

The admitted rate is measured where the limiter acts: the producer's own 1-second count of
messages sent (``rates.produced`` in its telemetry), so the network's delivery jitter is no
excuse and there is no tolerance above capacity. Each run draws the consumer's capacity
(60, 100 or 150 msg/s), when the spike comes and how big it is. The limiter is built with
the drawn capacity (``consumer_rate``, the producer's ``--consumer-rate``), so a bucket
sized from it passes every draw and one with constants fits one capacity at most: too big
for a slower consumer, too slow to drain the spike for a faster one.
"""

from __future__ import annotations

from lab.tools.grading import measures as m
from lab.tools.grading.core import Check, Evidence, MissingData
from lab.tools.grading.table import Challenge, Plan, Scenario, code_checks, flags, rng_for

NAME = "14_token_bucket"
CAPACITIES = (60.0, 100.0, 150.0)  # the consumer's capacity, msg/s
BUFFER = 50
BASE_SHARE = 0.3  # the base traffic, as a share of the capacity
SPIKE_ATS = (1.5, 2.5)
SPIKE_FACTORS = (4.0, 5.0)  # the spike: 1.2 or 1.5 times the capacity
SPIKE_FOR = 2.0
AFTER_S = 4.0  # time to drain the outbox after the spike
MIN_SENT = 0.98
MAX_LATENCY_MS = 2500.0


def _latency(evidence: Evidence) -> float:
    sent = m.summary_value(evidence.producer, "produced", "producer")
    if not sent:
        raise MissingData("nothing was sent")
    return m.summary_value(evidence.producer, "latency_p99_ms", "producer")


def draw(seed: int) -> Plan:
    rng = rng_for(seed, NAME)
    spike_at, factor = rng.choice(SPIKE_ATS), rng.choice(SPIKE_FACTORS)
    capacity = rng.choice(CAPACITIES)
    scenario = Scenario(
        module=14,
        plugin_role="producer",
        plugin_flag="--limiter-file",
        plugin_kind="limiter",
        consumer_flags=flags(mode="drop", buffer=BUFFER, process_rate=capacity),
        producer_flags=flags(
            consumer_rate=capacity,
            mps=BASE_SHARE * capacity,
            profile="spike",
            spike_at=spike_at,
            spike_duration=SPIKE_FOR,
            spike_factor=factor,
            retry="none",
        ),
        duration_s=spike_at + SPIKE_FOR + AFTER_S,
    )
    checks = (
        Check(
            "peak 1-second rate let through",
            lambda ev: m.peak(ev.producer_records, "rates", "produced"),
            "<=",
            capacity,
            f"in some second the limiter let more through than the consumer's "
            f"{capacity:g} msg/s (this run's consumer_rate): think about the most a bucket "
            "can release in one second",
            unit="msg/s",
        ),
        Check(
            "dropped by the consumer",
            lambda ev: m.summary_value(ev.consumer, "dropped", "consumer"),
            "==",
            0,
            "more arrived than the consumer could queue",
        ),
        Check(
            "messages sent by the end",
            lambda ev: 100.0 * m.unique_share_sent(ev.producer),
            ">=",
            100.0 * MIN_SENT,
            "messages were still waiting in the outbox at the end: the limiter drains "
            "the spike's backlog too slowly",
            unit="%",
            digits=1,
        ),
        Check(
            "producer latency p99 (due -> verdict)",
            _latency,
            "<=",
            MAX_LATENCY_MS,
            "messages waited this long for the limiter (due to verdict, p99)",
            unit="ms",
        ),
        *code_checks("producer"),
    )
    draws = {"consumer_rate": capacity, "spike_at_s": spike_at, "spike_factor": factor}
    return Plan(seed, scenario, checks, draws)


TOKEN_BUCKET = Challenge(
    name=NAME,
    title="Token bucket",
    goal="shape a bursty producer so what it lets through never passes the consumer's capacity",
    plugin_role="producer",
    plugin_flag="--limiter-file",
    plugin_kind="limiter",
    draw=draw,
)
