"""The producer process: a DEALER socket around :class:`~lab.core.producer_core.ProducerCore`.

Each turn: let the core make what came due, send as many DATA frames as the socket, the
credit and the frame interval allow (one frame carries a whole batch), read verdicts, publish
a snapshot ten times a second, and sleep until the next deadline. There is no sleep per
message: at 100,000 msg/s a frame of 100 records goes every millisecond, however often the
verdicts wake the loop (``ProducerConfig.frame_interval_s``).

The DEALER uses ``IMMEDIATE`` so that nothing is queued for a consumer that is not there:
while the consumer is down, messages stay in the core's bounded outbox, heartbeats keep
knocking, and ZeroMQ reconnects with backoff by itself when the consumer comes back.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any, Dict, Optional

import zmq

from lab.core import protocol
from lab.core.config import ProducerConfig
from lab.core.producer_core import ProducerCore
from lab.processes import net, plugins, security
from lab.processes.clock import MonotonicClock
from lab.processes.procstats import ProcessStats
from lab.processes.runtime import (
    LOOPBACK,
    ParentWatch,
    Periodic,
    Recorder,
    RunOptions,
    StopSignal,
    change_link,
    check_link_schedule,
    print_json,
    retune_link,
    say,
)

TELEMETRY_INTERVAL = 0.1
MAX_FRAMES_PER_TURN = 64


@dataclass
class ProducerRun(RunOptions):
    """How to run a producer process (what the CLI flags say beyond the core's config).

    ``ProducerRun.for_module(spec, **flags)`` builds it from flags and checks it."""

    port: int
    host: str = LOOPBACK
    duration: Optional[float] = None
    json_out: bool = False
    record: Optional[str] = None
    parent_pid: Optional[int] = None
    quiet: bool = False
    drain_timeout: float = 2.0
    keys: Optional[Any] = None  # security.ClientKeys: the classroom's CURVE server key
    retry_file: Optional[str] = None  # FILE.py[:Class]: a person's retry policy (exercises)
    limiter_file: Optional[str] = None  # FILE.py[:Class]: a person's rate limiter
    link_delay_ms: float = 0.0  # a slow link: every frame from the consumer arrives this late
    link_delay_change_at: Optional[float] = None  # seconds after the start: the delay changes
    link_delay_change_ms: Optional[float] = None  # ... to this (Module 18's challenge)

    def check_own(self) -> None:
        check_link_schedule(
            self.link_delay_ms, self.link_delay_change_at, self.link_delay_change_ms
        )

    def load_plugins(self, config: ProducerConfig) -> None:
        """Put the classes of --retry-file and --limiter-file into ``config`` (raises
        ``plugins.PluginError`` with one line if a file will not do)."""
        if self.retry_file:
            config.retry_plugin = plugins.load(self.retry_file, "retry", {"seed": config.seed})
        if self.limiter_file:
            offered: Dict[str, Any] = {"now": 0.0}
            if config.consumer_rate is not None:  # else the class's own default stands
                offered["consumer_rate"] = config.consumer_rate
            config.limiter_plugin = plugins.load(self.limiter_file, "limiter", offered)


class ProducerProcess:
    def __init__(self, config: ProducerConfig, run: ProducerRun) -> None:
        self.clock = MonotonicClock()
        now = self.clock.now()
        config.epoch_offset = self.clock.to_epoch(0.0)
        config.extra.setdefault("pid", os.getpid())
        if not config.name:
            config.name = f"producer-{os.getpid()}"
        self.core = ProducerCore(config, now)
        self.run_options = run
        self.stats = ProcessStats()
        self.stop = StopSignal()
        self.recorder = Recorder(run.record)
        # Frames from the consumer wait here for the link's delay (one wait for all of them).
        self.link = retune_link(None, run.link_delay_ms)
        self.ctx = zmq.Context()
        self.dealer = self.ctx.socket(zmq.DEALER)
        net.data_socket_options(self.dealer)
        self.dealer.setsockopt(zmq.SNDHWM, 100)
        self.dealer.setsockopt(zmq.IMMEDIATE, 1)
        self.dealer.setsockopt(zmq.ROUTING_ID, security.routing_id(self.core.name, run.keys))
        self.dealer.setsockopt(zmq.RECONNECT_IVL, 100)
        self.dealer.setsockopt(zmq.RECONNECT_IVL_MAX, 2000)
        security.secure_client(self.dealer, run.keys)
        self.dealer.connect(net.endpoint(run.host, run.port + net.DATA_OFFSET))
        # A closed connection means the consumer is gone (killed, most likely): notice it at
        # once instead of after consumer_timeout_s of silence.
        self.monitor = self.dealer.get_monitor_socket(zmq.EVENT_DISCONNECTED)
        self.pub = net.telemetry_publisher(self.ctx)
        security.secure_client(self.pub, run.keys)
        self.pub.connect(net.endpoint(run.host, run.port + net.TELEMETRY_IN_OFFSET))
        self._said_down = False

    def serve(self) -> Dict[str, Any]:
        run = self.run_options
        core = self.core
        started = self.clock.now()
        deadline = started + run.duration if run.duration else math.inf
        telemetry = Periodic(TELEMETRY_INTERVAL, started)
        watch = ParentWatch(run.parent_pid, started)
        drain_until = math.inf
        poller = zmq.Poller()
        poller.register(self.monitor, zmq.POLLIN)
        if not run.quiet:
            rate = core.target_rate(started)
            pace = "as fast as possible" if math.isinf(rate) else f"{rate:g} msg/s"
            say(
                f"producer {core.name}: module {core.config.module}, {pace} "
                f"({core.config.profile}), sending to "
                f"{net.endpoint(run.host, run.port)} (Ctrl-C to stop)"
            )
        while True:
            now = self.clock.now()
            if (self.stop or now >= deadline) and core.stopped_at is None:
                self.stop.set("duration")
                core.stop(now)
                drain_until = now + (run.drain_timeout if core.consumer_up else 0.0)
            if change_link(self.link, run, now - started):
                core.log(now, f"link delay now {run.link_delay_change_ms:g} ms")
            core.advance(now)
            blocked = self._send(now)
            self._receive(now)
            self._watch_connection(now)
            if telemetry.due(now):
                self._publish(now)
            self._report_connection(now)
            if core.stopped_at is not None and (core.drained() or now >= drain_until):
                break
            if watch.parent_gone(now):
                self.stop.set("parent exited")
            if core.refused_by_consumer:
                break
            wake = min(core.next_deadline(now), telemetry.next_at, deadline, drain_until)
            if self.link is not None and self.link.next_deadline() is not None:
                wake = min(wake, self.link.next_deadline())
            timeout_ms = math.ceil(max(0.0, (wake - self.clock.now()) * 1000.0))
            poller.register(self.dealer, zmq.POLLIN | (zmq.POLLOUT if blocked else 0))
            poller.poll(min(timeout_ms, 100.0))
        now = self.clock.now()
        try:
            self.dealer.send(core.bye_frame(), zmq.NOBLOCK)
        except zmq.ZMQError:
            pass
        self._publish(now)
        summary = core.summary(now)
        summary["rss_mb_max"] = self.stats.peak_mb()
        summary["stop_reason"] = self.stop.reason
        return summary

    def _send(self, now: float) -> bool:
        """Send control frames and data; True if data is waiting on a full socket."""
        core = self.core
        for frame in core.take_control_frames():
            try:
                self.dealer.send(frame, zmq.NOBLOCK)
            except zmq.Again:
                pass  # heartbeats are lossy; the next one follows in half a second
        for _ in range(MAX_FRAMES_PER_TURN):
            out = core.pull_frame(now)
            if out is None:
                return False
            try:
                self.dealer.send(out.data, zmq.NOBLOCK, copy=False)
            except zmq.Again:
                core.mark_unsent(out)
                return True
            core.mark_sent(out, now)
        return core.sendable() > 0

    def _receive(self, now: float) -> None:
        core = self.core
        link = self.link
        for _ in range(10_000):
            try:
                frame = self.dealer.recv(zmq.NOBLOCK)
            except zmq.Again:
                break
            if link is None:
                core.on_frame(frame, now)
            else:
                link.push(frame, now)
        if link is not None:
            for arrived, frame in link.release(now):
                core.on_frame(frame, arrived)
        delay_ms = core.link.take_delay()
        if delay_ms is not None:  # the consumer changed the link (Module 18's keys)
            self.link = retune_link(self.link, delay_ms, self.run_options)

    def _watch_connection(self, now: float) -> None:
        """Frames already received were read first: they came before the disconnect."""
        while net.recv_nowait(self.monitor) is not None:
            self.core.on_disconnect(now)

    def _publish(self, now: float) -> None:
        self.stats.refresh()
        snapshot = self.core.snapshot(now, self.stats.rss_mb, self.stats.cpu_pct)
        snapshot["id"] = self.core.name
        snapshot["t"] = self.clock.to_epoch(now)
        snapshot["link_delay_ms"] = self.link.delay * 1000.0 if self.link is not None else 0.0
        try:
            self.pub.send_multipart(protocol.encode_snapshot(snapshot), zmq.NOBLOCK)
        except zmq.Again:
            pass
        self.recorder.write(snapshot)

    def _report_connection(self, now: float) -> None:
        if self.run_options.quiet:
            return
        core = self.core
        waited = now - core.started_at
        if not core.consumer_up and not self._said_down and (core.sessions_seen or waited > 2.0):
            self._said_down = True
            where = net.endpoint(self.run_options.host, self.run_options.port)
            say(
                f"producer: consumer down -- no answer from {where}; still trying, with "
                "backoff (start it, or check --host/--port)"
            )
        elif core.consumer_up and self._said_down:
            self._said_down = False
            say("producer: consumer is back")

    def close(self) -> None:
        self.dealer.disable_monitor()
        self.monitor.close(linger=0)
        self.dealer.close(linger=0)
        self.pub.close(linger=0)
        self.ctx.term()
        self.recorder.close()


def run_producer(config: ProducerConfig, run: ProducerRun) -> int:
    run.load_plugins(config)
    process = ProducerProcess(config, run)
    process.stop.install()
    try:
        summary = process.serve()
    finally:
        process.close()
    core = process.core
    if core.refused_by_consumer:
        say(f"error: the consumer refused this producer: {core.refused_by_consumer}")
        return 2
    knows_processed = core.wants_confirm or core.consumer_mode == "block"
    report_producer(only_meaningful(summary, knows_processed), run)
    return 0


def only_meaningful(summary: Dict[str, Any], knows_processed: bool) -> Dict[str, Any]:
    """The summary with ``null`` (n/a) where a number means nothing in this run: the
    producer hears "processed" only in block mode or when it waits for completions, and the
    recovery clock is Module 15's lesson."""
    out = dict(summary)
    if not knows_processed and not out["processed"]:
        out["processed"] = None
    if out["module"] != 15:
        out["recovery_s"] = None
    return out


def report_producer(summary: Dict[str, Any], run: ProducerRun) -> None:
    if not run.quiet:
        target = summary["target_mps"]
        say(
            f"producer summary: produced {summary['produced']:,} "
            f"({summary['achieved_mps']:.1f} msg/s"
            + (f" of {target:g} asked" if target else "")
            + f"), accepted {summary['accepted']:,}, dropped {summary['dropped']:,}, "
            f"sampled out {summary['sampled_out']:,}, shed {summary['shed']:,}, "
            f"in flight {summary['in_flight']:,}, waiting in the outbox "
            f"{summary['pending']:,}; time to verdict p50 {summary['latency_p50_ms']:.0f} ms, "
            f"p99 {summary['latency_p99_ms']:.0f} ms, max {summary['latency_max_ms']:.0f} ms"
        )
        lesson = lesson_line(summary)
        if lesson:
            say(f"producer: {lesson}")
        for error in summary["identity_errors"]:
            say(f"producer: ACCOUNTING ERROR {error}")
    if run.json_out:
        print_json(summary)


CLASS_NAMES = ("checkout", "browse", "optional")


def lesson_line(summary: Dict[str, Any]) -> str:
    """The numbers of the producer's own lesson (Modules 13-15), in one sentence."""
    module = summary["module"]
    if module == 13 and summary["classes"]:
        rows = ", ".join(
            f"{CLASS_NAMES[row['class']] if row['class'] < 3 else row['class']} "
            f"{row['latency_p99_ms']:.0f} ms"
            for row in summary["classes"]
        )
        return f"time to verdict p99 by class: {rows}"
    if module == 14:
        return (
            f"limiter delayed {summary['rate_delayed']:,} sends; {summary['pending']:,} "
            f"still waiting in the outbox at the end; {summary['shed']:,} refused (429)"
        )
    if module == 15:
        recovery = summary["recovery_s"]
        if recovery is not None:
            recovered = f"recovered {recovery:.1f} s after the spike"
        elif summary["profile"] == "spike":
            recovered = "NOT recovered from the spike when it stopped"
        else:
            recovered = "no spike to recover from"
        response = summary["response_p99_ms"]
        return (
            f"{recovered}; retry amplification {summary['retry_amplification']:.2f} attempts "
            f"per request; timed out {summary['timed_out']:,}, late completions "
            f"{summary['late_completions']:,} (wasted work), gave up {summary['gave_up']:,}; "
            f"breaker failed fast {summary['breaker_rejected']:,}, "
            f"{summary['breaker_transitions']:,} transitions; response p99 "
            + (f"{response:.0f} ms" if response > 0 else "n/a (no completions measured)")
        )
    return ""
