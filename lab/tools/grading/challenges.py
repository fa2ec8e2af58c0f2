"""The table of graded challenges: scenario, checks, targets and hints, one row each.

Every number a challenge's README quotes comes from the constants here, so the lesson and
the grader cannot disagree. A scenario says which process loads the solver's file (the
consumer with ``--policy-file``, the producer with ``--retry-file`` or ``--limiter-file``)
and the flags of both processes; the producer runs for ``duration_s`` and the consumer is
stopped once the producer has finished.

Some behaviour cannot be provoked honestly in a short run (memory pressure on a laptop
with gigabytes to spare, a retry after one isolated failure). For those a challenge has a
*probe*: the grader builds the solver's class itself, feeds it made-up signals, and the
checks read its answers. Probes are deterministic and take microseconds.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

from lab.core.buffer import Buffer
from lab.core.config import ConsumerConfig
from lab.core.policies import LoadSignals
from lab.processes import plugins
from lab.tools.grading import measures as m
from lab.tools.grading.core import Check, Evidence, MissingData


@dataclass(frozen=True)
class Scenario:
    """How the processes of a challenge are run."""

    module: int
    plugin_role: str  # "consumer" or "producer": who loads the solver's file
    plugin_flag: str  # "--policy-file", "--retry-file" or "--limiter-file"
    plugin_kind: str  # a key of lab.processes.plugins.KINDS
    consumer_flags: Tuple[str, ...]
    producer_flags: Tuple[str, ...]
    duration_s: float  # the producer's --duration

    def commands(self, plugin_path: str = "FILE.py") -> List[str]:
        """The two command lines, as a person would type them (for the README and --list)."""
        lines = []
        for role, flags in (("consumer", self.consumer_flags), ("producer", self.producer_flags)):
            parts = ["bplab", role, "--module", str(self.module), *flags]
            if role == "producer":
                parts += ["--duration", f"{self.duration_s:g}"]
            if role == self.plugin_role:
                parts += [self.plugin_flag, plugin_path]
            lines.append(" ".join(parts))
        return lines


@dataclass(frozen=True)
class Challenge:
    name: str  # the folder under exercises/, e.g. "12_adaptive_backpressure"
    title: str
    goal: str  # one line for --list
    scenario: Scenario
    checks: Tuple[Check, ...]
    probe: Optional[Callable[[type], Dict[str, Any]]] = None

    @property
    def number(self) -> int:
        return int(self.name.split("_", 1)[0])


def _flags(**values: Any) -> Tuple[str, ...]:
    """Command-line flags from keywords: ``_flags(process_rate=100)`` -> ``--process-rate 100``.

    >>> _flags(buffer=50, spike_factor=2.5, profile="spike")
    ('--buffer', '50', '--spike-factor', '2.5', '--profile', 'spike')
    """
    out: List[str] = []
    for key, value in values.items():
        out += [f"--{key.replace('_', '-')}", value if isinstance(value, str) else f"{value:g}"]
    return tuple(out)


def _probe_value(evidence: Evidence, key: str) -> Optional[float]:
    probe = evidence.probe
    if "error" in probe:
        raise MissingData(f"your class raised {probe['error']}")
    if key not in probe:
        raise MissingData("the probe did not run")
    value = probe[key]
    return None if value is None else float(value)


# -- 12: adaptive backpressure ----------------------------------------------------------------
C12_RATE = 100.0  # msg/s the worker does at full speed
C12_SLOWDOWN_AT = 4.0  # seconds after the consumer starts
C12_SLOWDOWN_FOR = 3.0
C12_SLOWDOWN_FACTOR = 4.0  # 100 -> 25 msg/s
C12_TARGET_MS = 250.0  # the latency target: queue wait
C12_BUFFER = 200  # the hard bound; your limit decides how much of it is used
C12_MEMORY_MB = 512.0  # the consumer's memory guard (--max-memory-mb)
C12_MEMORY_SHARE = 0.75  # memory pressure: RSS above this share of the guard
C12_MPS = 120.0  # steady arrivals, above the worker's speed the whole time
C12_DURATION = 9.0
C12_MIN_THROUGHPUT = 0.90
C12_REACTION_S = 0.1  # one observe() interval after the slowdown was reported


def _c12_offered() -> Dict[str, Any]:
    """The constructor arguments the consumer offers a policy in this scenario."""
    return asdict(
        ConsumerConfig(
            module=12,
            mode="drop",
            capacity=C12_BUFFER,
            process_rate=C12_RATE,
            wait_target_s=C12_TARGET_MS / 1000.0,
            max_memory_mb=C12_MEMORY_MB,
        )
    )


def _c12_limit_under(cls: type, service_rate: float, rss_mb: float, steps: int = 60) -> float:
    """The limit a fresh policy settles on when told, ``steps`` times (six seconds of
    observe calls), that the worker runs at ``service_rate`` with the queue sitting at the
    policy's own limit, and that the process uses ``rss_mb`` of memory."""
    policy = plugins.build(cls, _c12_offered())
    buffer = Buffer(C12_BUFFER)
    limit = float(policy.admission_limit(buffer))
    for step in range(steps):
        depth = max(0, min(int(limit), C12_BUFFER))
        wait = depth / service_rate
        policy.observe(
            LoadSignals(
                arrival_per_s=service_rate * C12_MPS / C12_RATE,
                processed_per_s=service_rate,
                service_rate_per_s=service_rate,
                depth=depth,
                capacity=C12_BUFFER,
                oldest_age_s=wait,
                queue_wait_p99_s=wait,
                rss_mb=rss_mb,
            ),
            step * 0.1,
        )
        limit = float(policy.admission_limit(buffer))
    return limit


