"""Module 18's transport-mode consumer: a PULL socket and one worker, no flow control at all.

It binds PULL on the data port (base port) with ``RCVHWM = --hwm`` and reads one message
only when its worker is free (``lab.core.transport.TransportWorker``, the lab's exact
service times). It never answers the producer: the only backpressure is ZeroMQ's
high-water marks and the kernel's TCP buffers. The lab's telemetry sockets stay (PUB on
base + 1, producers' snapshots relayed from base + 2), so the ordinary dashboard works; the
producer's relayed snapshot tells this process how many were sent and when a send was first
refused, so its own snapshot can say how many messages hide in the buffers.

``--ledger FILE`` appends each processed sequence number (flushed every loop turn): after a
SIGKILL it is the exact record of what the dead consumer finished.
"""

from __future__ import annotations

import math
import os
import random
import time
import uuid
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, TextIO, Tuple

import zmq

from lab.core import protocol, telemetry
from lab.core.service import DISTRIBUTIONS, ServiceModel
from lab.core.stream_lag import WindowRates
from lab.core.transport import (
    DEFAULT_HWM,
    TRANSPORT_MODE,
    KernelQueues,
    ReceiveLog,
    TransportWorker,
    hidden_at_block,
    hidden_figures,
)
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
from lab.processes.transport_io import kernel_source, read_kernel_queues

TELEMETRY_INTERVAL = 0.1
KERNEL_INTERVAL = 0.5  # ss costs a process start: twice a second is plenty for a panel


@dataclass
class TransportConsumerRun(RunOptions):
    port: int
    module: int = 12
    hwm: int = DEFAULT_HWM
    process_rate: float = 100.0
    service_dist: str = "fixed"
    seed: int = 0
    bind: str = LOOPBACK
    ledger: Optional[str] = None
    duration: Optional[float] = None
    json_out: bool = False
    quiet: bool = False
    record: Optional[str] = None
    parent_pid: Optional[int] = None

    def check_own(self) -> None:
        if not 1 <= self.hwm <= 10_000_000:
            raise ValueError(f"--hwm must be between 1 and 10000000, got {self.hwm}")
        if not (self.process_rate > 0 and math.isfinite(self.process_rate)):
            raise ValueError(f"--process-rate must be a finite number > 0, got {self.process_rate}")
        if self.service_dist not in DISTRIBUTIONS:
            raise ValueError(f"--service-dist must be one of: {', '.join(DISTRIBUTIONS)}")


