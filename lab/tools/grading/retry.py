"""Challenge 15, a retry policy: retry when it helps, never past the deadline, and stop
retrying while most attempts fail, so the system recovers after a spike.

The real run draws the requests' deadline; its producer holds every delay the policy
returned against the retry-after and the deadline in force (``lab.core.retry_bounds``), so
a policy that behaves only for the probe fails there too. The probe, in a child process,
plays several made-up situations on clocks that start at drawn times: a calm second then
one shed request (it must be retried, no sooner than its retry-after and before its deadline), and
a storm in which nine attempts in ten fail (the retries it asks for are counted).
"""

from __future__ import annotations

import heapq
import random
from typing import Any, Callable, Dict, List, Optional, Tuple

from lab.tools.grading import measures as m
from lab.tools.grading.core import Check, Evidence
from lab.tools.grading.table import (
    Challenge,
    Plan,
    Scenario,
    code_checks,
    flags,
    probe_value,
    rng_for,
)

NAME = "15_retry_policy"
RATE = 100.0
BUFFER = 100
RETRY_AFTER_MS = 100
REJECT_COST = 0.2
MPS = 50.0
SPIKE_AT = 2.0
SPIKE_FOR = 3.0
SPIKE_FACTOR = 4.0
MAX_ATTEMPTS = 6
TIMEOUT_MS = 1000.0
DEADLINES_MS = (2500.0, 3000.0, 4000.0)  # one is drawn per run
DURATION = 12.0  # the spike ends at 5 s; 7 s to recover
MAX_RECOVERY_S = 5.0
HEALTHY_DEPTH = 0.1  # recovered: the backlog is down to this share of the buffer
MAX_AMPLIFICATION = 1.5
PROBE_SITUATIONS = 3
PROBE_RETRY_AFTERS_S = (0.05, 0.1, 0.2)
PROBE_DEADLINES_S = (1.5, 3.0, 5.0)
STORM_REQUESTS = 200
STORM_SUCCESS = 0.1
STORM_SPACING_S = 0.01


def draw(seed: int) -> Plan:
    rng = rng_for(seed, NAME)
    deadline = rng.choice(DEADLINES_MS)
    situations = [
        {
            "retry_after_s": rng.choice(PROBE_RETRY_AFTERS_S),
            "deadline_s": rng.choice(PROBE_DEADLINES_S),
            "clock_s": round(rng.uniform(20.0, 5000.0), 3),
            "seed": rng.randrange(1 << 30),
        }
        for _ in range(PROBE_SITUATIONS)
    ]
    scenario = Scenario(
        module=15,
        plugin_role="producer",
        plugin_flag="--retry-file",
        plugin_kind="retry",
        consumer_flags=flags(
            mode="shed",
            buffer=BUFFER,
            process_rate=RATE,
            retry_after_ms=RETRY_AFTER_MS,
            reject_cost=REJECT_COST,
        ),
        producer_flags=flags(
            mps=MPS,
            profile="spike",
            spike_at=SPIKE_AT,
            spike_duration=SPIKE_FOR,
            spike_factor=SPIKE_FACTOR,
            max_attempts=MAX_ATTEMPTS,
            timeout_ms=TIMEOUT_MS,
            deadline_ms=deadline,
        ),
        duration_s=DURATION,
    )
    facts: Dict[str, Any] = {"deadline_ms": deadline}
    return Plan(seed, scenario, checks(), {**facts, "situations": situations})


def _recovery(evidence: Evidence) -> Optional[float]:
    start = m.producer_start_epoch(evidence.producer_records)
    return m.recovered_after(
        evidence.consumer_records,
        evidence.producer_records,
        spike_end=start + SPIKE_AT + SPIKE_FOR,
        producer_end=start + DURATION,
        max_depth=HEALTHY_DEPTH * BUFFER,
    )


def _bound(key: str) -> Callable[[Evidence], Optional[float]]:
    """A share kept by the producer's RetryBounds (``retry_bounds`` in its summary)."""

    def measure(evidence: Evidence) -> Optional[float]:
        bounds = evidence.producer.get("retry_bounds") if evidence.producer else None
        if bounds is None:
            raise m.MissingData("the producer's summary has no retry_bounds")
        value = bounds[key]
        return None if value is None else float(value)

    return measure


def _real_run_bounds() -> tuple:
    """The real run's delays against the bounds in force (the producer's RetryBounds)."""
    return (
        Check(
            "real run: shortest delay vs its retry-after",
            _bound("soonest_share"),
            ">=",
            100.0,
            "the shortest delay your policy returned in the real run, as a share of the "
            "retry-after in force (sooner is refused again)",
            unit="%",
            missing="no retry",
        ),
        Check(
            "real run: longest delay vs the deadline",
            _bound("latest_share"),
            "<=",
            100.0,
            "the longest delay your policy returned in the real run, as a share of the "
            "requests' deadline: a longer wait can never land in time",
            unit="%",
            missing="no retry",
        ),
    )


