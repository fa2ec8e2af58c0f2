"""The ``bplab`` command line (typer). Thin: parse and check flags, then call the shell.

Every flag is checked here, before any socket opens. A bad flag ends the program with exit
status 2 and one line on stderr saying what is wrong and what is allowed.
Defaults that depend on the module (port, mode, buffer, rates) come from ``modules.py``.
"""

from __future__ import annotations

import math
import sys
from typing import List, Optional

import typer

from lab.core.modes import MODES
from lab.core.modules import all_modules, get_module
from lab.core.policies import DEFAULT_RETRY_AFTER_MS

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Backpressure Lab: watch a producer overload a consumer over ZeroMQ, then fix it.",
)

BIND_HELP = (
    "Address to listen on. The default 127.0.0.1 accepts only this machine; 0.0.0.0 exposes "
    "the lab's unauthenticated sockets to your whole network (anyone could send data or "
    "control commands)."
)


# click's UsageError, wherever this typer keeps click (older typers import it, newer vendor it).
UsageError = typer.BadParameter.__mro__[1]


class FlagError(UsageError):
    """A flag value that parses but makes no sense (reported as one line, exit 2)."""


MAX_BUFFER = 1_000_000_000  # credit and windows stay far inside the wire's 64-bit fields
MAX_RETRY_AFTER_MS = 3_600_000  # the wire carries it in 32 bits; an hour is plenty
MAX_PACED_RATE = 1e9  # msg/s a paced schedule can represent (spikes included)


def _module_or_fail(number: int):
    try:
        return get_module(number)
    except ValueError as error:
        raise FlagError(str(error)) from None


def _check_port(port: int) -> int:
    if not 1 <= port <= 65532:
        raise FlagError(f"--port {port} is out of range: use 1..65532 (the lab uses port..port+3)")
    return port


def _check_positive(value: Optional[float], flag: str, allow_zero: bool = False) -> None:
    if value is None:
        return
    if value != value or value < 0 or (value == 0 and not allow_zero) or math.isinf(value):
        bound = ">= 0" if allow_zero else "> 0"
        raise FlagError(f"{flag} must be a finite number {bound}, got {value}")


def _parse_rate_word(text: Optional[str], flag: str) -> Optional[float]:
    """A rate in msg/s, or ``max`` for "as fast as possible"."""
    if text is None:
        return None
    if text.strip().lower() in ("max", "inf", "unlimited"):
        return math.inf
    try:
        value = float(text)
    except ValueError:
        raise FlagError(
            f"{flag} takes a number of messages per second or 'max', got {text!r}"
        ) from None
    _check_positive(value, flag)
    return value


def _default(value, defaults, key: str, fallback):
    """A flag's value, else the module's default, else the lab's."""
    if value is not None:
        return value
    return defaults.get(key, fallback)


def _parse_fractions(text: Optional[str], flag: str, count: int):
    if text is None:
        return None
    try:
        values = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise FlagError(f"{flag} takes {count} comma-separated fractions, got {text!r}") from None
    if len(values) != count or not all(0.0 < v <= 1.0 for v in values):
        raise FlagError(f"{flag} takes {count} comma-separated fractions in (0, 1], got {text!r}")
    return values


def _check_record(path: Optional[str]) -> Optional[str]:
    """``--record FILE`` must be a file this process can append to: say so now, in one line."""
    if path is None:
        return None
    import os

    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "a", encoding="utf-8"):
            pass
    except OSError as error:
        raise FlagError(
            f"--record {path!r} cannot be written ({error.strerror or error}); give the path "
            "of a file in a folder you can write to"
        ) from None
    return path


def _choice(value: Optional[str], allowed, flag: str) -> Optional[str]:
    if value is not None and value not in allowed:
        raise FlagError(f"{flag} {value!r} is not allowed; choose one of: {', '.join(allowed)}")
    return value


