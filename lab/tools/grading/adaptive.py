"""Challenge 12, adaptive backpressure: the queue limit follows the measured speed, the
latency target and the memory use (the seed lesson's four clauses, each graded).

The real run: the producer sends steadily above the worker's speed, so the queue sits at
the policy's limit and the snapshots' ``limit`` is what the policy asked for. The worker
runs at a drawn speed, slows down four times, recovers; then the plugin guard grows the
consumer's real memory past 3/4 of ``--max-memory-mb`` for a while. The probe, in a child
process, asks fresh policies about every speed and target of the draw, on a clock that
starts at a drawn time.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Callable, Dict, List

from lab.core.buffer import Buffer
from lab.core.config import ConsumerConfig
from lab.core.policies import MEASURED_RATE_WINDOW_S, LoadSignals
from lab.tools.grading import measures as m
from lab.tools.grading.core import Check, Evidence, MissingData
from lab.tools.grading.table import (
    Challenge,
    Plan,
    Scenario,
    code_checks,
    flags,
    probe_value,
    rng_for,
)

NAME = "12_adaptive_backpressure"
SPEEDS = (100.0, 160.0)  # msg/s the worker does at full speed: one is drawn per run
TARGETS_MS = (250.0, 500.0)  # the latency target (queue wait): one is drawn per run
GUARDS_MB = (256.0, 384.0)  # --max-memory-mb
MEMORY_SHARE = 0.75  # memory pressure: RSS above this share of the guard
PRESSURE_LEVEL = 0.875  # the guard grows RSS to this share: pressure, not the guard's stop
BUFFER = 400  # the hard bound; the limit decides how much of it is used
OVERLOAD = 1.3  # arrivals ÷ full speed
SLOWDOWN_AT = 3.5  # consumer uptime
SLOWDOWN_FOR = 2.0
SLOWDOWN_FACTOR = 4.0
PRESSURE_AT = 8.5  # consumer uptime
PRESSURE_FOR = 2.5  # once the memory has grown (which takes a moment on a busy machine)
DURATION = 11.5  # the producer starts about a second after the consumer
MIN_THROUGHPUT = 0.90
# Late accepts are forgiven while the measured speed cannot know yet: its window, plus one
# observe() interval.
REACTION_S = MEASURED_RATE_WINDOW_S + 0.1
SETTLE_S = 1.5  # after the speed comes back, the queue needs time to refill
MIN_FAST_SHARE = 25.0  # % of speed x target the limit must reach when fast
MAX_SLOW_SHARE = 50.0  # % of the fast limit, at 1/4 speed
MIN_TARGET_GROWTH = 150.0  # % : the limit at twice the target vs at the target
MIN_REGROWTH = 75.0  # % of the limit before the slowdown, once the speed is back
MAX_PRESSED_SHARE = 50.0  # % of the calm limit under memory pressure
PROBE_STEPS = {"fast": 60, "slow": 30, "back": 40, "pressed": 30}


def offered(speed: float, target_s: float, guard_mb: float) -> Dict[str, Any]:
    """The constructor arguments the consumer offers a policy in this scenario."""
    return asdict(
        ConsumerConfig(
            module=12,
            mode="drop",
            capacity=BUFFER,
            process_rate=speed,
            wait_target_s=target_s,
            max_memory_mb=guard_mb,
        )
    )


def draw(seed: int) -> Plan:
    rng = rng_for(seed, NAME)
    speed, target_ms, guard = rng.choice(SPEEDS), rng.choice(TARGETS_MS), rng.choice(GUARDS_MB)
    facts = {
        "speed_per_s": speed,
        "target_ms": target_ms,
        "max_memory_mb": guard,
        "probe_clock_s": round(rng.uniform(50.0, 5000.0), 3),
        "probe_seed": rng.randrange(1 << 30),
    }
    scenario = Scenario(
        module=12,
        plugin_role="consumer",
        plugin_flag="--policy-file",
        plugin_kind="policy",
        consumer_flags=flags(
            buffer=BUFFER,
            process_rate=speed,
            wait_target_ms=target_ms,
            max_memory_mb=guard,
            slowdown_at=SLOWDOWN_AT,
            slowdown_factor=SLOWDOWN_FACTOR,
            slowdown_for=SLOWDOWN_FOR,
        ),
        producer_flags=flags(mps=speed * OVERLOAD, profile="steady"),
        duration_s=DURATION,
        memory_pressure=(PRESSURE_AT, PRESSURE_LEVEL * guard, PRESSURE_FOR),
    )
    return Plan(seed, scenario, checks(speed, target_ms, guard), facts)


# -- the real run -----------------------------------------------------------------------------
def _late(evidence: Evidence) -> float:
    seen = m.slowdown_seen_at(evidence.consumer_records)
    return m.late_accepted_after(evidence.consumer, seen + REACTION_S)


def _regrown(speed: float, target_ms: float) -> Callable[[Evidence], float]:
    def measure(evidence: Evidence) -> float:
        start = SLOWDOWN_AT + SLOWDOWN_FOR + SETTLE_S
        limit = m.median_between(evidence.consumer_records, start, PRESSURE_AT, "limit")
        return 100.0 * limit / (speed * target_ms / 1000.0)

    return measure


def _pressed(guard: float) -> Callable[[Evidence], float]:
    def measure(evidence: Evidence) -> float:
        records = evidence.consumer_records
        start = SLOWDOWN_AT + SLOWDOWN_FOR + SETTLE_S
        calm = m.median_between(records, start, PRESSURE_AT, "limit")
        pressed = [r for r in records if float(r.get("rss_mb") or 0.0) > MEMORY_SHARE * guard]
        if not pressed:
            raise MissingData("the memory pressure never showed in the consumer's RSS")
        first, last = float(pressed[0]["uptime_s"]), float(pressed[-1]["uptime_s"])
        limit = m.median_between(pressed, first + REACTION_S, last, "limit")
        if calm <= 0:
            raise MissingData("the limit before the pressure was 0")
        return 100.0 * limit / calm

    return measure


def checks(speed: float, target_ms: float, guard: float) -> tuple:
    budget = MEMORY_SHARE * guard
    return (
        Check(
            "queue-wait p99",
            lambda ev: m.summary_value(ev.consumer, "queue_wait_p99_ms", "consumer"),
            "<=",
            target_ms,
            "the p99 of the queue wait, over the whole run, passed wait_target_s: by "
            "Little's law a queue of L in front of a worker doing R msg/s waits L / R",
            unit="ms",
        ),
        Check(
            "throughput vs what the worker could do",
            lambda ev: 100.0 * m.throughput_ratio(ev.consumer_records, ev.producer_records),
            ">=",
            100.0 * MIN_THROUGHPUT,
            "the worker sat idle for lack of queued work: the limit was too small for "
            "the speed somewhere in the run",
            unit="%",
            digits=1,
        ),
        Check(
            "accepted after the slowdown showed, then late",
            _late,
            "==",
            0,
            f"messages accepted {REACTION_S:g} s or more after the slowdown began (time for "
            "measured_rate_per_s to show it) still waited past the target",
        ),
        Check(
            "limit after the speed came back vs speed x target",
            _regrown(speed, target_ms),
            ">=",
            MIN_FAST_SHARE,
            "with the worker fast again the queue stayed short: the limit should grow "
            "back with the measured speed",
            unit="%",
        ),
        Check(
            "limit under real memory pressure vs before it",
            _pressed(guard),
            "<=",
            MAX_PRESSED_SHARE,
            f"the consumer's rss_mb passed {budget:g} MB ({MEMORY_SHARE:g} x max_memory_mb) "
            "and the limit did not come down to half",
            unit="%",
        ),
        *probe_checks(),
        *code_checks("consumer"),
    )


# -- the probe --------------------------------------------------------------------------------
def probe_checks() -> tuple:
    return (
        Check(
            "limit when fast vs speed x target (probe)",
            lambda ev: probe_value(ev, "fast_share"),
            ">=",
            MIN_FAST_SHARE,
            "the worst case over the probe's speeds and targets: a fast worker was "
            "given a queue far shorter than the target allows",
            unit="%",
        ),
        Check(
            "limit at 1/4 speed, first observe(), vs full speed (probe)",
            lambda ev: probe_value(ev, "slow_share"),
            "<=",
            MAX_SLOW_SHARE,
            "the first observe() that reported a 4x slower worker left the limit above "
            "half of its fast value",
            unit="%",
        ),
        Check(
            "limit at twice the target vs the target (probe)",
            lambda ev: probe_value(ev, "target_growth"),
            ">=",
            MIN_TARGET_GROWTH,
            "doubling wait_target_s hardly changed the limit: it should follow the target",
            unit="%",
        ),
        Check(
            "limit back at full speed vs before the slowdown (probe)",
            lambda ev: probe_value(ev, "regrowth"),
            ">=",
            MIN_REGROWTH,
            "after the worker recovered the limit stayed low",
            unit="%",
        ),
        Check(
            "limit under memory pressure vs calm (probe)",
            lambda ev: probe_value(ev, "pressed_share"),
            "<=",
            MAX_PRESSED_SHARE,
            f"rss_mb above {MEMORY_SHARE:g} x max_memory_mb left the limit above half",
            unit="%",
        ),
    )


def _phase(policy: Any, clock: List[float], speed: float, rss_mb: float, steps: int) -> List:
    """``steps`` observe() calls, 0.1 s apart, as if the queue sat at the policy's limit;
    the limit answered after each."""
    buffer = Buffer(BUFFER)
    limits = []
    limit = float(policy.admission_limit(buffer))
    for _ in range(steps):
        depth = max(0, min(int(limit), BUFFER))
        wait = depth / speed
        signals = LoadSignals(
            arrival_per_s=speed * OVERLOAD,
            processed_per_s=speed,
            service_rate_per_s=speed,
            depth=depth,
            capacity=BUFFER,
            oldest_age_s=wait,
            queue_wait_p99_s=wait,
            rss_mb=rss_mb,
            measured_rate_per_s=speed,
        )
        clock[0] += 0.1
        policy.observe(signals, clock[0])
        limit = float(policy.admission_limit(buffer))
        limits.append(limit)
    return limits


def probe(make: Callable[[Dict[str, Any]], Any], plan: Plan) -> Dict[str, Any]:
    """Every speed and target, whatever the real run drew: fast, 1/4 speed, fast again,
    then memory pressure; the worst ratio of each kind."""
    guard = float(plan.facts["max_memory_mb"])
    clock = [float(plan.facts["probe_clock_s"])]
    calm_mb = 0.2 * guard
    rows: Dict[tuple, Dict[str, float]] = {}
    for speed in SPEEDS:
        for target_ms in TARGETS_MS:
            policy = make(offered(speed, target_ms / 1000.0, guard))
            fast = _phase(policy, clock, speed, calm_mb, PROBE_STEPS["fast"])[-1]
            slow = _phase(policy, clock, speed / SLOWDOWN_FACTOR, calm_mb, PROBE_STEPS["slow"])
            back = _phase(policy, clock, speed, calm_mb, PROBE_STEPS["back"])[-1]
            pressed = _phase(policy, clock, speed, 0.95 * guard, PROBE_STEPS["pressed"])[-1]
            rows[(speed, target_ms)] = {
                "fast": fast,
                "slow_first": slow[0],
                "back": back,
                "pressed": pressed,
            }
    low, high = TARGETS_MS
    return {
        "fast_share": min(
            share(row["fast"], speed * target / 1000.0) for (speed, target), row in rows.items()
        ),
        "slow_share": max(share(row["slow_first"], row["fast"]) for row in rows.values()),
        "target_growth": min(
            share(rows[(speed, high)]["fast"], rows[(speed, low)]["fast"]) for speed in SPEEDS
        ),
        "regrowth": min(share(row["back"], row["fast"]) for row in rows.values()),
        "pressed_share": max(share(row["pressed"], row["back"]) for row in rows.values()),
    }


def share(part: float, whole: float) -> float:
    """``part`` as a per cent of ``whole``; a limit of 0 counts as unchanged (100 %).

    >>> share(5, 20), share(0, 0), share(3, 0)
    (25.0, 100.0, 100.0)
    """
    return 100.0 * part / whole if whole > 0 else 100.0


ADAPTIVE = Challenge(
    name=NAME,
    title="Adaptive backpressure",
    goal="size the queue limit from the measured speed, memory and a latency target",
    plugin_role="consumer",
    plugin_flag="--policy-file",
    plugin_kind="policy",
    draw=draw,
    probe=probe,
)