def _c12_probe(cls: type) -> Dict[str, Any]:
    calm = 0.1 * C12_MEMORY_MB
    return {
        "fast": _c12_limit_under(cls, C12_RATE, calm),
        "slow": _c12_limit_under(cls, C12_RATE / C12_SLOWDOWN_FACTOR, calm),
        "pressed": _c12_limit_under(cls, C12_RATE, 0.95 * C12_MEMORY_MB),
    }


def _c12_ratio(key: str) -> Callable[[Evidence], Optional[float]]:
    def measure(evidence: Evidence) -> Optional[float]:
        fast = _probe_value(evidence, "fast")
        other = _probe_value(evidence, key)
        if fast is None or other is None or fast <= 0:
            raise MissingData("admission_limit must return a positive number")
        return other / fast

    return measure


def _c12_late(evidence: Evidence) -> float:
    seen = m.slowdown_seen_at(evidence.consumer_records)
    return m.late_accepted_after(evidence.consumer, seen + C12_REACTION_S)


ADAPTIVE = Challenge(
    name="12_adaptive_backpressure",
    title="Adaptive backpressure",
    goal="size the queue limit from the measured speed, memory and a latency target",
    scenario=Scenario(
        module=12,
        plugin_role="consumer",
        plugin_flag="--policy-file",
        plugin_kind="policy",
        consumer_flags=_flags(
            buffer=C12_BUFFER,
            process_rate=C12_RATE,
            wait_target_ms=C12_TARGET_MS,
            max_memory_mb=C12_MEMORY_MB,
            slowdown_at=C12_SLOWDOWN_AT,
            slowdown_factor=C12_SLOWDOWN_FACTOR,
            slowdown_for=C12_SLOWDOWN_FOR,
        ),
        producer_flags=_flags(mps=C12_MPS, profile="steady"),
        duration_s=C12_DURATION,
    ),
    checks=(
        Check(
            "queue-wait p99",
            lambda ev: m.summary_value(ev.consumer, "queue_wait_p99_ms", "consumer"),
            "<=",
            C12_TARGET_MS,
            "a limit that suits the fast worker is 4x too long for the slow one: "
            "size it from service_rate_per_s x the target",
            unit="ms",
        ),
        Check(
            "throughput vs what the worker could do",
            lambda ev: 100.0 * m.throughput_ratio(ev.consumer_records, ev.producer_records),
            ">=",
            100.0 * C12_MIN_THROUGHPUT,
            "the queue is too short to keep the worker busy: keep at least 2 places, "
            "and do not shrink more than the target needs",
            unit="%",
            digits=1,
        ),
        Check(
            "accepted after the slowdown showed, then late",
            _c12_late,
            "==",
            0,
            "shrink the limit in the very observe() that reports the slower "
            "service_rate_per_s (no smoothing on the way down)",
        ),
        Check(
            "limit at 1/4 speed vs full speed (probe)",
            lambda ev: 100.0 * _c12_ratio("slow")(ev),
            "<=",
            50.0,
            "admission_limit must follow the measured speed: 4x slower -> a much shorter queue",
            unit="%",
        ),
        Check(
            "limit under memory pressure vs calm (probe)",
            lambda ev: 100.0 * _c12_ratio("pressed")(ev),
            "<=",
            50.0,
            f"when rss_mb passes {C12_MEMORY_SHARE:g} x max_memory_mb, at least halve the limit",
            unit="%",
        ),
    ),
    probe=_c12_probe,
)