# -- consumer ----------------------------------------------------------------------------------
@app.command()
def consumer(
    module: int = typer.Option(12, "--module", "-m", help="Module number (sets the defaults)."),
    mode: Optional[str] = typer.Option(
        None, help=f"Overflow mode: {', '.join(MODES)}. Default: the module's (12: drop)."
    ),
    backpressure: bool = typer.Option(False, "--backpressure", help="Same as --mode block."),
    buffer: Optional[int] = typer.Option(None, "--buffer", help="Buffer capacity (messages)."),
    process_rate: Optional[str] = typer.Option(
        None, "--process-rate", help="Messages per second the worker can do, or 'max'."
    ),
    service_dist: str = typer.Option("fixed", help="Service times: fixed or exponential."),
    sample_every: int = typer.Option(10, help="sample mode: keep 1 in N above the watermark."),
    sample_watermark: float = typer.Option(0.5, help="sample mode: fraction of the buffer."),
    retry_after_ms: Optional[int] = typer.Option(
        None, help=f"shed modes: retry-after told to producers (default {DEFAULT_RETRY_AFTER_MS})."
    ),
    shed_watermarks: Optional[str] = typer.Option(
        None, help="priority-shed: fill fractions where critical,normal,optional are shed."
    ),
    degrade_high: Optional[float] = typer.Option(None, help="degrade: switch optional off here."),
    degrade_low: Optional[float] = typer.Option(None, help="degrade: ... back on below this."),
    degrade_hold: Optional[float] = typer.Option(None, help="degrade: ... after this calm (s)."),
    admit_rate: Optional[float] = typer.Option(None, help="admit: token bucket rate (msg/s)."),
    admit_burst: Optional[int] = typer.Option(None, help="admit: token bucket capacity."),
    reject_cost: Optional[float] = typer.Option(
        None, help="Worker time a refusal costs, in service times (0 = free)."
    ),
    max_memory_mb: float = typer.Option(512.0, help="Stop when RSS passes this (memory guard)."),
    wait_target_ms: Optional[float] = typer.Option(
        None, help="Latency target: count queue waits longer than this (the exercises)."
    ),
    policy_file: Optional[str] = typer.Option(
        None, help="Use the overflow policy class in FILE.py[:Class] (the exercises)."
    ),
    port: Optional[int] = typer.Option(None, help="Base port (data; +1..+3 telemetry, control)."),
    bind: str = typer.Option("127.0.0.1", "--bind", "--host", help=BIND_HELP),
    duration: Optional[float] = typer.Option(None, help="Stop after this many seconds."),
    json_out: bool = typer.Option(False, "--json", help="Print a JSON summary on stdout at exit."),
    record: Optional[str] = typer.Option(None, help="Append telemetry snapshots to FILE.jsonl."),
    seed: int = typer.Option(0, help="Random seed (exponential service times)."),
    slowdown_at: Optional[float] = typer.Option(None, help="Slow the worker at this second."),
    slowdown_factor: float = typer.Option(4.0, help="How many times slower (with --slowdown-at)."),
    slowdown_for: Optional[float] = typer.Option(None, help="Restore speed after this long."),
    stall_at: Optional[float] = typer.Option(None, help="Stall the worker at this second."),
    stall_for: float = typer.Option(3.0, help="Stall length in seconds."),
    quiet: bool = typer.Option(False, help="No human-readable lines on stderr."),
    parent_pid: Optional[int] = typer.Option(None, hidden=True),
) -> None:
    """Run the consumer: a bounded buffer, an overflow policy and a worker of fixed speed."""
    from lab.core.config import ConsumerConfig
    from lab.processes.consumer import ConsumerRun, run_consumer
    from lab.processes.net import PortInUse
    from lab.processes.plugins import PluginError

    spec = _module_or_fail(module)
    defaults = spec.consumer
    _choice(mode, list(MODES), "--mode")
    if backpressure and mode not in (None, "block"):
        raise FlagError(f"--backpressure means --mode block; it contradicts --mode {mode}")
    chosen_mode = "block" if backpressure else (mode or defaults.get("mode", "drop"))
    capacity = buffer if buffer is not None else defaults.get("capacity", 50)
    if not 1 <= capacity <= MAX_BUFFER:
        raise FlagError(
            f"--buffer must be at least 1 and at most {MAX_BUFFER:,} (--mode unbounded has no "
            f"limit), got {capacity}"
        )
    rate = _parse_rate_word(process_rate, "--process-rate")
    _choice(service_dist, ("fixed", "exponential"), "--service-dist")
    if sample_every < 1:
        raise FlagError(f"--sample-every must be at least 1, got {sample_every}")
    if not 0.0 <= sample_watermark <= 1.0:
        raise FlagError(f"--sample-watermark is a fraction between 0 and 1, got {sample_watermark}")
    retry_after_ms = _default(retry_after_ms, defaults, "retry_after_ms", DEFAULT_RETRY_AFTER_MS)
    if not 0 <= retry_after_ms <= MAX_RETRY_AFTER_MS:
        raise FlagError(
            f"--retry-after-ms must be between 0 and {MAX_RETRY_AFTER_MS} (one hour), "
            f"got {retry_after_ms}"
        )
    watermarks = _parse_fractions(shed_watermarks, "--shed-watermarks", 3) or tuple(
        defaults.get("shed_watermarks", (1.0, 0.8, 0.5))
    )
    degrade = (
        _default(degrade_high, defaults, "degrade_high", 0.8),
        _default(degrade_low, defaults, "degrade_low", 0.3),
        _default(degrade_hold, defaults, "degrade_hold_s", 1.0),
    )
    if not 0.0 <= degrade[1] < degrade[0] <= 1.0:
        raise FlagError("--degrade-low must be below --degrade-high, both between 0 and 1")
    _check_positive(degrade[2], "--degrade-hold", allow_zero=True)
    admit = (
        _default(admit_rate, defaults, "admit_rate", 10.0),
        _default(admit_burst, defaults, "admit_burst", 10),
    )
    _check_positive(admit[0], "--admit-rate")
    if admit[1] < 1:
        raise FlagError(f"--admit-burst must be at least 1, got {admit[1]}")
    reject_cost = _default(reject_cost, defaults, "reject_cost", 0.0)
    _check_positive(reject_cost, "--reject-cost", allow_zero=True)
    _check_positive(max_memory_mb, "--max-memory-mb")
    _check_positive(wait_target_ms, "--wait-target-ms")
    _check_positive(duration, "--duration")
    _check_positive(slowdown_at, "--slowdown-at", allow_zero=True)
    _check_positive(slowdown_factor, "--slowdown-factor")
    _check_positive(slowdown_for, "--slowdown-for")
    _check_positive(stall_at, "--stall-at", allow_zero=True)
    _check_positive(stall_for, "--stall-for")
    config = ConsumerConfig(
        module=module,
        mode=chosen_mode,
        capacity=capacity,
        process_rate=rate if rate is not None else defaults.get("process_rate", 10.0),
        service_dist=service_dist,
        sample_every=sample_every,
        sample_watermark=sample_watermark,
        retry_after_ms=retry_after_ms,
        discipline=defaults.get("discipline"),
        shed_watermarks=watermarks,
        degrade_high=degrade[0],
        degrade_low=degrade[1],
        degrade_hold_s=degrade[2],
        admit_rate=admit[0],
        admit_burst=admit[1],
        reject_cost=reject_cost,
        max_memory_mb=max_memory_mb,
        wait_target_s=None if wait_target_ms is None else wait_target_ms / 1000.0,
        seed=seed,
    )
    run = ConsumerRun(
        port=_check_port(port if port is not None else spec.port),
        bind=bind,
        duration=duration,
        json_out=json_out,
        record=_check_record(record),
        parent_pid=parent_pid,
        quiet=quiet,
        slowdown_at=slowdown_at,
        slowdown_factor=slowdown_factor,
        slowdown_for=slowdown_for,
        stall_at=stall_at,
        stall_for=stall_for,
        policy_file=policy_file,
    )
    try:
        code = run_consumer(config, run)
    except (PortInUse, PluginError) as error:
        raise FlagError(str(error)) from None
    raise typer.Exit(code)


