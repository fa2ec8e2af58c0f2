"""Module 20's consumer: a consumer group reading a Redis stream, acking after processing.

``--consumers N`` runs N members of the group in this process, each on its own connection
and thread, each working at ``--process-rate`` (the lab's simulated service time). A member
reads with ``XREADGROUP ... >``, processes each entry, writes it to the ``--ledger`` file if
one is given (the "database" an at-least-once consumer updates), and only then ``XACK``s.
Every ``--claim-interval`` it first runs ``XAUTOCLAIM`` for entries another member left
pending longer than ``--claim-idle-ms``: a member that was SIGKILLed mid-run is taken over,
and what it processed but had not acked is processed again (a duplicate, never a loss).

The main thread publishes the lab's telemetry on the consumer's usual PUB socket (base port
+ 1) and relays producers' (base port + 2), so the ordinary dashboard works. The broker's
figures come from the broker itself (:func:`lab.processes.stream_io.read_figures`).

Every processed entry's latency, from its add (the stream id's milliseconds, the broker's
clock) to the end of its processing, goes into the summary (whole run) and the snapshot's
broker figures (last 5 s) as p50/p99/max.

Its control socket (base port + 3) takes ``slow``, ``restore``, ``stall`` and ``status``, so
the demo's keys work. Without ``--redis-url`` it starts a private broker on base port + 4
(``--broker-server`` picks which) and stops it at exit. ``--until-idle`` stops it once the
group is drained and nothing more arrived for 2 s.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, TextIO

import zmq

from lab.core import protocol, stream_lag
from lab.core.metrics import RecentLatency
from lab.processes import net
from lab.processes.broker import BROKER_PORT_OFFSET, PrivateBroker, connect
from lab.processes.procstats import ProcessStats
from lab.processes.runtime import ParentWatch, Periodic, Recorder, StopSignal, print_json, say
from lab.processes.stream_io import DEFAULT_GROUP, DEFAULT_STREAM, ensure_group, read_figures

TELEMETRY_INTERVAL = 0.1
IDLE_S = 2.0  # --until-idle: this long with nothing unread, nothing pending, nothing new
READ_BLOCK_MS = 100


@dataclass
class StreamConsumerRun:
    port: int
    redis_url: Optional[str] = None
    process_rate: float = 1000.0  # per member, msg/s
    consumers: int = 1
    claim_idle_ms: int = 2000
    claim_interval_s: float = 0.5
    stream: str = DEFAULT_STREAM
    group: str = DEFAULT_GROUP
    name: str = ""
    maxmemory_mb: float = 64.0
    maxmemory_policy: str = "noeviction"
    maxlen: Optional[int] = None  # shown on the dashboard; the producer trims
    ledger: Optional[str] = None
    broker_server: str = "auto"  # --broker-server: auto, redis, valkey or a binary's path
    bind: str = "127.0.0.1"
    duration: Optional[float] = None
    until_idle: bool = False  # stop once the group has been drained and idle for IDLE_S
    json_out: bool = False
    quiet: bool = False
    slowdown_at: Optional[float] = None
    slowdown_factor: float = 4.0
    slowdown_for: Optional[float] = None
    record: Optional[str] = None
    parent_pid: Optional[int] = None


class Members:
    """What the group members in this process share: the ledger, counters, the speed, and
    the per-message latency (add -> processed, on the broker's clock)."""

    def __init__(self, run: StreamConsumerRun, from_start: bool, started: float) -> None:
        self.run = run
        self.lock = threading.Lock()
        self.ledger = stream_lag.SeqLedger(from_start=from_start)
        self.in_progress = 0
        self.started = started
        self.errors = 0
        self.claimed_gone = 0  # claimed pending entries the broker had trimmed away meanwhile
        self.latency = RecentLatency(seconds=5)
        self.clock_offset_ms = 0.0  # the broker's clock minus ours, measured with TIME
        self.live_factor: Optional[float] = None  # set by the control socket (the demo's keys)
        self.stalled_until = 0.0
        self.file: Optional[TextIO] = None
        if run.ledger:
            self.file = open(run.ledger, "a", encoding="utf-8")  # noqa: SIM115 (closed in close())

    def slowdown(self, now: float) -> float:
        run = self.run
        if self.live_factor is not None:
            return self.live_factor
        if run.slowdown_at is None:
            return 1.0
        elapsed = now - self.started
        if elapsed < run.slowdown_at:
            return 1.0
        if run.slowdown_for is not None and elapsed >= run.slowdown_at + run.slowdown_for:
            return 1.0
        return run.slowdown_factor

    def delivered(self, entries, claimed: bool) -> None:
        with self.lock:
            for _, fields in entries:
                producer, seq = stream_lag.entry_seq(fields)
                if seq is not None:
                    self.ledger.delivered(producer, seq, claimed)
            self.in_progress += len(entries)

    def done(self, entries) -> None:
        """Record the processed entries (ledger file first, flushed): then they may be acked.
        Each one's latency runs from its id's time to now, both on the broker's clock."""
        done_ms = time.time() * 1000.0 + self.clock_offset_ms
        latencies = stream_lag.entry_latencies([entry_id for entry_id, _ in entries], done_ms)
        with self.lock:
            self.latency.record_many(time.monotonic(), latencies)
            lines = []
            for _, fields in entries:
                producer, seq = stream_lag.entry_seq(fields)
                if seq is not None:
                    self.ledger.processed_one(producer, seq)
                    lines.append(f"{producer} {seq}\n")
            self.in_progress -= len(entries)
            if self.file is not None:
                self.file.write("".join(lines))
                self.file.flush()

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


def _ack_trimmed(client, run: StreamConsumerRun, me: str) -> None:
    """Redis 6.2 claims pending entries that MAXLEN trimmed away as nil (redis-py loses their
    ids), and keeps them pending for ever: find this member's pending ids that are no longer
    in the stream and ack them, as there is nothing left to process."""
    pending = client.xpending_range(run.stream, run.group, "-", "+", 1000, consumername=me)
    ids = [row["message_id"] for row in pending]
    pipe = client.pipeline(transaction=False)
    for entry_id in ids:
        pipe.xrange(run.stream, min=entry_id, max=entry_id, count=1)
    gone = [entry_id for entry_id, found in zip(ids, pipe.execute()) if not found]
    if gone:
        client.xack(run.stream, run.group, *gone)


def member_loop(members: Members, url: str, me: str, stop: StopSignal) -> None:
    """One group member: claim what is stale, else read new entries; process; then ack."""
    import redis

    run = members.run
    client = connect(url)
    service_s = 1.0 / run.process_rate if math.isfinite(run.process_rate) else 0.0
    count = max(1, min(100, int(run.process_rate * 0.05) if service_s else 100))
    due = time.monotonic()
    next_claim, backlogged = due, False
    while not stop:
        try:
            entries, claimed = [], False
            now = time.monotonic()
            if now >= next_claim:
                next_claim = now + run.claim_interval_s
                reply = client.xautoclaim(
                    run.stream, run.group, me, run.claim_idle_ms, start_id="0-0", count=count
                )
                entries, deleted, nil = stream_lag.split_claim(reply)
                if nil:  # Redis 6.2 keeps them pending: ack them (Valkey, 7+ dropped them)
                    _ack_trimmed(client, run, me)
                if nil or deleted:
                    with members.lock:
                        members.claimed_gone += nil + len(deleted)
                claimed = bool(entries)
            if not entries:
                reply = client.xreadgroup(
                    run.group, me, {run.stream: ">"}, count=count, block=READ_BLOCK_MS
                )
                entries = reply[0][1] if reply else []
            if not entries:
                continue
            members.delivered(entries, claimed)
            if not backlogged:  # idle since the last batch: the simulated worker starts now
                due = max(due, time.monotonic())
            # a full batch means more were waiting: the next one starts where this one ends,
            # so the broker's round trips do not slow the simulated service rate
            backlogged = len(entries) >= count
            for _ in entries:
                due = max(due, members.stalled_until) + service_s * members.slowdown(due)
                wait = due - time.monotonic()
                if wait > 0.001:
                    time.sleep(wait)
            members.done(entries)
            client.xack(run.stream, run.group, *[entry_id for entry_id, _ in entries])
        except (redis.ConnectionError, redis.TimeoutError):
            with members.lock:
                members.errors += 1
            time.sleep(0.2)
        except redis.ResponseError:
            with members.lock:
                members.errors += 1
            try:
                ensure_group(client, run.stream, run.group)  # the stream was evicted
            except redis.RedisError:
                pass
            time.sleep(0.05)
    client.close()


class StreamConsumer:
    def __init__(self, run: StreamConsumerRun) -> None:
        self.run = run
        self.name = run.name or f"consumer-{os.getpid()}"
        self.session = uuid.uuid4().hex[:12]
        self.stop = StopSignal().install()  # before the broker starts: no orphan on SIGTERM
        self.broker: Optional[PrivateBroker] = None
        if run.redis_url is None:
            self.broker = PrivateBroker(
                port=run.port + BROKER_PORT_OFFSET,
                maxmemory_mb=run.maxmemory_mb,
                policy=run.maxmemory_policy,
                server=run.broker_server,
            ).start()
        self.url = run.redis_url or self.broker.url
        self.client = connect(self.url)
        self.ctx = zmq.Context()
        self.out = net.telemetry_publisher(self.ctx)
        net.bind(self.out, run.bind, run.port, net.TELEMETRY_OUT_OFFSET)
        self.relay = net.telemetry_subscriber(self.ctx)
        net.bind(self.relay, run.bind, run.port, net.TELEMETRY_IN_OFFSET)
        self.control = self.ctx.socket(zmq.ROUTER)
        self.control.setsockopt(zmq.LINGER, 0)
        net.bind(self.control, run.bind, run.port, net.CONTROL_OFFSET)
        self.recorder = Recorder(run.record)
        self.figures: Dict[str, Any] = {}
        self.broker_down = False
        self.stats = ProcessStats()
        self.rates = stream_lag.WindowRates()
        self._idle_count, self._idle_since = -1, 0.0

    def serve(self) -> Dict[str, Any]:

        run = self.run
        self.started = now = time.monotonic()
        created = ensure_group(self.client, run.stream, run.group)
        self.members = Members(run, from_start=created, started=now)
        threads: List[threading.Thread] = []
        for i in range(run.consumers):
            me = f"{self.name}-{i}"
            thread = threading.Thread(
                target=member_loop, args=(self.members, self.url, me, self.stop), daemon=True
            )
            thread.start()
            threads.append(thread)
        telemetry = Periodic(TELEMETRY_INTERVAL, now)
        deadline = now + run.duration if run.duration else math.inf
        parent = ParentWatch(run.parent_pid, now)
        while not self.stop:
            now = time.monotonic()
            if now >= deadline:
                self.stop.set("duration")
                break
            if parent.parent_gone(now):
                self.stop.set("parent_gone")
                break
            if self.relay.poll(timeout=int(TELEMETRY_INTERVAL * 500)):
                self._relay()
            self._serve_control(now)
            if telemetry.due(now):
                self._refresh_figures()
                self._publish(now)
                if run.until_idle and self._idle_long_enough(now):
                    self.stop.set("idle")
        for thread in threads:
            thread.join(timeout=2.0)
        self._refresh_figures()  # the summary's identity needs the backlog as of now
        return self.summary()

    def _idle_long_enough(self, now: float) -> bool:
        """``--until-idle``: something was processed, the group's lag is 0, and nothing more
        was processed for ``IDLE_S``: the producer has stopped and everything it added is
        done, so its stop ends the measurement."""
        with self.members.lock:
            processed = self.members.ledger.processed
        idle = processed > 0 and self.figures.get("lag_messages") == 0
        if not idle or processed != self._idle_count:
            self._idle_count, self._idle_since = processed, now
            return False
        return now - self._idle_since >= IDLE_S

    def _refresh_figures(self) -> None:
        import redis

        try:
            asked = time.time() * 1000.0
            self.figures = read_figures(self.client, self.run.stream, self.run.group)
            answered = time.time() * 1000.0
            # TIME is the pipeline's first command: the broker read its clock about midway
            self.members.clock_offset_ms = self.figures["broker_time_ms"] - (asked + answered) / 2
            self.broker_down = False
        except (redis.ConnectionError, redis.TimeoutError):
            self.broker_down = True
        except redis.ResponseError:
            pass

    def _relay(self) -> None:
        while True:
            frames = net.recv_nowait(self.relay)
            if frames is None:
                return
            if len(frames) == 2 and frames[0] == protocol.TELEMETRY_TOPIC:
                try:
                    self.out.send_multipart(frames, zmq.NOBLOCK)
                except zmq.Again:
                    pass

    def _serve_control(self, now: float) -> None:
        """The demo's keys and ``bplab ctl``: slow, restore, stall and status; the other
        commands belong to the in-process queue of the earlier modules."""
        while True:
            frames = net.recv_nowait(self.control)
            if frames is None:
                return
            if len(frames) < 2:
                continue  # not a request: ignored, never fatal
            try:
                request = json.loads(frames[-1])
                reply = self._command(request if isinstance(request, dict) else {}, now)
            except (ValueError, TypeError) as error:
                reply = {"ok": False, "error": f"bad request: {error}"}
            try:
                self.control.send_multipart([*frames[:-1], json.dumps(reply).encode()], zmq.NOBLOCK)
            except zmq.Again:
                pass

    def _command(self, request: Dict[str, Any], now: float) -> Dict[str, Any]:
        cmd, members = request.get("cmd"), self.members
        if cmd == "slow":
            members.live_factor = float(request.get("value", 4.0))
            if not (members.live_factor > 0 and math.isfinite(members.live_factor)):
                members.live_factor = None
                return {"ok": False, "error": "slow takes a factor > 0"}
        elif cmd == "restore":
            members.live_factor, members.stalled_until = 1.0, 0.0
        elif cmd == "stall":
            seconds = float(request.get("value", 3.0))
            members.stalled_until = time.monotonic() + max(0.0, min(seconds, 3600.0))
        elif cmd != "status":
            return {"ok": False, "error": f"{cmd!r} does not apply to a broker (module 20)"}
        return {"ok": True, "mode": "stream", "slowdown": members.slowdown(now)}

    def counts(self) -> Dict[str, int]:
        members = self.members
        with members.lock:
            ledger = members.ledger
            return {
                "processed": ledger.processed,
                "processed_unique": ledger.processed_unique,
                "duplicates": ledger.duplicates,
                "redelivered": ledger.redelivered,
                "trimmed": ledger.trimmed(members.in_progress),
                "in_progress": members.in_progress,
                "errors": members.errors,
                "claimed_gone": members.claimed_gone,
            }

    def latency(self, now: Optional[float] = None) -> Dict[str, Optional[float]]:
        """p50/p99/max in ms of the last 5 s (``now`` given) or of the whole run; None if no
        message was processed."""
        with self.members.lock:
            recent = self.members.latency
            hist = recent.merged(now) if now is not None else recent.total()
        if not hist.count:
            return {"latency_p50_ms": None, "latency_p99_ms": None, "latency_max_ms": None}
        return {
            "latency_p50_ms": hist.percentile(50) * 1e3,
            "latency_p99_ms": hist.percentile(99) * 1e3,
            "latency_max_ms": hist.max * 1e3,
        }

    def snapshot(self, now: float) -> Dict[str, Any]:
        """The lab's consumer snapshot, so the ordinary dashboard works: the backlog in the
        broker is the depth, MAXLEN the capacity (none: unbounded), trimmed the dropped."""
        counts = self.counts()
        figures = dict(self.figures)
        figures.update(counts)
        newest = figures.get("newest_seq")
        delivered = counts["processed"] + counts["in_progress"]
        # arrivals from the newest entry's number (one producer numbers them)
        arrived = newest + 1 if isinstance(newest, int) else delivered
        totals = {"received": arrived, "processed": counts["processed"]}
        totals["dropped"] = counts["trimmed"]
        figures["state"] = "down" if self.broker_down else "up"
        figures["maxlen"] = self.run.maxlen
        figures["consumers"] = self.run.consumers
        figures["url"] = self.url
        figures.update(self.latency(now))
        lag = figures.get("lag_messages")
        self.stats.refresh()
        slowdown = self.members.slowdown(now)
        return {
            "v": 1,
            "role": "consumer",
            "id": self.name,
            "session": self.session,
            "module": 20,
            "port": self.run.port,
            "mode": "drop-oldest" if self.run.maxlen else "unbounded",
            "t": time.time(),
            "uptime_s": now - self.started,
            "depth": lag if isinstance(lag, int) else 0,
            "capacity": self.run.maxlen,
            "oldest_age_s": figures.get("lag_s") or 0.0,
            # the speed the group has now, as every lab consumer reports it (the graders use it)
            "service_rate": self.run.process_rate * self.run.consumers / slowdown,
            "slowdown": slowdown,
            "rss_mb": self.stats.rss_mb,
            "cpu_pct": self.stats.cpu_pct,
            "rates": self.rates.update(now, totals),
            "totals": totals,
            "broker": figures,
        }

    def _publish(self, now: float) -> None:
        snapshot = self.snapshot(now)
        self.recorder.write(snapshot)
        try:
            self.out.send_multipart(protocol.encode_snapshot(snapshot), zmq.NOBLOCK)
        except zmq.Again:
            pass

    def identity(self, counts: Dict[str, int]) -> Optional[Dict[str, int]]:
        """The accounting identity, when this process read the group from its start and one
        producer numbered the entries (added = the newest number + 1); else None."""
        newest, backlog = self.figures.get("newest_seq"), self.figures.get("lag_messages")
        producers = len(self.members.ledger.highest)
        if not self.members.ledger.from_start or producers > 1 or newest is None:
            return None
        if backlog is None:
            return None
        unique, trimmed = counts["processed_unique"], counts["trimmed"]
        return stream_lag.stream_identity(newest + 1, unique, trimmed, backlog)

    def summary(self) -> Dict[str, Any]:
        elapsed = time.monotonic() - self.started
        counts = self.counts()
        return {
            "identity": self.identity(counts),
            "role": "consumer",
            "name": self.name,
            **counts,
            "consumers": self.run.consumers,
            "elapsed_s": elapsed,
            "processed_per_s": counts["processed"] / elapsed if elapsed > 0 else 0.0,
            **self.latency(),
            "broker": {k: v for k, v in self.figures.items() if not isinstance(v, dict)},
            "stopped_by": self.stop.reason,
        }

    def close(self) -> None:
        if hasattr(self, "members"):
            self.members.close()
        self.recorder.close()
        self.out.close(linger=0)
        self.relay.close(linger=0)
        self.control.close(linger=0)
        self.ctx.term()
        self.client.close()
        if self.broker is not None:
            self.broker.stop()


def latency_words(summary: Dict[str, Any]) -> str:
    """``, latency add -> processed p50 ... ms, p99 ... ms`` for a summary line ('' if none)."""
    p50, p99 = summary.get("latency_p50_ms"), summary.get("latency_p99_ms")
    if p50 is None or p99 is None:
        return ""
    return f", latency add -> processed p50 {p50:,.1f} ms, p99 {p99:,.1f} ms"


def run_stream_consumer(run: StreamConsumerRun) -> int:
    consumer = StreamConsumer(run)
    try:
        summary = consumer.serve()
    finally:
        consumer.close()
    if run.json_out:
        print_json(summary)
    elif not run.quiet:
        say(
            f"consumer: processed {summary['processed']:,} ({summary['processed_unique']:,} "
            f"unique, {summary['duplicates']:,} duplicates, {summary['redelivered']:,} "
            f"redelivered), trimmed {summary['trimmed']:,}" + latency_words(summary)
        )
    return 0