# -- 13: priority shedding --------------------------------------------------------------------
C13_RATE = 100.0
C13_BUFFER = 100  # a FIFO of 100 makes a checkout wait a whole second
C13_MPS = 60.0
C13_SPIKE_AT = 2.0
C13_SPIKE_FOR = 4.0
C13_SPIKE_FACTOR = 10.0  # 600 msg/s, 60 of them critical
C13_MIX = "0.1,0.6,0.3"  # critical, normal, optional
C13_DURATION = 7.0
C13_TARGET_MS = 250.0  # critical queue wait p99
C13_MIN_BUSY = 0.90  # the worker's share of its speed used during the spike
C13_SETTLE_S = 0.5  # the spike's first half second is not judged for busyness


def _c13_busy(evidence: Evidence) -> float:
    start = m.producer_start_epoch(evidence.producer_records) + C13_SPIKE_AT + C13_SETTLE_S
    end = start - C13_SETTLE_S + C13_SPIKE_FOR
    rate = m.rate_between(evidence.consumer_records, start, end, "totals", "processed")
    return 100.0 * rate / C13_RATE


PRIORITY = Challenge(
    name="13_priority_shedding",
    title="Priority shedding",
    goal="through a 10x spike, lose no critical message and keep its wait short",
    scenario=Scenario(
        module=13,
        plugin_role="consumer",
        plugin_flag="--policy-file",
        plugin_kind="policy",
        consumer_flags=_flags(buffer=C13_BUFFER, process_rate=C13_RATE),
        producer_flags=_flags(
            mps=C13_MPS,
            profile="spike",
            spike_at=C13_SPIKE_AT,
            spike_duration=C13_SPIKE_FOR,
            spike_factor=C13_SPIKE_FACTOR,
            priority_mix=C13_MIX,
            retry="none",
        ),
        duration_s=C13_DURATION,
    ),
    checks=(
        Check(
            "class 0 dropped + shed",
            lambda ev: m.class_lost(ev.consumer, 0),
            "==",
            0,
            "when the buffer is full and a critical message arrives, make room: "
            "ACCEPT_EVICTING_OLDEST evicts the least important waiting message",
        ),
        Check(
            "class 0 queue-wait p99",
            lambda ev: m.class_row(ev.consumer, 0)["wait_p99_ms"],
            "<=",
            C13_TARGET_MS,
            'critical waits behind everyone in a FIFO: set discipline = "priority"',
            unit="ms",
        ),
        Check(
            "worker busy during the spike",
            _c13_busy,
            ">=",
            100.0 * C13_MIN_BUSY,
            "you refuse work the worker had time for: shed only what does not fit",
            unit="%",
            digits=1,
        ),
    ),
)


# -- 14: token bucket -------------------------------------------------------------------------
C14_RATE = 100.0  # the consumer's capacity, msg/s
C14_BUFFER = 50
C14_MPS = 30.0
C14_SPIKE_AT = 2.0
C14_SPIKE_FOR = 2.0
C14_SPIKE_FACTOR = 5.0  # 150 msg/s
C14_DURATION = 8.0
C14_TOLERANCE = 0.10  # arrival jitter: a 1-second count may pass capacity by this much
C14_MIN_SENT = 0.98
C14_MAX_LATENCY_MS = 2500.0

TOKEN_BUCKET = Challenge(
    name="14_token_bucket",
    title="Token bucket",
    goal="shape a bursty producer so the consumer's 1-second load never passes its capacity",
    scenario=Scenario(
        module=14,
        plugin_role="producer",
        plugin_flag="--limiter-file",
        plugin_kind="limiter",
        consumer_flags=_flags(mode="drop", buffer=C14_BUFFER, process_rate=C14_RATE),
        producer_flags=_flags(
            mps=C14_MPS,
            profile="spike",
            spike_at=C14_SPIKE_AT,
            spike_duration=C14_SPIKE_FOR,
            spike_factor=C14_SPIKE_FACTOR,
            retry="none",
        ),
        duration_s=C14_DURATION,
    ),
    checks=(
        Check(
            "peak 1-second load at the consumer",
            lambda ev: m.peak(ev.consumer_records, "rates", "received"),
            "<=",
            C14_RATE * (1 + C14_TOLERANCE),
            "in any second a bucket lets through up to burst + rate: keep that sum "
            "at the consumer's 100 msg/s",
            unit="msg/s",
        ),
        Check(
            "dropped by the consumer",
            lambda ev: m.summary_value(ev.consumer, "dropped", "consumer"),
            "==",
            0,
            "more arrived than the consumer could queue: lower the rate or the burst",
        ),
        Check(
            "messages sent by the end",
            lambda ev: 100.0 * m.unique_share_sent(ev.producer),
            ">=",
            100.0 * C14_MIN_SENT,
            "the bucket is too slow to catch up after the spike: raise the rate "
            "towards the consumer's capacity",
            unit="%",
            digits=1,
        ),
        Check(
            "producer latency p99 (due -> verdict)",
            lambda ev: m.summary_value(ev.producer, "latency_p99_ms", "producer"),
            "<=",
            C14_MAX_LATENCY_MS,
            "messages wait too long for tokens: a higher rate (and a smaller burst) "
            "drains the spike sooner",
            unit="ms",
        ),
    ),
)