# -- producer ----------------------------------------------------------------------------------
@app.command()
def producer(
    module: int = typer.Option(12, "--module", "-m", help="Module number (sets the defaults)."),
    rate: Optional[float] = typer.Option(
        None, "--rate", help="Seconds between messages (0.05 = 20 msg/s, 0.01 = 100 msg/s)."
    ),
    mps: Optional[str] = typer.Option(
        None, "--mps", help="Messages per second instead of --rate; 'max' = unpaced."
    ),
    profile: Optional[str] = typer.Option(
        None, help="steady, poisson, or spike (10x for a window). Default: the module's."
    ),
    spike_at: Optional[float] = typer.Option(None, help="spike profile: seconds after start."),
    spike_duration: Optional[float] = typer.Option(None, help="spike profile: its length (s)."),
    spike_factor: Optional[float] = typer.Option(None, help="spike profile: rate multiplier."),
    retry: Optional[str] = typer.Option(
        None,
        help="After a shed or timeout: none, immediate, exponential, or backoff "
        "(exponential with full jitter). Default: none.",
    ),
    max_attempts: Optional[int] = typer.Option(
        None, help="Attempts per message, first one included (default 5)."
    ),
    backoff_base_ms: Optional[float] = typer.Option(None, help="First retry delay (ms)."),
    backoff_cap_ms: Optional[float] = typer.Option(None, help="Longest retry delay (ms)."),
    timeout_ms: Optional[float] = typer.Option(
        None, help="Wait this long for 'processed', then retry (a request timeout)."
    ),
    deadline_ms: Optional[float] = typer.Option(
        None, help="Give a request up once it is this old (the caller left)."
    ),
    breaker: Optional[bool] = typer.Option(
        None, "--breaker/--no-breaker", help="Circuit breaker in front of the consumer."
    ),
    breaker_failures: int = typer.Option(5, help="Failures in a row that open the breaker."),
    breaker_open_ms: float = typer.Option(2000, help="How long the breaker stays open."),
    limit: Optional[str] = typer.Option(
        None, help="Producer-side rate limiter: none, interval, token-bucket."
    ),
    limit_rate: Optional[float] = typer.Option(None, help="Limiter rate (msg/s)."),
    limit_burst: Optional[int] = typer.Option(None, help="token-bucket capacity (burst)."),
    retry_file: Optional[str] = typer.Option(
        None, help="Use the retry policy class in FILE.py[:Class] (the exercises)."
    ),
    limiter_file: Optional[str] = typer.Option(
        None, help="Use the rate limiter class in FILE.py[:Class] (the exercises)."
    ),
    payload_bytes: int = typer.Option(0, help="Payload size of each message."),
    max_pending: Optional[int] = typer.Option(
        None, help="Outbox size (default: the consumer's window in block mode, else 10000)."
    ),
    priority_mix: Optional[str] = typer.Option(
        None, help="Weights of priority classes 0,1,2..., e.g. 0.1,0.6,0.3."
    ),
    host: str = typer.Option("127.0.0.1", help="Where the consumer runs."),
    port: Optional[int] = typer.Option(None, help="The consumer's base port."),
    duration: Optional[float] = typer.Option(None, help="Stop after this many seconds."),
    json_out: bool = typer.Option(False, "--json", help="Print a JSON summary on stdout at exit."),
    record: Optional[str] = typer.Option(None, help="Append telemetry snapshots to FILE.jsonl."),
    seed: int = typer.Option(0, help="Random seed (poisson arrivals, jitter, priorities)."),
    name: Optional[str] = typer.Option(None, help="Producer name shown on the dashboard."),
    batch: int = typer.Option(1000, help="Most messages per DATA frame."),
    quiet: bool = typer.Option(False, help="No human-readable lines on stderr."),
    parent_pid: Optional[int] = typer.Option(None, hidden=True),
) -> None:
    """Run a producer: paced messages to the consumer, with latency measured per message."""
    from lab.core.config import ProducerConfig
    from lab.core.producer_core import RETRY_POLICIES
    from lab.core.ratelimit import LIMITERS
    from lab.processes import plugins
    from lab.processes.producer import ProducerRun, run_producer

    spec = _module_or_fail(module)
    defaults = spec.producer
    if rate is not None and mps is not None:
        raise FlagError("give either --rate (seconds between messages) or --mps, not both")
    _check_positive(rate, "--rate")
    per_second = _parse_rate_word(mps, "--mps")
    if rate is not None:
        per_second = 1.0 / rate
    if per_second is None:
        per_second = defaults.get("rate", 20.0)
    profile = _choice(
        _default(profile, defaults, "profile", "steady"),
        ("steady", "poisson", "spike"),
        "--profile",
    )
    spike_at = _default(spike_at, defaults, "spike_at", 5.0)
    spike_duration = _default(spike_duration, defaults, "spike_duration", 5.0)
    spike_factor = _default(spike_factor, defaults, "spike_factor", 10.0)
    retry = _choice(_default(retry, defaults, "retry", "none"), RETRY_POLICIES, "--retry")
    max_attempts = _default(max_attempts, defaults, "max_attempts", 5)
    backoff = (
        _default(backoff_base_ms, defaults, "backoff_base_ms", 50.0),
        _default(backoff_cap_ms, defaults, "backoff_cap_ms", 2000.0),
    )
    _check_positive(backoff[0], "--backoff-base-ms", allow_zero=True)
    if backoff[1] < backoff[0]:
        raise FlagError("--backoff-cap-ms must be at least --backoff-base-ms")
    timeout_ms = _default(timeout_ms, defaults, "timeout_ms", None)
    deadline_ms = _default(deadline_ms, defaults, "deadline_ms", None)
    _check_positive(timeout_ms, "--timeout-ms")
    _check_positive(deadline_ms, "--deadline-ms")
    use_breaker = _default(breaker, defaults, "breaker", False)
    if breaker_failures < 1:
        raise FlagError(f"--breaker-failures must be at least 1, got {breaker_failures}")
    _check_positive(breaker_open_ms, "--breaker-open-ms")
    limiter = _choice(_default(limit, defaults, "limit", "none"), LIMITERS, "--limit")
    limiter_rate = _default(limit_rate, defaults, "limit_rate", 10.0)
    limiter_burst = _default(limit_burst, defaults, "limit_burst", 10)
    _check_positive(limiter_rate, "--limit-rate")
    if limiter_burst < 1:
        raise FlagError(f"--limit-burst must be at least 1, got {limiter_burst}")
    _check_positive(spike_at, "--spike-at", allow_zero=True)
    _check_positive(spike_duration, "--spike-duration")
    _check_positive(spike_factor, "--spike-factor")
    if math.isfinite(per_second) and per_second * spike_factor > MAX_PACED_RATE:
        raise FlagError(
            f"--spike-factor {spike_factor:g} x {per_second:g} msg/s is more than "
            f"{MAX_PACED_RATE:g} msg/s; use a smaller factor, or --mps max for as fast as possible"
        )
    _check_positive(duration, "--duration")
    if not 1 <= max_attempts <= 255:
        raise FlagError(
            f"--max-attempts must be between 1 and 255 (the attempt number is one byte on "
            f"the wire), got {max_attempts}"
        )
    if not 0 <= payload_bytes <= 1_000_000:
        raise FlagError(f"--payload-bytes must be between 0 and 1000000, got {payload_bytes}")
    if max_pending is not None and max_pending < 1:
        raise FlagError(f"--max-pending must be at least 1, got {max_pending}")
    if not 1 <= batch <= 10_000:
        raise FlagError(f"--batch must be between 1 and 10000, got {batch}")
    mix = _parse_mix(priority_mix) if priority_mix else tuple(defaults.get("priority_mix", (1.0,)))
    config = ProducerConfig(
        module=module,
        rate=per_second,
        profile=profile,
        spike_at=spike_at,
        spike_duration=spike_duration,
        spike_factor=spike_factor,
        priority_mix=mix,
        payload_bytes=payload_bytes,
        retry=retry,
        backoff_base_s=backoff[0] / 1000.0,
        backoff_cap_s=backoff[1] / 1000.0,
        timeout_s=None if timeout_ms is None else timeout_ms / 1000.0,
        deadline_s=None if deadline_ms is None else deadline_ms / 1000.0,
        breaker=bool(use_breaker),
        breaker_failures=breaker_failures,
        breaker_open_s=breaker_open_ms / 1000.0,
        limit=limiter,
        limit_rate=limiter_rate,
        limit_burst=limiter_burst,
        max_attempts=max_attempts,
        max_pending=max_pending,
        batch_max=batch,
        seed=seed,
        name=name or "",
    )
    run = ProducerRun(
        port=_check_port(port if port is not None else spec.port),
        host=host,
        duration=duration,
        json_out=json_out,
        record=_check_record(record),
        parent_pid=parent_pid,
        quiet=quiet,
    )
    try:
        if retry_file:
            config.retry_plugin = plugins.load(retry_file, "retry", {"seed": seed})
        if limiter_file:
            config.limiter_plugin = plugins.load(limiter_file, "limiter", {"now": 0.0})
    except plugins.PluginError as error:
        raise FlagError(str(error)) from None
    raise typer.Exit(run_producer(config, run))


