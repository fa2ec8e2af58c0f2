"""Challenge 20, throttle on lag: the producer sets its rate from the consumer group's lag
on a real Redis stream, so lag stays bounded, nothing is trimmed, and the rate follows the
group when it slows down midway.

Each run draws the group's speed and when it halves, so a rule that learned one number
(a rate, a moment) does not pass: it has to keep listening to lag.
"""

from __future__ import annotations

from lab.tools.grading import measures as m
from lab.tools.grading.core import Check, Evidence
from lab.tools.grading.table import Challenge, Plan, Scenario, code_checks, flags, rng_for

NAME = "20_lag_throttle"
RATES = (800.0, 1000.0)  # msg/s the consumer group does at full speed
SLOWDOWN_ATS = (7.0, 9.0)  # seconds after the consumer starts: the group halves its speed
SLOWDOWN_FACTOR = 2.0
CEILING = 4000.0  # the producer's --mps: the most the rule may ask for
BACKLOG_S = 3.0  # MAXLEN ~ holds this many seconds of the group's full speed
TARGET_LAG_S = 2.0  # the graded bound on lag in seconds, told to the solver's class
SETTLE_S = 4.0  # the producer's first seconds (its ramp) are not judged
DURATION = 16.0
MIN_THROUGHPUT = 0.90
FOLLOW_S = 3.0  # the last seconds of the run: the rate must have followed the slowdown
MAX_FOLLOW = 1.2  # ... to at most this share of the slowed group's speed


def _settled(evidence: Evidence) -> float:
    return m.producer_start_epoch(evidence.producer_records) + SETTLE_S


def _follow(rate: float):
    def measure(evidence: Evidence) -> float:
        end = m.producer_start_epoch(evidence.producer_records) + DURATION
        added = m.count_between(evidence.producer_records, end - FOLLOW_S, end, "totals", "added")
        return 100.0 * added / FOLLOW_S / (rate / SLOWDOWN_FACTOR)

    return measure


def draw(seed: int) -> Plan:
    rng = rng_for(seed, NAME)
    rate, slowdown_at = rng.choice(RATES), rng.choice(SLOWDOWN_ATS)
    maxlen = int(rate * BACKLOG_S)
    scenario = Scenario(
        module=20,
        plugin_role="producer",
        plugin_flag="--throttle-file",
        plugin_kind="throttle",
        consumer_flags=flags(
            process_rate=rate,
            maxlen=maxlen,
            slowdown_at=slowdown_at,
            slowdown_factor=SLOWDOWN_FACTOR,
        ),
        producer_flags=flags(mps=CEILING, maxlen=maxlen, target_lag_ms=TARGET_LAG_S * 1000.0),
        duration_s=DURATION,
    )
    checks = (
        Check(
            "worst lag after the first 4 s",
            lambda ev: m.peak_since(ev.consumer_records, _settled(ev), "broker", "lag_s"),
            "<=",
            TARGET_LAG_S,
            "lag in seconds shows a cut late: cut hard while the backlog grows, and aim "
            "well under the target",
            unit="s",
            digits=2,
        ),
        Check(
            "throughput vs the group's speed, after 4 s",
            lambda ev: 100.0 * m.throughput_ratio(m.since(ev.consumer_records, _settled(ev))),
            ">=",
            100.0 * MIN_THROUGHPUT,
            "the consumer sits idle: grow the rate while the lag is under the target",
            unit="%",
            digits=1,
        ),
        Check(
            "trimmed by MAXLEN (never read)",
            lambda ev: m.summary_value(ev.consumer, "trimmed", "consumer"),
            "==",
            0,
            f"the backlog passed MAXLEN ~{maxlen}: the rule must slow down when lag grows",
        ),
        Check(
            "rate at the end vs the slowed group's speed",
            _follow(rate),
            "<=",
            100.0 * MAX_FOLLOW,
            "the group halved its speed midway: a rule that learned the rate once and "
            "stopped listening to lag does not follow",
            unit="%",
        ),
        *code_checks("producer"),
    )
    facts = {"group_rate_mps": rate, "slowdown_at_s": slowdown_at, "maxlen": maxlen}
    return Plan(seed, scenario, checks, facts)


LAG_THROTTLE = Challenge(
    name=NAME,
    title="Throttle on lag",
    goal="set the producer's rate from the broker's lag: lag bounded, nothing trimmed",
    plugin_role="producer",
    plugin_flag="--throttle-file",
    plugin_kind="throttle",
    draw=draw,
)