# -- 15: retry policy -------------------------------------------------------------------------
C15_RATE = 100.0
C15_BUFFER = 100
C15_RETRY_AFTER_MS = 100
C15_REJECT_COST = 0.2
C15_MPS = 50.0
C15_SPIKE_AT = 2.0
C15_SPIKE_FOR = 3.0
C15_SPIKE_FACTOR = 4.0
C15_MAX_ATTEMPTS = 6
C15_TIMEOUT_MS = 1000.0
C15_DEADLINE_MS = 3000.0
C15_DURATION = 12.0  # the spike ends at 5 s; 7 s to recover
C15_MAX_RECOVERY_S = 5.0
C15_HEALTHY_DEPTH = 0.1  # recovered: the backlog is down to this share of the buffer
C15_MAX_AMPLIFICATION = 1.5


def _c15_recovery(evidence: Evidence) -> Optional[float]:
    start = m.producer_start_epoch(evidence.producer_records)
    return m.recovered_after(
        evidence.consumer_records,
        evidence.producer_records,
        spike_end=start + C15_SPIKE_AT + C15_SPIKE_FOR,
        producer_end=start + C15_DURATION,
        max_depth=C15_HEALTHY_DEPTH * C15_BUFFER,
    )


def _c15_probe(cls: type) -> Dict[str, Any]:
    """After a calm second of successes, one request is shed with retry-after 100 ms."""
    policy = plugins.build(cls, {"seed": 0})
    on_success = getattr(policy, "on_success", None)
    on_failure = getattr(policy, "on_failure", None)
    for step in range(50):
        if on_success is not None:
            on_success(step * 0.02)
    if on_failure is not None:
        on_failure(1.0)
    delay = policy.delay(1, C15_RETRY_AFTER_MS / 1000.0, 1.0)
    return {"isolated_delay_ms": None if delay is None else float(delay) * 1000.0}


RETRY = Challenge(
    name="15_retry_policy",
    title="Retry policy",
    goal="retry without a storm, so the system recovers soon after the spike",
    scenario=Scenario(
        module=15,
        plugin_role="producer",
        plugin_flag="--retry-file",
        plugin_kind="retry",
        consumer_flags=_flags(
            mode="shed",
            buffer=C15_BUFFER,
            process_rate=C15_RATE,
            retry_after_ms=C15_RETRY_AFTER_MS,
            reject_cost=C15_REJECT_COST,
        ),
        producer_flags=_flags(
            mps=C15_MPS,
            profile="spike",
            spike_at=C15_SPIKE_AT,
            spike_duration=C15_SPIKE_FOR,
            spike_factor=C15_SPIKE_FACTOR,
            max_attempts=C15_MAX_ATTEMPTS,
            timeout_ms=C15_TIMEOUT_MS,
            deadline_ms=C15_DEADLINE_MS,
        ),
        duration_s=C15_DURATION,
    ),
    checks=(
        Check(
            "recovery after the spike",
            _c15_recovery,
            "<=",
            C15_MAX_RECOVERY_S,
            "retries keep the consumer overloaded after the spike: stop retrying "
            "while most attempts fail (a retry budget or a breaker)",
            unit="s",
            digits=1,
            missing="never",
        ),
        Check(
            "retry amplification (attempts per request)",
            lambda ev: m.summary_value(ev.producer, "retry_amplification", "producer"),
            "<=",
            C15_MAX_AMPLIFICATION,
            "every failure is retried: spend retries from a budget that only successes refill",
            digits=2,
        ),
        Check(
            "an isolated shed is retried after its retry-after (probe)",
            lambda ev: _probe_value(ev, "isolated_delay_ms"),
            ">=",
            float(C15_RETRY_AFTER_MS),
            "when things are calm, retry, and never sooner than retry_after_s "
            "(backoff with jitter on top)",
            unit="ms",
            missing="gave up",
        ),
    ),
    probe=_c15_probe,
)


