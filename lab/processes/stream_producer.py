"""Module 20's producer: paced ``XADD`` into a Redis stream, pipelined, with ``MAXLEN ~``.

Each entry carries the producer's name (``p``), its sequence number (``s``) and a payload
(``d``). Entries are sent in pipelined batches, as a real producer would, so the lab's
producer keeps up with raw ``redis-py`` (``docs/performance.md``).

What it reports: *added* (the broker said yes), *refused* (the broker said no: ``OOM
command not allowed`` when ``maxmemory`` is reached under ``noeviction``) and *unknown* (a
batch cut by a lost connection). When the broker stops answering it says ``broker down``
within about a second (every call has a 1 s timeout), keeps trying, and says ``broker back``
when it answers again. ``--throttle-on-lag`` reads the group's lag from the broker five
times a second and lets :class:`lab.core.stream_lag.LagThrottle` set the rate.

Its telemetry goes to the consumer's relay (base port + 2), as every lab producer's does.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from typing import Any, Dict, Optional

import zmq

from lab.core import protocol
from lab.core.stream_lag import LagThrottle, WindowRates
from lab.processes import net
from lab.processes.broker import connect
from lab.processes.procstats import ProcessStats
from lab.processes.runtime import ParentWatch, Periodic, Recorder, StopSignal, print_json, say
from lab.processes.stream_io import DEFAULT_GROUP, DEFAULT_STREAM, ensure_group, read_figures

TELEMETRY_INTERVAL = 0.1
LAG_INTERVAL = 0.2
RECONNECT_INTERVAL = 0.25
TICK_S = 0.005  # pacing grain: a paced producer sends what is due every 5 ms


@dataclass
class StreamProducerRun:
    redis_url: str
    port: int
    rate: float = 1000.0  # msg/s; inf = as fast as the broker takes them
    batch: int = 500
    maxlen: Optional[int] = None
    payload_bytes: int = 100
    throttle_on_lag: bool = False
    target_lag_s: float = 0.5
    stream: str = DEFAULT_STREAM
    group: str = DEFAULT_GROUP
    name: str = ""
    host: str = "127.0.0.1"
    duration: Optional[float] = None
    count: Optional[int] = None  # stop after adding this many
    json_out: bool = False
    quiet: bool = False
    throttle: Any = None  # a rule with update(lag_s, lag_messages, now) -> rate (the exercise)
    record: Optional[str] = None
    parent_pid: Optional[int] = None


class StreamProducer:
    def __init__(self, run: StreamProducerRun) -> None:
        self.run = run
        self.name = run.name or f"producer-{os.getpid()}"
        self.client = connect(run.redis_url)
        self.stop = StopSignal().install()  # first: a SIGTERM at start still ends in a summary
        self.ctx = zmq.Context()
        self.pub = net.telemetry_publisher(self.ctx)
        self.pub.connect(net.endpoint(run.host, run.port + net.TELEMETRY_IN_OFFSET))
        self.payload = b"x" * run.payload_bytes
        self.recorder = Recorder(run.record)
        self.stats = ProcessStats()
        self.rates = WindowRates()
        self.seq = 0
        self.added = self.refused = self.unknown = 0
        self.last_error = ""
        self.down_since: Optional[float] = None
        self.outages = 0
        self.first_refusal_s: Optional[float] = None
        self.lag: Dict[str, Any] = {}
        self.rate = run.rate
        self.throttle = run.throttle
        if run.throttle_on_lag and self.throttle is None:
            ceiling = run.rate if math.isfinite(run.rate) else 1e6
            self.throttle = LagThrottle(
                target_lag_s=run.target_lag_s, rate=min(100.0, ceiling), max_rate=ceiling
            )
        if self.throttle is not None:
            self.rate = float(getattr(self.throttle, "rate", self.rate))

    # -- one batch --------------------------------------------------------------------------
    def send(self, count: int, now: float) -> None:
        import redis

        pipe = self.client.pipeline(transaction=False)
        first = self.seq
        for i in range(count):
            fields = {"p": self.name, "s": first + i, "d": self.payload}
            if self.run.maxlen is not None:
                pipe.xadd(self.run.stream, fields, maxlen=self.run.maxlen, approximate=True)
            else:
                pipe.xadd(self.run.stream, fields)
        try:
            replies = pipe.execute(raise_on_error=False)
        except (redis.ConnectionError, redis.TimeoutError) as error:
            self.unknown += count
            self.seq += count
            self._went_down(str(error), now)
            return
        self.seq += count
        for reply in replies:
            if isinstance(reply, Exception):
                self.refused += 1
                self.last_error = _error_line(reply)
                if self.first_refusal_s is None:
                    self.first_refusal_s = now - self.started
                    self._say(f"broker refused a write: {self.last_error}")
            else:
                self.added += 1

    def _went_down(self, why: str, now: float) -> None:
        if self.down_since is None:
            self.down_since = now
            self.outages += 1
            self._say(f"broker down: {why}; retrying")

    def _try_reconnect(self, now: float) -> None:
        import redis

        try:
            self.client.ping()
        except redis.RedisError:
            return
        self._say(f"broker back after {now - self.down_since:.1f} s")
        self.down_since = None

    def _read_lag(self, now: float) -> None:
        import redis

        try:
            self.lag = read_figures(self.client, self.run.stream, self.run.group)
        except (redis.ConnectionError, redis.TimeoutError) as error:
            self._went_down(str(error), now)
            return
        except redis.ResponseError:
            return
        if self.throttle is not None:
            lag_s, lag_messages = self.lag.get("lag_s"), self.lag.get("lag_messages")
            self.rate = float(self.throttle.update(lag_s, lag_messages, now))

    # -- the loop ---------------------------------------------------------------------------
    def serve(self) -> Dict[str, Any]:
        import redis

        run = self.run
        self.started = now = time.monotonic()
        deadline = now + run.duration if run.duration else math.inf
        telemetry = Periodic(TELEMETRY_INTERVAL, now)
        lag_tick = Periodic(LAG_INTERVAL, now)
        try:
            ensure_group(self.client, run.stream, run.group)
        except (redis.ConnectionError, redis.TimeoutError) as error:
            self._went_down(str(error), now)
        credit, last = 0.0, now
        parent = ParentWatch(run.parent_pid, now)
        while not self.stop:
            now = time.monotonic()
            if now >= deadline:
                self.stop.set("duration")
                break
            if parent.parent_gone(now):
                self.stop.set("parent_gone")
                break
            if run.count is not None and self.added >= run.count:
                self.stop.set("count")
                break
            if telemetry.due(now):
                self._publish(now)
            if self.down_since is not None:
                time.sleep(RECONNECT_INTERVAL)
                self._try_reconnect(time.monotonic())
                credit, last = 0.0, time.monotonic()
                continue
            if lag_tick.due(now):
                self._read_lag(now)
            credit = min(credit + (now - last) * self.rate, float(run.batch))
            last = now
            due = int(credit)
            if run.count is not None:
                due = min(due, run.count - self.added)
            if due > 0:
                credit -= due
                self.send(due, now)
            else:
                time.sleep(TICK_S)
        self._publish(time.monotonic())
        return self.summary()

    def snapshot(self, now: float) -> Dict[str, Any]:
        up = now - self.started
        self.stats.refresh()
        return {
            "v": 1,
            "role": "producer",
            "id": self.name,
            "name": self.name,
            "module": 20,
            "t": time.time(),
            "uptime_s": up,
            "target_mps": self.rate if math.isfinite(self.rate) else 0.0,
            "rates": self.rates.update(now, {"produced": self.added, "refused": self.refused}),
            "rss_mb": self.stats.rss_mb,
            "cpu_pct": self.stats.cpu_pct,
            "totals": {
                "produced": self.seq,
                "added": self.added,
                "refused": self.refused,
                "unknown": self.unknown,
            },
            "broker": {
                "state": "down" if self.down_since is not None else "up",
                "lag_s": self.lag.get("lag_s"),
                "lag_messages": self.lag.get("lag_messages"),
                "throttle": self.throttle is not None,
            },
        }

    def _publish(self, now: float) -> None:
        snapshot = self.snapshot(now)
        self.recorder.write(snapshot)
        try:
            self.pub.send_multipart(protocol.encode_snapshot(snapshot), zmq.NOBLOCK)
        except zmq.Again:
            pass

    def summary(self) -> Dict[str, Any]:
        elapsed = time.monotonic() - self.started
        return {
            "role": "producer",
            "name": self.name,
            "produced": self.seq,
            "added": self.added,
            "refused": self.refused,
            "unknown": self.unknown,
            "last_error": self.last_error,
            "first_refusal_s": self.first_refusal_s,
            "outages": self.outages,
            "elapsed_s": elapsed,
            "added_per_s": self.added / elapsed if elapsed > 0 else 0.0,
            "final_rate": self.rate if math.isfinite(self.rate) else None,
            "stopped_by": self.stop.reason,
        }

    def close(self) -> None:
        self.recorder.close()
        self.pub.close(linger=0)
        self.ctx.term()
        self.client.close()

    def _say(self, text: str) -> None:
        if not self.run.quiet:
            say(f"producer: {text}")


def _error_line(error: Exception) -> str:
    """The broker's words; redis-py strips the ``OOM`` code off the one this module is about."""
    import redis

    text = str(error).split("\n")[0]
    if isinstance(error, redis.exceptions.OutOfMemoryError) and not text.startswith("OOM"):
        text = f"OOM {text}"
    return text


def run_stream_producer(run: StreamProducerRun) -> int:
    producer = StreamProducer(run)
    try:
        summary = producer.serve()
    finally:
        producer.close()
    if run.json_out:
        print_json(summary)
    elif not run.quiet:
        say(
            f"producer: added {summary['added']:,}, refused {summary['refused']:,}, "
            f"unknown {summary['unknown']:,} in {summary['elapsed_s']:.1f} s"
        )
    return 0