def _parse_mix(text: str):
    try:
        weights = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise FlagError(f"--priority-mix takes comma-separated weights, got {text!r}") from None
    total = sum(weights)
    if not weights or any(w < 0 for w in weights) or not 0 < total < math.inf or len(weights) > 8:
        raise FlagError(
            "--priority-mix needs 1 to 8 non-negative weights with a positive, finite sum"
        )
    return weights


# -- visualizer --------------------------------------------------------------------------------
@app.command()
def visualize(
    module: int = typer.Option(12, "--module", "-m", help="Module number (sets the port)."),
    host: str = typer.Option("127.0.0.1", help="Where the consumer runs."),
    port: Optional[int] = typer.Option(None, help="The consumer's base port."),
    duration: Optional[float] = typer.Option(None, help="Stop after this many seconds."),
    record: Optional[str] = typer.Option(None, help="Append every snapshot seen to FILE.jsonl."),
    plain: bool = typer.Option(False, help="Plain lines instead of the live dashboard."),
    refresh: float = typer.Option(4.0, help="Dashboard redraws per second."),
    json_out: bool = typer.Option(False, "--json", help="Print a JSON summary on stdout at exit."),
) -> None:
    """Show the live dashboard of a running module (start order does not matter)."""
    from lab.processes.visualizer import VisualizerRun, run_visualizer

    spec = _module_or_fail(module)
    _check_positive(duration, "--duration")
    if not 0.5 <= refresh <= 30:
        raise FlagError(f"--refresh must be between 0.5 and 30 redraws per second, got {refresh}")
    run = VisualizerRun(
        module=module,
        host=host,
        port=_check_port(port if port is not None else spec.port),
        duration=duration,
        record=_check_record(record),
        plain=plain,
        refresh=refresh,
        json_out=json_out,
    )
    raise typer.Exit(run_visualizer(run))