# -- 20: throttle on lag (a real Redis stream in the middle) ---------------------------------
C20_RATE = 1000.0  # msg/s the consumer group does at full speed
C20_SLOWDOWN_AT = 8.0  # seconds after the consumer starts: the group halves its speed
C20_SLOWDOWN_FACTOR = 2.0
C20_CEILING = 4000.0  # the producer's --mps: the most the rule may ask for
C20_MAXLEN = 3000  # XADD MAXLEN ~: a backlog of 3 s at full speed gets trimmed
C20_TARGET_LAG_S = 2.0  # the graded bound on lag in seconds, told to the solver's class
C20_SETTLE_S = 4.0  # the producer's first seconds (its ramp) are not judged
C20_DURATION = 16.0
C20_MIN_THROUGHPUT = 0.90
C20_FOLLOW_S = 3.0  # the last seconds of the run: the rate must have followed the slowdown
C20_MAX_FOLLOW = 1.2  # ... to at most this share of the slowed group's speed


def _c20_settled(evidence: Evidence) -> float:
    return m.producer_start_epoch(evidence.producer_records) + C20_SETTLE_S


def _c20_follow(evidence: Evidence) -> float:
    end = m.producer_start_epoch(evidence.producer_records) + C20_DURATION
    added = m.count_between(evidence.producer_records, end - C20_FOLLOW_S, end, "totals", "added")
    return 100.0 * added / C20_FOLLOW_S / (C20_RATE / C20_SLOWDOWN_FACTOR)


LAG_THROTTLE = Challenge(
    name="20_lag_throttle",
    title="Throttle on lag",
    goal="set the producer's rate from the broker's lag: lag bounded, nothing trimmed",
    scenario=Scenario(
        module=20,
        plugin_role="producer",
        plugin_flag="--throttle-file",
        plugin_kind="throttle",
        consumer_flags=_flags(
            process_rate=C20_RATE,
            maxlen=C20_MAXLEN,
            slowdown_at=C20_SLOWDOWN_AT,
            slowdown_factor=C20_SLOWDOWN_FACTOR,
        ),
        producer_flags=_flags(
            mps=C20_CEILING, maxlen=C20_MAXLEN, target_lag_ms=C20_TARGET_LAG_S * 1000.0
        ),
        duration_s=C20_DURATION,
    ),
    checks=(
        Check(
            "worst lag after the first 4 s",
            lambda ev: m.peak_since(ev.consumer_records, _c20_settled(ev), "broker", "lag_s"),
            "<=",
            C20_TARGET_LAG_S,
            "lag in seconds shows a cut late: cut hard (halve) while the backlog grows, "
            "and aim well under the target",
            unit="s",
            digits=2,
        ),
        Check(
            "throughput vs the group's speed, after 4 s",
            lambda ev: 100.0 * m.throughput_ratio(m.since(ev.consumer_records, _c20_settled(ev))),
            ">=",
            100.0 * C20_MIN_THROUGHPUT,
            "the consumer sits idle: grow the rate while the lag is under the target",
            unit="%",
            digits=1,
        ),
        Check(
            "trimmed by MAXLEN (never read)",
            lambda ev: m.summary_value(ev.consumer, "trimmed", "consumer"),
            "==",
            0,
            f"the backlog passed MAXLEN ~{C20_MAXLEN}: the rule must slow down when lag grows",
        ),
        Check(
            "rate at the end vs the slowed group's speed",
            _c20_follow,
            "<=",
            100.0 * C20_MAX_FOLLOW,
            "the group halved its speed midway: a rule that learned the rate once and "
            "stopped listening to lag does not follow",
            unit="%",
        ),
    ),
)


CHALLENGES: Dict[str, Challenge] = {
    challenge.name: challenge
    for challenge in (ADAPTIVE, PRIORITY, TOKEN_BUCKET, RETRY, LAG_THROTTLE)
}


def known_names() -> List[str]:
    return sorted(CHALLENGES)


def find_challenge(text: str) -> Optional[Challenge]:
    """A challenge by its full name or its number ("12" or "12_adaptive_backpressure")."""
    text = text.strip().rstrip("/").split("/")[-1]
    if text in CHALLENGES:
        return CHALLENGES[text]
    for challenge in CHALLENGES.values():
        if text.isdigit() and int(text) == challenge.number:
            return challenge
    return None