class TransportConsumer:
    """Owns the sockets and the loop; one instance per process."""

    def __init__(self, run: TransportConsumerRun) -> None:
        self.run = run
        self.name = f"consumer-{os.getpid()}"
        self.session = uuid.uuid4().hex[:12]
        self.stop = StopSignal().install()
        self.ctx = zmq.Context()
        self.pull = self.ctx.socket(zmq.PULL)
        self.pull.setsockopt(zmq.LINGER, 0)
        self.pull.setsockopt(zmq.RCVHWM, run.hwm)  # before bind: it applies to new pipes
        self.pull.setsockopt(zmq.MAXMSGSIZE, net.MAX_DATA_MESSAGE)
        net.bind(self.pull, run.bind, run.port, net.DATA_OFFSET)
        self.out = net.telemetry_publisher(self.ctx)
        net.bind(self.out, run.bind, run.port, net.TELEMETRY_OUT_OFFSET)
        self.relay = net.telemetry_subscriber(self.ctx)
        net.bind(self.relay, run.bind, run.port, net.TELEMETRY_IN_OFFSET)
        self.recorder = Recorder(run.record)
        self.ledger: Optional[TextIO] = None
        if run.ledger:
            self.ledger = open(run.ledger, "a", encoding="utf-8")  # noqa: SIM115 (close())
        model = ServiceModel(run.process_rate, run.service_dist, random.Random(run.seed))
        self.started = time.monotonic()
        self.worker = TransportWorker(model, self.started)
        self.log = ReceiveLog()
        self.malformed = 0
        self.producer: Optional[Dict[str, Any]] = None  # the last producer snapshot's transport
        self.kernel: Optional[KernelQueues] = None
        self.stats = ProcessStats()
        self.rates = WindowRates()

    # -- the loop ---------------------------------------------------------------------------
    def serve(self) -> Dict[str, Any]:
        run, now = self.run, self.started
        deadline = now + run.duration if run.duration else math.inf
        telemetry_tick = Periodic(TELEMETRY_INTERVAL, now)
        kernel_tick = Periodic(KERNEL_INTERVAL, now)
        parent = ParentWatch(run.parent_pid, now)
        busy, free = zmq.Poller(), zmq.Poller()  # a busy worker does not wait for data
        busy.register(self.relay, zmq.POLLIN)
        free.register(self.relay, zmq.POLLIN)
        free.register(self.pull, zmq.POLLIN)
        while not self.stop:
            now = time.monotonic()
            if now >= deadline:
                self.stop.set("duration")
                break
            if parent.parent_gone(now):
                self.stop.set("parent_gone")
                break
            self._work(now)
            self._relay()
            if kernel_tick.due(now):
                self.kernel = read_kernel_queues(run.port)
            if telemetry_tick.due(now):
                self._publish(now)
            # wake for the worker's finish, a message when it is free, or the next snapshot
            wake = min(telemetry_tick.next_at, self.worker.next_event() or math.inf)
            poller = free if self.worker.free else busy
            poller.poll(timeout=max(0, int(math.ceil((wake - time.monotonic()) * 1000))))
        self._publish(time.monotonic())
        return self.summary()

    def _work(self, now: float) -> None:
        """Finish what is done by ``now``; while the worker is free, read one message."""
        lines: List[str] = []
        worker = self.worker
        while True:
            seq = worker.finish(now)
            if seq is not None:
                lines.append(f"{seq}\n")
            if not worker.free:
                break
            try:
                frame = self.pull.recv(zmq.NOBLOCK)
            except zmq.Again:
                worker.found_nothing()
                break
            try:
                _, records = protocol.decode_data_frame(frame)
            except protocol.ProtocolError:
                self.malformed += 1
                continue
            if not records:
                self.malformed += 1
                continue
            worker.take(records[0].seq, now)
            self.log.add(time.time())
        if lines and self.ledger is not None:
            self.ledger.write("".join(lines))
            self.ledger.flush()

    def _relay(self) -> None:
        """Forward producers' snapshots to the visualizers; keep the transport figures."""
        while True:
            frames = net.recv_nowait(self.relay)
            if frames is None:
                return
            if len(frames) != 2 or frames[0] != protocol.TELEMETRY_TOPIC:
                continue
            try:
                self.out.send_multipart(frames, zmq.NOBLOCK)
            except zmq.Again:
                pass
            try:
                snap = protocol.decode_snapshot(frames)
            except (protocol.ProtocolError, telemetry.TelemetryError):
                continue
            if snap["role"] == "producer" and snap.get("transport") is not None:
                self.producer = dict(snap["transport"])

    # -- what it reports --------------------------------------------------------------------
    def figures(self) -> Dict[str, Any]:
        """The ``transport`` object of the snapshot: hidden now and at the first block."""
        producer = self.producer or {}
        block = _block(producer, "sent_at_block", "block_wall")
        first = _block(producer, "sent_at_first_block", "first_block_wall")
        worker = self.worker
        payload = producer.get("payload_bytes")
        figures = hidden_figures(
            producer.get("sent"), worker.received, worker.processed, self.kernel, payload
        )
        figures.update(
            hwm=self.run.hwm,
            payload_bytes=payload,
            hidden_at_block=hidden_at_block(block, self.log),
            sent_at_block=None if block is None else block[0],
            hidden_at_first_block=hidden_at_block(first, self.log),
            producer_blocked=producer.get("blocked"),
            blocked_s=producer.get("blocked_s"),
            blocked_for_s=producer.get("blocked_for_s"),
        )
        return figures

    def snapshot(self, now: float) -> Dict[str, Any]:
        worker = self.worker
        totals = {"received": worker.received, "accepted": worker.received}
        totals["processed"] = worker.processed
        self.stats.refresh()
        return {
            "v": 1,
            "role": "consumer",
            "id": self.name,
            "session": self.session,
            "module": self.run.module,
            "port": self.run.port,
            "mode": TRANSPORT_MODE,
            "t": time.time(),
            "uptime_s": now - self.started,
            "depth": 0,  # the application holds nothing but the message in service
            "capacity": 1,
            "service_rate": self.run.process_rate,
            "rates": self.rates.update(now, totals),
            "totals": totals,
            "malformed": self.malformed,
            "rss_mb": self.stats.rss_mb,
            "cpu_pct": self.stats.cpu_pct,
            "transport": self.figures(),
        }

    def _publish(self, now: float) -> None:
        snapshot = self.snapshot(now)
        self.recorder.write(snapshot)
        try:
            self.out.send_multipart(protocol.encode_snapshot(snapshot), zmq.NOBLOCK)
        except zmq.Again:
            pass

    def summary(self) -> Dict[str, Any]:
        elapsed = time.monotonic() - self.started
        return {
            "role": "consumer",
            "name": self.name,
            "mode": TRANSPORT_MODE,
            "received": self.worker.received,
            "processed": self.worker.processed,
            "malformed": self.malformed,
            "process_rate": self.run.process_rate,
            "elapsed_s": elapsed,
            "kernel_source": kernel_source(),
            "transport": self.figures(),
            "stopped_by": self.stop.reason,
        }

    def close(self) -> None:
        if self.ledger is not None:
            self.ledger.close()
        self.recorder.close()
        for sock in (self.pull, self.out, self.relay):
            sock.close(linger=0)
        self.ctx.term()


def _block(producer: Dict[str, Any], sent: str, wall: str) -> Optional[Tuple[int, float]]:
    """(sent, wall time) of a block the producer's snapshot reports, if it reports one."""
    if producer.get(sent) is None or producer.get(wall) is None:
        return None
    return int(producer[sent]), float(producer[wall])


def run_transport_consumer(run: TransportConsumerRun) -> int:
    consumer = TransportConsumer(run)
    try:
        summary = consumer.serve()
    finally:
        consumer.close()
    if run.json_out:
        print_json(summary)
    elif not run.quiet:
        figures = summary["transport"]
        say(
            f"consumer: received {summary['received']:,}, processed {summary['processed']:,}; "
            f"hidden in transport buffers at the last refused send: "
            f"{figures['hidden_at_block'] if figures['hidden_at_block'] is not None else '-'}"
        )
    return 0