# -- demo --------------------------------------------------------------------------------------
@app.command()
def demo(
    module: int = typer.Argument(12, help="Module number."),
    mode: Optional[str] = typer.Option(None, help="Consumer mode (default: the module's)."),
    duration: Optional[float] = typer.Option(None, help="Stop everything after this long."),
    mps: Optional[str] = typer.Option(None, help="Producer rate in msg/s (or 'max')."),
    port: Optional[int] = typer.Option(None, help="Base port (default: the module's)."),
    record: Optional[str] = typer.Option(None, help="Record the dashboard's view to FILE.jsonl."),
    plain: bool = typer.Option(False, help="Plain lines instead of the live dashboard."),
    json_out: bool = typer.Option(False, "--json", help="Print the children's summaries as JSON."),
    slowdown_at: Optional[float] = typer.Option(None, help="Slow the worker at this second."),
    slowdown_factor: float = typer.Option(4.0, help="How many times slower (this, or key s)."),
    slowdown_for: Optional[float] = typer.Option(None, help="Restore speed after this long."),
    stall_at: Optional[float] = typer.Option(None, help="Stall the worker at this second."),
    stall_for: float = typer.Option(3.0, help="Stall length in seconds (this, or key x)."),
    retry: Optional[str] = typer.Option(
        None, help="Producer retry policy: none, immediate, exponential, backoff (Module 15)."
    ),
    breaker: Optional[bool] = typer.Option(
        None, "--breaker/--no-breaker", help="Producer circuit breaker (Module 15)."
    ),
    limit: Optional[str] = typer.Option(
        None, help="Producer rate limiter: none, interval, token-bucket (Module 14)."
    ),
) -> None:
    """Run a whole module in one terminal: consumer, producer and dashboard. Ctrl-C stops all.

    On a terminal, keys inject faults: s slows the consumer down, r restores it, x stalls
    it, q quits."""
    from lab.processes.demo import DemoRun, run_demo

    spec = _module_or_fail(module)
    _choice(mode, list(MODES), "--mode")
    _check_positive(duration, "--duration")
    rate = _parse_rate_word(mps, "--mps")
    faults: List[str] = []
    for flag, value, allow_zero in (
        ("--slowdown-at", slowdown_at, True),
        ("--slowdown-factor", slowdown_factor, False),
        ("--slowdown-for", slowdown_for, False),
        ("--stall-at", stall_at, True),
        ("--stall-for", stall_for, False),
    ):
        _check_positive(value, flag, allow_zero=allow_zero)
        if value is not None:
            faults += [flag, repr(float(value))]
    from lab.core.producer_core import RETRY_POLICIES
    from lab.core.ratelimit import LIMITERS

    producer_args: List[str] = []
    if _choice(retry, RETRY_POLICIES, "--retry") is not None:
        producer_args += ["--retry", retry]
    if breaker is not None:
        producer_args.append("--breaker" if breaker else "--no-breaker")
    if _choice(limit, LIMITERS, "--limit") is not None:
        producer_args += ["--limit", limit]
    run = DemoRun(
        module=spec.number,
        mode=mode,
        duration=duration,
        mps=rate,
        port=_check_port(port if port is not None else spec.port),
        record=_check_record(record),
        plain=plain,
        json_out=json_out,
        extra_consumer_args=faults,
        extra_producer_args=producer_args,
        slowdown_factor=slowdown_factor,
        stall_for=stall_for,
    )
    raise typer.Exit(run_demo(run))


