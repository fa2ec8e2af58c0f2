"""What a consumer and a producer can be told: the two configs, built and checked in one place.

``ConsumerConfig.for_module(spec, **flags)`` and ``ProducerConfig.for_module(spec, **flags)``
make a config from three layers, first found wins:

1. the flags a person gave (``None`` = not given), named as the CLI names them;
2. the module's row in ``lab.core.modules`` (``spec.consumer`` / ``spec.producer``);
3. the dataclass defaults below: the lab-wide fallbacks, and their only home.

Then ``validate()`` checks the result once. Every problem is a ``ValueError`` whose message
is the one line a person reads (it names the flag), so the CLI only parses and reports.
Which flag and which row key feed which field is a table per config (``CONSUMER_SETTINGS``,
``PRODUCER_SETTINGS``): renaming a field is one row there, not a hunt through the code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Dict, Iterable, Optional, Tuple

from lab.core.batching import check_batching
from lab.core.concurrency import DEFAULT_TIMEOUT_S, LIMIT_ALGORITHMS
from lab.core.disciplines import DISCIPLINE_NAMES
from lab.core.modes import MODES
from lab.core.modules import ModuleSpec
from lab.core.pacing import PROFILES
from lab.core.policies import DEFAULT_RETRY_AFTER_MS
from lab.core.pool import check_pool, parse_range, parse_workloads
from lab.core.ratelimit import LIMITERS

MAX_BUFFER = 1_000_000_000  # credit and windows stay far inside the wire's 64-bit fields
MAX_RETRY_AFTER_MS = 3_600_000  # the wire carries it in 32 bits; an hour is plenty
MAX_PACED_RATE = 1e9  # msg/s a paced schedule can represent (spikes included)
MAX_ATTEMPTS = 255  # the attempt number is one byte on the wire
MAX_PAYLOAD_BYTES = 1_000_000
MAX_BATCH = 10_000
# What --retry accepts. ``lab.core.producer_core.RETRY_POLICIES`` holds the same names (the
# core cannot be imported from here: it imports this module); a unit test keeps them equal.
RETRY_POLICIES = ("none", "immediate", "exponential", "backoff")
SERVICE_DISTS = ("fixed", "exponential")


# -- checks shared by the configs and the process-run options (lab.processes) ------------------
def check_positive(value: Optional[float], flag: str, allow_zero: bool = False) -> None:
    """A finite number > 0 (or >= 0); ``None`` means "not given" and passes."""
    if value is None:
        return
    if value != value or value < 0 or (value == 0 and not allow_zero) or math.isinf(value):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{flag} must be a finite number {bound}, got {value}")


def check_choice(value: Optional[str], allowed: Iterable[str], flag: str) -> Optional[str]:
    allowed = list(allowed)
    if value is not None and value not in allowed:
        raise ValueError(f"{flag} {value!r} is not allowed; choose one of: {', '.join(allowed)}")
    return value


def check_between(value: float, low: float, high: float, flag: str, why: str = "") -> None:
    if not low <= value <= high:
        raise ValueError(f"{flag} must be between {low} and {high}{why}, got {value}")


def check_at_least_one(value: int, flag: str) -> None:
    if value < 1:
        raise ValueError(f"{flag} must be at least 1, got {value}")


# -- parsing the flags that are text -----------------------------------------------------------
def parse_rate_word(text: Optional[str], flag: str) -> Optional[float]:
    """A rate in msg/s, or ``max`` for "as fast as possible" (``math.inf``)."""
    if text is None:
        return None
    if text.strip().lower() in ("max", "inf", "unlimited"):
        return math.inf
    try:
        value = float(text)
    except ValueError:
        raise ValueError(
            f"{flag} takes a number of messages per second or 'max', got {text!r}"
        ) from None
    if math.isinf(value):  # a number too big for a float is not a way to say "max"
        check_positive(value, flag)
    return value


def parse_fractions(text: str, flag: str) -> Tuple[float, ...]:
    try:
        return tuple(float(part) for part in text.split(","))
    except ValueError:
        raise ValueError(f"{flag} takes 3 comma-separated fractions, got {text!r}") from None


def parse_weights(text: str, flag: str) -> Tuple[float, ...]:
    try:
        return tuple(float(part) for part in text.split(","))
    except ValueError:
        raise ValueError(f"{flag} takes comma-separated weights, got {text!r}") from None


def parse_pressure(text: str, flag: str) -> Tuple[float, float, float]:
    """``AT_S:TARGET_MB:FOR_S`` as three numbers (the grader's real memory pressure)."""
    parts = text.split(":")
    try:
        at_s, target_mb, for_s = (float(part) for part in parts)
    except ValueError:
        raise ValueError(
            f"{flag} wants AT_S:TARGET_MB:FOR_S (three numbers), got {text!r}"
        ) from None
    return at_s, target_mb, for_s


def _ms(seconds: Optional[float]) -> Optional[float]:
    """A field kept in seconds, shown in the milliseconds its flag takes."""
    return None if seconds is None else seconds * 1000.0


def _as_text(values: Iterable[float]) -> str:
    return ",".join(f"{v:g}" for v in values)


# -- where each field comes from -----------------------------------------------------------------
@dataclass(frozen=True)
class Setting:
    """One config field's sources: the flag keyword that sets it, its key in the module's row
    (``None``: modules do not set it), the factor from the flag's unit to the field's (the
    ``*_ms`` flags fill ``*_s`` fields; a row key ending in ``_ms`` is in ms too), and the
    parser of a flag given as text."""

    flag: Optional[str]
    key: Optional[str] = None
    scale: float = 1.0
    parse: Optional[Callable[[str, str], Any]] = None

    def flag_name(self) -> str:
        return "--" + str(self.flag).replace("_", "-")


def _settle(settings: Dict[str, Setting], row: Dict[str, Any], flags: Dict[str, Any]):
    """field -> value for every field a flag or the module's row sets (the rest: defaults)."""
    unknown = set(flags) - {s.flag for s in settings.values()}
    if unknown:
        raise TypeError(f"unknown flags: {', '.join(sorted(unknown))}")
    values: Dict[str, Any] = {}
    for name, setting in settings.items():
        value = flags.get(setting.flag) if setting.flag else None
        if value is not None and setting.parse is not None:
            value = setting.parse(value, setting.flag_name())
        if value is None and setting.key is not None:
            value = row.get(setting.key)
        if value is None:
            continue
        values[name] = value * setting.scale if setting.scale != 1.0 else value
    return values


def _same(*names: str) -> Dict[str, Setting]:
    """Fields whose flag and module-row key are the field's own name."""
    return {name: Setting(name, name) for name in names}


# ConsumerConfig field -> where it comes from. The consumer's module rows use field names.
CONSUMER_SETTINGS: Dict[str, Setting] = {
    **_same("mode"),
    "capacity": Setting("buffer", "capacity"),
    "process_rate": Setting("process_rate", "process_rate", parse=parse_rate_word),
    **_same("service_dist", "sample_every", "sample_watermark", "retry_after_ms"),
    **_same("request_n"),
    "discipline": Setting(None, "discipline"),
    "queue_discipline": Setting("discipline", "queue_discipline"),
    "codel_target_s": Setting("codel_target_ms", "codel_target_ms", 0.001),
    "codel_interval_s": Setting("codel_interval_ms", "codel_interval_ms", 0.001),
    "shed_watermarks": Setting("shed_watermarks", "shed_watermarks", parse=parse_fractions),
    **_same("degrade_high", "degrade_low"),
    "degrade_hold_s": Setting("degrade_hold", "degrade_hold_s"),
    **_same("admit_rate", "admit_burst", "reject_cost", "max_memory_mb"),
    "wait_target_s": Setting("wait_target_ms", None, 0.001),
    "seed": Setting("seed"),
    # batching (Module 16); the row and the flags use the field names
    **_same("batch_overhead_ms", "item_ms", "batch_size", "batch_wait_ms", "batch"),
    **_same("batch_target_ms", "batch_min", "batch_max"),
    # a pool of workers (Module 17)
    "pool": Setting(None, "pool"),
    **_same("workers", "db_capacity", "db_coherence", "lag_target_s", "scale_cooldown_s"),
    "autoscale": Setting("autoscale", "autoscale", parse=lambda text, _flag: parse_range(text)),
    **_same("bulkhead"),
    "memory_pressure": Setting("memory_pressure", None, parse=parse_pressure),
}

# ProducerConfig field -> where it comes from. The producer's module rows use the flags'
# names and units, except the paced rate: --rate is seconds between messages, the row's
# "messages_per_s" (like --mps and the field) is messages per second. A rename is a row here.
PRODUCER_SETTINGS: Dict[str, Setting] = {
    "messages_per_s": Setting("mps", "messages_per_s"),  # for_module makes --rate/--mps msg/s
    **_same("profile", "spike_at", "spike_duration", "spike_factor"),
    "priority_mix": Setting("priority_mix", "priority_mix", parse=parse_weights),
    **_same("payload_bytes", "retry", "max_attempts"),
    "backoff_base_s": Setting("backoff_base_ms", "backoff_base_ms", 0.001),
    "backoff_cap_s": Setting("backoff_cap_ms", "backoff_cap_ms", 0.001),
    "timeout_s": Setting("timeout_ms", "timeout_ms", 0.001),
    "deadline_s": Setting("deadline_ms", "deadline_ms", 0.001),
    **_same("breaker"),
    "breaker_failures": Setting("breaker_failures"),
    "breaker_open_s": Setting("breaker_open_ms", None, 0.001),
    "limiter": Setting("limit", "limiter"),
    "limiter_rate": Setting("limit_rate", "limiter_rate"),
    "limiter_burst": Setting("limit_burst", "limiter_burst"),
    "consumer_rate": Setting("consumer_rate"),
    "max_pending": Setting("max_pending"),
    "limit_algorithm": Setting("limit_algorithm", "limit_algorithm"),
    "limit_timeout_s": Setting("limit_timeout_ms", "limit_timeout_ms", 0.001),
    "batch_max": Setting("batch"),
    "throttle_on_lag": Setting("throttle_on_lag"),
    "target_lag_s": Setting("target_lag_ms", None, 0.001),
    "seed": Setting("seed"),
    "name": Setting("name"),
}


def default_of(cls: type, name: str) -> Any:
    """A config field's lab-wide default (for help texts: ``[default: 10]``)."""
    return next(f.default for f in fields(cls) if f.name == name)


@dataclass
class ConsumerConfig:
    """Everything a consumer can be told by flags; defaults come from ``modules.py``."""

    module: int = 12
    mode: str = "drop"
    capacity: int = 50
    process_rate: float = 10.0  # messages per second; math.inf: the worker takes no time
    service_dist: str = "fixed"
    sample_every: int = 10
    sample_watermark: float = 0.5
    retry_after_ms: int = DEFAULT_RETRY_AFTER_MS
    discipline: Optional[str] = None  # None: the policy's own (priority modes use "priority")
    # Module 19: what the worker takes next and drops at dequeue (lab.core.disciplines)
    queue_discipline: str = "fifo"
    codel_target_s: Optional[float] = None  # None: half a service time
    codel_interval_s: Optional[float] = None  # None: 10 targets
    shed_watermarks: Tuple[float, float, float] = (1.0, 0.8, 0.5)
    request_n: int = 1  # pull mode: each REQUEST asks for this many records
    degrade_high: float = 0.8
    degrade_low: float = 0.3
    degrade_hold_s: float = 1.0
    admit_rate: float = 10.0
    admit_burst: int = 10
    reject_cost: float = 0.0  # worker time spent refusing a message, in mean service times
    max_memory_mb: float = 512.0
    wait_target_s: Optional[float] = None  # count queue waits longer than this (exercises)
    producer_timeout_s: float = 2.0
    heartbeat_s: float = 0.5
    seed: int = 0
    per_producer_limit: Optional[float] = None  # classroom: most of the limit one may hold
    # Batching (Module 16): a batch costs batch_overhead_ms + item_ms per message. Giving
    # either one turns batching on (lab.core.batching); process_rate is then unused.
    batch_overhead_ms: Optional[float] = None
    item_ms: Optional[float] = None
    batch_size: int = 1  # the most messages in one batch (the adaptive batcher's start)
    batch_wait_ms: float = 0.0  # linger: a batch that is not full starts after this wait
    batch: str = "fixed"  # or "adaptive" (seed 003's rule)
    batch_target_ms: float = 50.0
    batch_min: int = 1
    batch_max: int = 1000
    batcher_plugin: Any = None  # an object with batch_size() and observe(size, seconds, now)

    # A pool of workers (Module 17): pool=True or any of the others turns it on (lab.core.pool).
    pool: bool = False
    workers: int = 1
    db_capacity: Optional[float] = None  # operations/s of the database all workers share
    db_coherence: float = 0.1  # each extra concurrent caller slows every operation this much
    autoscale: Optional[Tuple[int, int]] = None  # (min, max) workers, scaled on lag
    lag_target_s: float = 1.0
    scale_cooldown_s: float = 5.0
    bulkhead: Optional[str] = None  # e.g. "likes=4,analytics=2": a pool per workload
    # (at_s, target_mb, for_s): the process grows its real RSS to target_mb at at_s for for_s
    # seconds (``bplab check``'s memory pressure, a hidden flag; the shell does it).
    memory_pressure: Optional[Tuple[float, float, float]] = None
    autoscaler_plugin: Any = None  # an object with decide(workers, lag_s, now) (--autoscale)

    @property
    def batching(self) -> bool:
        return self.batch_overhead_ms is not None or self.item_ms is not None

    @property
    def pooled(self) -> bool:
        return (
            self.pool
            or self.workers > 1
            or self.db_capacity is not None
            or self.autoscale is not None
            or self.bulkhead is not None
        )

    @classmethod
    def for_module(
        cls, spec: ModuleSpec, backpressure: bool = False, **flags: Any
    ) -> ConsumerConfig:
        """The consumer of module ``spec`` as these flags change it, checked.

        ``backpressure=True`` is ``--backpressure``: the same as ``mode="block"``."""
        mode = flags.get("mode")
        if backpressure:
            if mode not in (None, "block"):
                raise ValueError(f"--backpressure means --mode block; it contradicts --mode {mode}")
            flags["mode"] = "block"
        values = _settle(CONSUMER_SETTINGS, spec.consumer, flags)
        return cls(module=spec.number, **values).validate()

    def validate(self) -> ConsumerConfig:
        """Raise ``ValueError`` (one line, naming the flag) at the first setting that makes
        no sense; return the config itself when all do."""
        check_choice(self.mode, MODES, "--mode")
        if not 1 <= self.capacity <= MAX_BUFFER:
            raise ValueError(
                f"--buffer must be at least 1 and at most {MAX_BUFFER:,} (--mode unbounded has "
                f"no limit), got {self.capacity}"
            )
        if not self.process_rate > 0:  # math.inf is 'max'
            raise ValueError(f"--process-rate must be a finite number > 0, got {self.process_rate}")
        check_choice(self.service_dist, SERVICE_DISTS, "--service-dist")
        check_at_least_one(self.sample_every, "--sample-every")
        if not 1 <= self.request_n <= self.capacity:
            raise ValueError(f"--request-n must be between 1 and --buffer, got {self.request_n}")
        if not 0.0 <= self.sample_watermark <= 1.0:
            raise ValueError(
                f"--sample-watermark is a fraction between 0 and 1, got {self.sample_watermark}"
            )
        check_between(self.retry_after_ms, 0, MAX_RETRY_AFTER_MS, "--retry-after-ms", " (one hour)")
        marks = tuple(self.shed_watermarks)
        if len(marks) != 3 or not all(0.0 < w <= 1.0 for w in marks):
            raise ValueError(
                "--shed-watermarks takes 3 comma-separated fractions in (0, 1], "
                f"got {_as_text(marks)!r}"
            )
        if not 0.0 <= self.degrade_low < self.degrade_high <= 1.0:
            raise ValueError("--degrade-low must be below --degrade-high, both between 0 and 1")
        check_positive(self.degrade_hold_s, "--degrade-hold", allow_zero=True)
        check_positive(self.admit_rate, "--admit-rate")
        check_at_least_one(self.admit_burst, "--admit-burst")
        check_positive(self.reject_cost, "--reject-cost", allow_zero=True)
        check_positive(self.max_memory_mb, "--max-memory-mb")
        self._check_pressure()
        check_positive(_ms(self.wait_target_s), "--wait-target-ms")
        check_batching(self)
        check_pool(self)
        check_choice(self.queue_discipline, DISCIPLINE_NAMES, "--discipline")
        check_positive(_ms(self.codel_target_s), "--codel-target-ms")
        check_positive(_ms(self.codel_interval_s), "--codel-interval-ms")
        if self.queue_discipline != "fifo" and (self.batching or self.pooled):
            raise ValueError("--discipline works with one worker (no batching, no pool)")
        return self

    def _check_pressure(self) -> None:
        if self.memory_pressure is None:
            return
        at_s, target_mb, for_s = self.memory_pressure
        check_positive(at_s, "--memory-pressure's AT_S", allow_zero=True)
        check_positive(target_mb, "--memory-pressure's TARGET_MB")
        check_positive(for_s, "--memory-pressure's FOR_S")

    def discipline_options(self) -> Dict[str, Any]:
        return {"codel_target_s": self.codel_target_s, "codel_interval_s": self.codel_interval_s}

    def policy_options(self) -> Dict[str, Any]:
        return {
            "sample_every": self.sample_every,
            "sample_watermark": self.sample_watermark,
            "retry_after_ms": self.retry_after_ms,
            "shed_watermarks": self.shed_watermarks,
            "degrade_high": self.degrade_high,
            "degrade_low": self.degrade_low,
            "degrade_hold_s": self.degrade_hold_s,
            "admit_rate": self.admit_rate,
            "admit_burst": self.admit_burst,
        }


def messages_per_s(rate: Optional[float], mps: Optional[str]) -> Optional[float]:
    """The paced rate a person asked for: ``--rate`` is SECONDS BETWEEN messages (the seed's
    ``--rate 0.05`` is 20 msg/s), ``--mps`` is messages per second or 'max'."""
    if rate is not None and mps is not None:
        raise ValueError("give either --rate (seconds between messages) or --mps, not both")
    if rate is None:
        return parse_rate_word(mps, "--mps")
    check_positive(rate, "--rate")  # seconds: 0 would divide by zero
    return 1.0 / rate


@dataclass
class ProducerConfig:
    """Everything a producer can be told by flags; defaults come from ``modules.py``."""

    module: int = 12
    # Messages per second; math.inf sends as fast as possible. (The CLI's --rate is the
    # other way up, seconds between messages: the two names must not meet.)
    messages_per_s: float = 20.0
    profile: str = "steady"
    spike_at: float = 5.0
    spike_duration: float = 5.0
    spike_factor: float = 10.0
    priority_mix: Tuple[float, ...] = (1.0,)
    payload_bytes: int = 0
    retry: str = "none"
    max_attempts: int = 5
    backoff_base_s: float = 0.05
    backoff_cap_s: float = 2.0
    max_pending: Optional[int] = None
    # The producer's own rate limiter (--limit): none, interval, token-bucket. Not "limit":
    # that is also the consumer's admission limit and the credit window.
    limiter: str = "none"
    limiter_rate: float = 10.0
    limiter_burst: int = 10
    timeout_s: Optional[float] = None  # wait this long for "processed", then retry
    deadline_s: Optional[float] = None  # a request older than this (from its due time) is given up
    breaker: bool = False
    breaker_failures: int = 5
    breaker_open_s: float = 2.0
    breaker_probes: int = 3
    retry_plugin: Any = None  # an object with delay(attempt, retry_after_s, now) (exercises)
    limiter_plugin: Any = None  # an object with take_up_to(now, n) and time_until(now)
    # What a person's limiter (--limiter-file) is told the consumer can take, msg/s; the
    # lab's own limiters are given their rate by --limit-rate instead. None: not told.
    consumer_rate: Optional[float] = None
    # An adaptive limit on messages outstanding (sent, no final answer yet), found from the
    # round trips (lab.core.concurrency): none, aimd, gradient. AIMD counts an answer slower
    # than limit_timeout_s as a loss.
    limit_algorithm: str = "none"
    limit_timeout_s: float = DEFAULT_TIMEOUT_S
    batch_max: int = 1000
    # A paced producer's DATA frame goes when it is full (batch_max records) or this long
    # after the previous frame, like Nagle's rule in TCP: at 100,000 msg/s that is one frame
    # of 100 records a millisecond, not a frame per loop turn (each verdict frame woke the
    # loop, whose next frame woke the consumer: a ping-pong of tiny frames). Below 1,000
    # msg/s messages are further apart than this and go the moment they are due.
    frame_interval_s: float = 0.001
    # Slow down while the consumer's lag (from its WELCOMEs) is over the target, and speed up
    # again, never past messages_per_s (lab.core.stream_lag.LagThrottle, Module 20's rule).
    throttle_on_lag: bool = False
    target_lag_s: float = 0.5
    heartbeat_s: float = 0.5
    consumer_timeout_s: float = 2.0
    seed: int = 0
    name: str = ""
    epoch_offset: float = 0.0  # add to a monotonic time to get epoch seconds
    extra: Dict[str, Any] = field(default_factory=dict)

    @classmethod
    def for_module(
        cls, spec: ModuleSpec, rate: Optional[float] = None, **flags: Any
    ) -> ProducerConfig:
        """The producer of module ``spec`` as these flags change it, checked.

        ``rate`` is ``--rate``, seconds between messages; ``mps`` is ``--mps`` (text:
        a number or 'max'). Give one or neither."""
        flags["mps"] = messages_per_s(rate, flags.get("mps"))
        workloads = flags.pop("workloads", None)
        if workloads is not None:  # Module 17's names for the classes: likes=1,analytics=3
            if flags.get("priority_mix") is not None:
                raise ValueError("give either --workloads or --priority-mix, not both")
            flags["priority_mix"] = _as_text(parse_workloads(workloads))
        values = _settle(PRODUCER_SETTINGS, spec.producer, flags)
        return cls(module=spec.number, **values).validate()

    def validate(self) -> ProducerConfig:
        """Raise ``ValueError`` (one line, naming the flag) at the first setting that makes
        no sense; return the config itself when all do."""
        if not self.messages_per_s > 0:  # math.inf is 'max'
            raise ValueError(f"--mps must be a finite number > 0, got {self.messages_per_s}")
        check_choice(self.profile, PROFILES, "--profile")
        check_choice(self.retry, RETRY_POLICIES, "--retry")
        check_positive(_ms(self.backoff_base_s), "--backoff-base-ms", allow_zero=True)
        if not self.backoff_cap_s >= self.backoff_base_s:
            raise ValueError("--backoff-cap-ms must be at least --backoff-base-ms")
        check_positive(_ms(self.timeout_s), "--timeout-ms")
        check_positive(_ms(self.deadline_s), "--deadline-ms")
        check_at_least_one(self.breaker_failures, "--breaker-failures")
        check_positive(_ms(self.breaker_open_s), "--breaker-open-ms")
        check_choice(self.limiter, LIMITERS, "--limit")
        check_positive(self.limiter_rate, "--limit-rate")
        check_at_least_one(self.limiter_burst, "--limit-burst")
        check_positive(self.consumer_rate, "--consumer-rate")
        check_choice(self.limit_algorithm, LIMIT_ALGORITHMS, "--limit-algorithm")
        check_positive(_ms(self.limit_timeout_s), "--limit-timeout-ms")
        check_positive(self.spike_at, "--spike-at", allow_zero=True)
        check_positive(self.spike_duration, "--spike-duration")
        check_positive(self.spike_factor, "--spike-factor")
        rate = self.messages_per_s
        if math.isfinite(rate) and rate * self.spike_factor > MAX_PACED_RATE:
            raise ValueError(
                f"--spike-factor {self.spike_factor:g} x {rate:g} msg/s is more than "
                f"{MAX_PACED_RATE:g} msg/s; use a smaller factor, or --mps max for as fast as "
                "possible"
            )
        if not 1 <= self.max_attempts <= MAX_ATTEMPTS:
            raise ValueError(
                f"--max-attempts must be between 1 and {MAX_ATTEMPTS} (the attempt number is "
                f"one byte on the wire), got {self.max_attempts}"
            )
        check_between(self.payload_bytes, 0, MAX_PAYLOAD_BYTES, "--payload-bytes")
        if self.max_pending is not None:
            check_at_least_one(self.max_pending, "--max-pending")
        check_between(self.batch_max, 1, MAX_BATCH, "--batch")
        self._check_priority_mix()
        self._check_throttle()
        return self

    def _check_throttle(self) -> None:
        check_positive(_ms(self.target_lag_s), "--target-lag-ms")
        if not self.throttle_on_lag:
            return
        if math.isinf(self.messages_per_s):
            raise ValueError(
                "--throttle-on-lag needs a paced producer: give --mps N (its most), not max"
            )
        if self.profile == "spike":
            raise ValueError(
                "--throttle-on-lag sets the rate itself: use --profile steady or poisson"
            )

    def _check_priority_mix(self) -> None:
        weights = tuple(self.priority_mix)
        total = sum(weights)
        if (
            not weights
            or any(w < 0 for w in weights)
            or not 0 < total < math.inf
            or len(weights) > 8
        ):
            raise ValueError(
                "--priority-mix needs 1 to 8 non-negative weights with a positive, finite sum"
            )
