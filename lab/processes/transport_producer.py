"""Module 18's transport-mode producer: a PUSH socket, non-blocking sends, nothing else.

It connects PUSH (``SNDHWM = --hwm``) to the consumer's data port and sends one DATA frame
of one record per message, paced by a deadline schedule (``--mps``, or ``max``). It never
hears from the consumer: a send that succeeds is all it knows. When ZeroMQ refuses a send
(EAGAIN: its pipe is full because every buffer behind it is full) the producer is
*blocked*; it waits for the socket to become writable again. The first such moment is
remembered, and the latest (``lab.core.transport.TransportSender``), and published in
its snapshot (base port + 2), where the consumer reads it.

The schedule starts once the TCP connection is up (a socket monitor's handshake event):
before that ZeroMQ would fill its own pipe to SNDHWM and refuse, a block that says "no
consumer yet", not "every buffer is full".
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from typing import Any, Dict, Optional

import zmq
from zmq.utils.monitor import recv_monitor_message

from lab.core import protocol
from lab.core.stream_lag import WindowRates
from lab.core.transport import DEFAULT_HWM, TRANSPORT_MODE, TransportSender
from lab.processes import net
from lab.processes.procstats import ProcessStats
from lab.processes.runtime import (
    LOOPBACK,
    ParentWatch,
    Periodic,
    Recorder,
    RunOptions,
    StopSignal,
    print_json,
    say,
)

TELEMETRY_INTERVAL = 0.1
MAX_BURST = 2000  # sends per loop turn at most, so snapshots and signals stay on time
MAX_PAYLOAD = 1024 * 1024


@dataclass
class TransportProducerRun(RunOptions):
    port: int
    module: int = 12
    host: str = LOOPBACK
    hwm: int = DEFAULT_HWM
    rate: float = math.inf  # messages per second; inf: as fast as the socket takes them
    payload_bytes: int = 100
    count: Optional[int] = None
    name: Optional[str] = None
    duration: Optional[float] = None
    json_out: bool = False
    quiet: bool = False
    record: Optional[str] = None
    parent_pid: Optional[int] = None

    def check_own(self) -> None:
        if not 1 <= self.hwm <= 10_000_000:
            raise ValueError(f"--hwm must be between 1 and 10000000, got {self.hwm}")
        if not self.rate > 0:
            raise ValueError(f"--mps must be > 0 or 'max', got {self.rate}")
        if not 0 <= self.payload_bytes <= MAX_PAYLOAD:
            raise ValueError(f"--payload-bytes must be between 0 and {MAX_PAYLOAD}")
        if self.count is not None and self.count < 1:
            raise ValueError(f"--count must be at least 1, got {self.count}")


class TransportProducer:
    """Owns the sockets and the loop; one instance per process."""

    def __init__(self, run: TransportProducerRun) -> None:
        self.run = run
        self.name = run.name or f"producer-{os.getpid()}"
        self.stop = StopSignal().install()
        self.ctx = zmq.Context()
        self.push = self.ctx.socket(zmq.PUSH)
        self.push.setsockopt(zmq.LINGER, 0)  # at exit, what the pipe holds is dropped
        self.push.setsockopt(zmq.SNDHWM, run.hwm)
        # the monitor first: a handshake done before it was attached would never be seen
        self.monitor = self.push.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED)
        self.push.connect(net.endpoint(run.host, run.port + net.DATA_OFFSET))
        self.pub = net.telemetry_publisher(self.ctx)
        self.pub.connect(net.endpoint(run.host, run.port + net.TELEMETRY_IN_OFFSET))
        self.payload = b"x" * run.payload_bytes
        self.recorder = Recorder(run.record)
        self.stats = ProcessStats()
        self.rates = WindowRates()
        self.started = time.monotonic()
        self.sender = TransportSender(run.rate, self.started)
        self.connected_after_s: Optional[float] = None

    def _wait_connected(self, deadline: float, parent: ParentWatch) -> None:
        """Until the data connection's handshake is done (or a stop): then the schedule starts."""
        monitor = self.monitor
        try:
            while not self.stop:
                now = time.monotonic()
                if now >= deadline:
                    self.stop.set("duration")
                elif parent.parent_gone(now):
                    self.stop.set("parent_gone")
                elif monitor.poll(int(TELEMETRY_INTERVAL * 1000)):
                    recv_monitor_message(monitor)
                    self.connected_after_s = time.monotonic() - self.started
                    self.sender = TransportSender(self.run.rate, time.monotonic())
                    return
                else:
                    self._publish(now)
        finally:
            self.push.disable_monitor()
            monitor.close(linger=0)

    def serve(self) -> Dict[str, Any]:
        run, now = self.run, self.started
        deadline = now + run.duration if run.duration else math.inf
        parent = ParentWatch(run.parent_pid, now)
        self._wait_connected(deadline, parent)
        telemetry_tick = Periodic(TELEMETRY_INTERVAL, time.monotonic())
        while not self.stop:
            now = time.monotonic()
            if now >= deadline:
                self.stop.set("duration")
                break
            if parent.parent_gone(now):
                self.stop.set("parent_gone")
                break
            if run.count is not None and self.sender.sent >= run.count:
                self.stop.set("count")
                break
            if telemetry_tick.due(now):
                self._publish(now)
            more = self._send_owed(now)
            if more:
                continue
            wake = telemetry_tick.next_at
            if not self.sender.blocked:
                wake = min(wake, self.sender.next_due())
            timeout = max(0, int(math.ceil((wake - time.monotonic()) * 1000)))
            if self.sender.blocked:
                self.push.poll(timeout, zmq.POLLOUT)  # writable again: some room freed
            elif timeout:
                time.sleep(timeout / 1000)
        self._publish(time.monotonic())
        return self.summary()

    def _send_owed(self, now: float) -> bool:
        """Send what is due, up to a burst; True when more is owed and the socket took all."""
        sender = self.sender
        owed = sender.owed(now)
        if self.run.count is not None:
            owed = min(owed, self.run.count - sender.sent)
        burst = int(min(owed, MAX_BURST))
        wall = time.time()
        for _ in range(burst):
            record = protocol.Record(sender.sent, now, wall, 0, 0, self.payload)
            try:
                self.push.send(protocol.encode_data([record], sender.sent), zmq.NOBLOCK)
            except zmq.Again:
                sender.refused(now, time.time())
                return False
            sender.sent_one(now)
        return owed > burst

    def status(self, now: float) -> Dict[str, Any]:
        status = self.sender.status(now)
        status.update(hwm=self.run.hwm, payload_bytes=self.run.payload_bytes)
        return status

    def snapshot(self, now: float) -> Dict[str, Any]:
        sent = self.sender.sent
        owed = self.sender.owed(now)
        self.stats.refresh()
        return {
            "v": 1,
            "role": "producer",
            "id": self.name,
            "name": self.name,
            "module": self.run.module,
            "t": time.time(),
            "uptime_s": now - self.started,
            "target_mps": self.run.rate if math.isfinite(self.run.rate) else None,
            "rates": self.rates.update(now, {"produced": sent}),
            "totals": {"produced": sent},
            "pending": int(owed) if math.isfinite(owed) else 0,
            "consumer_mode": TRANSPORT_MODE,
            "rss_mb": self.stats.rss_mb,
            "cpu_pct": self.stats.cpu_pct,
            "transport": self.status(now),
        }

    def _publish(self, now: float) -> None:
        snapshot = self.snapshot(now)
        self.recorder.write(snapshot)
        try:
            self.pub.send_multipart(protocol.encode_snapshot(snapshot), zmq.NOBLOCK)
        except zmq.Again:
            pass

    def summary(self) -> Dict[str, Any]:
        now = time.monotonic()
        elapsed = now - self.started
        return {
            "role": "producer",
            "name": self.name,
            "mode": TRANSPORT_MODE,
            "produced": self.sender.sent,
            "elapsed_s": elapsed,
            "connected_after_s": self.connected_after_s,
            "transport": self.status(now),
            "stopped_by": self.stop.reason,
        }

    def close(self) -> None:
        self.recorder.close()
        self.push.close(linger=0)
        self.pub.close(linger=0)
        self.ctx.term()


def run_transport_producer(run: TransportProducerRun) -> int:
    producer = TransportProducer(run)
    try:
        summary = producer.serve()
    finally:
        producer.close()
    if run.json_out:
        print_json(summary)
    elif not run.quiet:
        status = summary["transport"]
        first = status["sent_at_first_block"]
        say(
            f"producer: sent {summary['produced']:,}; first refused send after "
            f"{first if first is not None else '-'}, blocked {status['blocked_s']:.1f} s"
        )
    return 0