# -- plots -------------------------------------------------------------------------------------
@app.command()
def plot(
    recording: str = typer.Argument(..., help="A --record file (JSON Lines)."),
    output: str = typer.Option("run.png", "-o", "--output", help="PNG to write."),
) -> None:
    """Plot one recorded run: depth, rates, drops and producer latency over time."""
    from lab.ui.plotting import RecordingError, plot_run

    try:
        plot_run(recording, output)
    except RecordingError as error:
        raise FlagError(str(error)) from None
    typer.echo(f"wrote {output}")


@app.command()
def compare(
    first: str = typer.Argument(..., help="Recording A (e.g. drop mode)."),
    second: str = typer.Argument(..., help="Recording B (e.g. block mode)."),
    output: str = typer.Option("compare.png", "-o", "--output", help="PNG to write."),
) -> None:
    """Overlay two recorded runs (the micro-challenge: drop vs backpressure)."""
    from lab.ui.plotting import RecordingError, plot_compare

    try:
        plot_compare(first, second, output)
    except RecordingError as error:
        raise FlagError(str(error)) from None
    typer.echo(f"wrote {output}")


# -- modules and control -------------------------------------------------------------------------
@app.command()
def modules() -> None:
    """List the workshop's modules: number, title, port and how to start each."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Backpressure Lab modules")
    table.add_column("module", no_wrap=True)
    table.add_column("title")
    table.add_column("port", no_wrap=True)
    table.add_column("teaches", ratio=1)
    table.add_column("start", no_wrap=True)
    for spec in all_modules():
        table.add_row(
            spec.folder, spec.title, str(spec.port), spec.teaches, f"bplab demo {spec.number}"
        )
    Console().print(table)


@app.command()
def ctl(
    command: str = typer.Argument(..., help="status, mode, rate, spike, slow, restore, stall."),
    value: Optional[str] = typer.Argument(None, help="The command's value (mode name, rate...)."),
    port: int = typer.Option(12000, help="The consumer's base port."),
    host: str = typer.Option("127.0.0.1", help="Where the consumer runs."),
    factor: float = typer.Option(10.0, help="spike: rate multiplier."),
    spike_duration: float = typer.Option(5.0, "--for", help="spike: seconds."),
) -> None:
    """Change a running module live, from another terminal (e.g. ``bplab ctl mode block``)."""
    import json

    from lab.processes.control import COMMANDS, send_command

    _choice(command, COMMANDS, "command")
    _check_port(port)
    request = {"cmd": command}
    if command == "mode" and value is not None:
        _choice(value, list(MODES), "mode")
    if command == "spike":
        _check_positive(factor, "--factor")
        _check_positive(spike_duration, "--for")
        request.update(factor=factor, duration=spike_duration)
    elif value is not None:
        request["value"] = value if command == "mode" else _number(value, command)
    try:
        reply = send_command(host, port, request)
    except TimeoutError as error:
        raise FlagError(str(error)) from None
    typer.echo(json.dumps(reply))
    raise typer.Exit(0 if reply.get("ok") else 1)


def _number(text: str, command: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise FlagError(f"{command} takes a number, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise FlagError(f"{command} takes a finite number >= 0, got {text!r}")
    return value


# -- graded challenges -------------------------------------------------------------------------
@app.command()
def check(
    challenge: Optional[str] = typer.Argument(
        None, help="A challenge: its folder name or number, e.g. 12_adaptive_backpressure."
    ),
    file: Optional[str] = typer.Option(
        None, "--file", help="Your solution (default: exercises/NAME/starter.py)."
    ),
    list_all: bool = typer.Option(False, "--list", help="List the challenges and exit."),
    json_out: bool = typer.Option(False, "--json", help="Print the results as one JSON object."),
) -> None:
    """Grade a micro-challenge: run its scenario with your class, compare with the targets.

    Exit status 0 if every check passes, 1 if one fails, 2 for a usage error."""
    from lab.tools.grading.command import CheckUsageError, list_challenges, run_check

    if list_all:
        raise typer.Exit(list_challenges())
    if challenge is None:
        raise FlagError("name a challenge (bplab check --list shows them)")
    try:
        code = run_check(challenge, file, json_out)
    except CheckUsageError as error:
        raise FlagError(str(error)) from None
    raise typer.Exit(code)


# -- measurements ------------------------------------------------------------------------------
@app.command()
def bench(
    quick: bool = typer.Option(False, "--quick", help="A shortened run, under a minute."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
) -> None:
    """Measure the lab against raw ZeroMQ on this machine (docs/performance.md)."""
    from lab.tools.bench.perf import main as run_bench

    raise typer.Exit(run_bench(quick=quick, as_json=json_out))


@app.command()
def validate(
    quick: bool = typer.Option(False, "--quick", help="Short runs, wider tolerances."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
) -> None:
    """Check real runs against queueing theory: measured and theory side by side."""
    from lab.tools.bench.validate import main as run_validate

    raise typer.Exit(run_validate(quick=quick, as_json=json_out))


# -- entry points ------------------------------------------------------------------------------
def main(
    argv: Optional[List[str]] = None, prog_name: str = "bplab", role: Optional[str] = None
) -> None:
    """Run the CLI; usage errors become one line on stderr and exit status 2.

    With ``role`` the program *is* that subcommand (the workshop scripts).
    """
    command = typer.main.get_command(app)
    if role is not None:
        command = command.commands[role]
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        code = command.main(args=args, prog_name=prog_name, standalone_mode=False)
    except typer.Exit as done:
        sys.exit(done.exit_code)
    except UsageError as error:
        if not error.format_message():  # "bplab" alone: the help was shown, nothing failed
            sys.exit(0)
        ctx = error.ctx
        where = prog_name
        if ctx is not None and ctx.parent is not None and ctx.info_name != prog_name:
            where = f"{prog_name} {ctx.info_name}"
        sys.stderr.write(f"{where}: error: {error.format_message()}\n")
        sys.exit(2)
    except typer.Abort:
        sys.exit(130)
    except KeyboardInterrupt:
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


def run_module_role(module: int, role: str, argv: Optional[List[str]] = None) -> None:
    """Entry point of the workshop scripts: ``consumer.py`` is ``bplab consumer --module N``."""
    import os

    args = list(sys.argv[1:] if argv is None else argv)
    script = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else role
    main(["--module", str(module), *args], prog_name=script, role=role)