def checks() -> tuple:
    return (
        Check(
            "recovery after the spike",
            _recovery,
            "<=",
            MAX_RECOVERY_S,
            "after the spike the consumer stayed overloaded this long: the retries "
            "kept it busy refusing them",
            unit="s",
            digits=1,
            missing="never",
        ),
        Check(
            "retry amplification (attempts per request)",
            lambda ev: m.summary_value(ev.producer, "retry_amplification", "producer"),
            "<=",
            MAX_AMPLIFICATION,
            "attempts per request in the real run: every extra attempt is load on a "
            "consumer that is already refusing",
            digits=2,
        ),
        *_real_run_bounds(),
        Check(
            "isolated shed: delay vs its retry-after (probe)",
            lambda ev: probe_value(ev, "soonest_share"),
            ">=",
            100.0,
            "the shortest delay, over the probe's calm situations, as a share of the "
            "retry_after_s the consumer asked for (sooner is refused again)",
            unit="%",
            missing="gave up",
        ),
        Check(
            "isolated shed: delay vs the time left to its deadline (probe)",
            lambda ev: probe_value(ev, "latest_share"),
            "<=",
            100.0,
            "the longest delay as a share of the time the request had left: a retry "
            "that lands past the deadline is no retry",
            unit="%",
            missing="gave up",
        ),
        Check(
            "retry amplification in a storm (probe)",
            lambda ev: probe_value(ev, "storm_amplification"),
            "<=",
            MAX_AMPLIFICATION,
            f"the worst, over the probe's storms ({STORM_SUCCESS:.0%} of attempts "
            "succeed): attempts per request",
            digits=2,
        ),
        *code_checks("producer"),
    )


# -- the probe --------------------------------------------------------------------------------
def _calm(policy: Any, situation: Dict[str, Any]) -> Optional[Tuple[float, float]]:
    """A calm second of successes, then one shed: (delay, time left to the deadline)."""
    now = float(situation["clock_s"])
    for _ in range(50):
        now += 0.02
        _hook(policy, "on_success", now)
    sent_at, now = now, now + 0.01
    _hook(policy, "on_failure", now)
    delay = policy.delay(1, situation["retry_after_s"], now)
    if delay is None:
        return None
    return float(delay), situation["deadline_s"] - (now - sent_at)


def _storm(policy: Any, situation: Dict[str, Any]) -> float:
    """Attempts per request when nine attempts in ten fail (retries in time order)."""
    rng = random.Random(situation["seed"])
    start = float(situation["clock_s"])
    deadline, retry_after = situation["deadline_s"], situation["retry_after_s"]
    events: List[Tuple[float, int, int, float]] = [
        (start + i * STORM_SPACING_S, i, 0, start + i * STORM_SPACING_S)
        for i in range(STORM_REQUESTS)
    ]
    heapq.heapify(events)
    attempts = 0
    while events:
        now, request, attempt, sent_at = heapq.heappop(events)
        attempts += 1
        if rng.random() < STORM_SUCCESS:
            _hook(policy, "on_success", now)
            continue
        _hook(policy, "on_failure", now)
        if attempt + 1 >= MAX_ATTEMPTS:
            continue
        delay = policy.delay(attempt + 1, retry_after, now)
        if delay is None or now + float(delay) > sent_at + deadline:
            continue
        heapq.heappush(events, (now + max(0.0, float(delay)), request, attempt + 1, sent_at))
    return attempts / STORM_REQUESTS


def _hook(policy: Any, name: str, now: float) -> None:
    hook = getattr(policy, name, None)
    if hook is not None:
        hook(now)


def probe(make: Callable[[Dict[str, Any]], Any], plan: Plan) -> Dict[str, Any]:
    delays = []
    storms = []
    for situation in plan.facts["situations"]:
        answer = _calm(make({"seed": situation["seed"]}), situation)
        delays.append(None if answer is None else (answer, situation["retry_after_s"]))
        storms.append(_storm(make({"seed": situation["seed"]}), situation))
    given = [d for d in delays if d is not None]
    gave_up = len(given) < len(delays)
    return {
        "soonest_share": None
        if gave_up
        else min(100.0 * delay / retry_after for (delay, _), retry_after in given),
        "latest_share": None
        if gave_up
        else max(100.0 * delay / left for (delay, left), _ in given),
        "storm_amplification": max(storms),
    }


RETRY = Challenge(
    name=NAME,
    title="Retry policy",
    goal="retry without a storm, so the system recovers soon after the spike",
    plugin_role="producer",
    plugin_flag="--retry-file",
    plugin_kind="retry",
    draw=draw,
    probe=probe,
)
