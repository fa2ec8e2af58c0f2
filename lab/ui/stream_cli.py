"""``bplab consumer`` and ``bplab producer`` with ``--broker redis`` (Module 20's default).

The commands keep their shape and flags; with a broker, the flags that mean something for a
stream (rates, payload, batch, duration, ports, slowdowns) go to the stream processes, and
the broker's own flags (``--redis-url``, ``--maxlen``, ``--throttle-on-lag``...) are checked
here. Without ``--redis-url`` the consumer starts a private broker on base port + 4 and the
producer looks for it there.
"""

from __future__ import annotations

import math
from typing import Any, Dict, Optional

import typer

from lab.core.modules import get_module

UsageError = typer.BadParameter.__mro__[1]


class StreamFlagError(UsageError):
    """A broker flag that makes no sense (one line, exit 2)."""


def _positive(value: Optional[float], flag: str) -> None:
    if value is not None and not (value > 0 and math.isfinite(value)):
        raise StreamFlagError(f"{flag} must be a finite number > 0, got {value}")


def _url(flags: Dict[str, Any], port: int) -> Optional[str]:
    url = flags.get("redis_url")
    if url is not None and not url.startswith(("redis://", "rediss://", "unix://")):
        raise StreamFlagError(f"--redis-url takes redis://host:port/db, got {url!r}")
    return url


def _port(flags: Dict[str, Any], spec) -> int:
    port = flags.get("port") if flags.get("port") is not None else spec.port
    if not 1 <= port <= 65531:
        raise StreamFlagError(f"--port {port} is out of range: use 1..65531 (the broker is +4)")
    return port


def _maxlen(flags: Dict[str, Any]) -> Optional[int]:
    maxlen = flags.get("maxlen")
    if maxlen is not None and maxlen < 1:
        raise StreamFlagError(f"--maxlen must be at least 1, got {maxlen}")
    return maxlen


def _rate(text: Optional[str], flag: str, default: float) -> float:
    if text is None:
        return default
    if str(text).strip().lower() in ("max", "inf", "unlimited"):
        return math.inf
    try:
        value = float(text)
    except ValueError:
        raise StreamFlagError(f"{flag} takes messages per second or 'max', got {text!r}") from None
    _positive(value, flag)
    return value


def consumer(flags: Dict[str, Any]) -> None:
    from lab.processes.broker import POLICIES, BrokerUnavailable
    from lab.processes.net import PortInUse
    from lab.processes.stream_consumer import StreamConsumerRun, run_stream_consumer

    spec = get_module(flags["module"])
    defaults = spec.consumer
    if flags["consumers"] < 1 or flags["consumers"] > 64:
        raise StreamFlagError(f"--consumers must be between 1 and 64, got {flags['consumers']}")
    if flags["claim_idle_ms"] < 0:
        raise StreamFlagError(f"--claim-idle-ms must be >= 0, got {flags['claim_idle_ms']}")
    _positive(flags["maxmemory_mb"], "--maxmemory-mb")
    if flags["maxmemory_policy"] not in POLICIES:
        raise StreamFlagError(
            f"--maxmemory-policy {flags['maxmemory_policy']!r} is not allowed; choose one of: "
            + ", ".join(POLICIES)
        )
    port = _port(flags, spec)
    run = StreamConsumerRun(
        port=port,
        redis_url=_url(flags, port),
        process_rate=_rate(
            flags.get("process_rate"), "--process-rate", defaults.get("process_rate", 1000.0)
        ),
        consumers=flags["consumers"],
        claim_idle_ms=flags["claim_idle_ms"],
        maxmemory_mb=flags["maxmemory_mb"],
        maxmemory_policy=flags["maxmemory_policy"],
        maxlen=_maxlen(flags),
        ledger=flags.get("ledger"),
        broker_server=flags.get("broker_server") or "auto",
        bind=flags.get("bind", "127.0.0.1"),
        duration=flags.get("duration"),
        until_idle=flags.get("until_idle", False),
        json_out=flags.get("json_out", False),
        quiet=flags.get("quiet", False),
        slowdown_at=flags.get("slowdown_at"),
        slowdown_factor=flags.get("slowdown_factor", 4.0),
        slowdown_for=flags.get("slowdown_for"),
        record=flags.get("record"),
        parent_pid=flags.get("parent_pid"),
    )
    _positive(run.duration, "--duration")
    try:
        code = run_stream_consumer(run)
    except (BrokerUnavailable, PortInUse) as error:
        raise StreamFlagError(str(error)) from None
    raise typer.Exit(code)


def producer(flags: Dict[str, Any]) -> None:
    from lab.processes import plugins
    from lab.processes.broker import BROKER_PORT_OFFSET
    from lab.processes.stream_producer import StreamProducerRun, run_stream_producer

    spec = get_module(flags["module"])
    defaults = spec.producer
    if flags.get("rate") is not None and flags.get("mps") is not None:
        raise StreamFlagError("give either --rate (seconds between messages) or --mps, not both")
    if flags.get("rate") is not None:
        _positive(flags["rate"], "--rate")
        per_second = 1.0 / flags["rate"]
    else:
        per_second = _rate(flags.get("mps"), "--mps", defaults.get("messages_per_s", 1000.0))
    port = _port(flags, spec)
    host = flags.get("host", "127.0.0.1")
    url = _url(flags, port) or f"redis://{host}:{port + BROKER_PORT_OFFSET}/0"
    _positive(flags.get("target_lag_ms"), "--target-lag-ms")
    _positive(flags.get("duration"), "--duration")
    if flags.get("count") is not None and flags["count"] < 1:
        raise StreamFlagError(f"--count must be at least 1, got {flags['count']}")
    payload = flags.get("payload_bytes") or defaults.get("payload_bytes", 0)
    if not 0 <= payload <= 1_000_000:
        raise StreamFlagError(f"--payload-bytes must be between 0 and 1000000, got {payload}")
    if not 1 <= flags.get("batch", 500) <= 10_000:
        raise StreamFlagError(f"--batch must be between 1 and 10000, got {flags['batch']}")
    throttle = None
    if flags.get("throttle_file"):
        try:
            throttle = plugins.load(
                flags["throttle_file"],
                "throttle",
                {"target_lag_s": flags["target_lag_ms"] / 1000.0, "rate": per_second},
            )
        except plugins.PluginError as error:
            raise StreamFlagError(str(error)) from None
    run = StreamProducerRun(
        redis_url=url,
        port=port,
        host=host,
        rate=per_second,
        batch=min(flags.get("batch", 500), 10_000),
        maxlen=_maxlen(flags),
        payload_bytes=payload,
        throttle_on_lag=flags.get("throttle_on_lag", False),
        target_lag_s=flags["target_lag_ms"] / 1000.0,
        name=flags.get("name") or "",
        duration=flags.get("duration"),
        count=flags.get("count"),
        json_out=flags.get("json_out", False),
        quiet=flags.get("quiet", False),
        throttle=throttle,
        record=flags.get("record"),
        parent_pid=flags.get("parent_pid"),
    )
    raise typer.Exit(run_stream_producer(run))
