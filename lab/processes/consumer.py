"""The consumer process: ZeroMQ sockets around :class:`~lab.core.consumer_core.ConsumerCore`.

The loop, in order: wait (until a frame arrives, the worker's next finish, or the next
telemetry tick), read every waiting frame into the core, let the core advance, send what it
returns, publish a snapshot ten times a second. The data path never waits on telemetry: the
PUB socket drops snapshots when no one keeps up (the lesson of the seed's incident).

It also hosts the telemetry relay: producers publish to port P+2, the consumer forwards to
P+1, where every visualizer listens. One address to watch, whatever starts first. Only
two-part messages on the lab's topic are passed on; anything else is counted
(``telemetry_malformed``) and dropped.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import asdict, dataclass
from typing import Any, Callable, Dict, List, Optional

import zmq

from lab.core import protocol
from lab.core.config import ConsumerConfig
from lab.core.consumer_core import ConsumerCore
from lab.processes import net, security
from lab.processes.clock import MonotonicClock
from lab.processes.procstats import ProcessStats
from lab.processes.runtime import (
    LOOPBACK,
    SLOWDOWN_FACTOR,
    STALL_FOR_S,
    ParentWatch,
    Periodic,
    Recorder,
    RunOptions,
    StopSignal,
    change_link,
    check_link_schedule,
    fault_args,
    print_json,
    retune_link,
    say,
)

TELEMETRY_INTERVAL = 0.1
MAX_RECORDS_PER_TURN = 5000  # then answer, advance and publish before reading more
# --until-idle waits this long with no producer and an empty buffer before it stops, so a
# producer that was only paused (a busy laptop, a 2 s silence) can come back first.
UNTIL_IDLE_GRACE_S = 2.0


@dataclass
class ConsumerRun(RunOptions):
    """How to run a consumer process (what the CLI flags say beyond the core's config).

    ``ConsumerRun.for_module(spec, **flags)`` builds it from flags and checks it."""

    port: int
    bind: str = LOOPBACK
    duration: Optional[float] = None
    until_idle: bool = False  # stop once the producers have left and the buffer is empty
    json_out: bool = False
    record: Optional[str] = None
    parent_pid: Optional[int] = None
    quiet: bool = False
    slowdown_at: Optional[float] = None
    slowdown_factor: float = SLOWDOWN_FACTOR
    slowdown_for: Optional[float] = None
    stall_at: Optional[float] = None
    stall_for: float = STALL_FOR_S
    policy_file: Optional[str] = None
    keys: Optional[Any] = None  # security.RoomKeys: classroom mode, CURVE on every socket
    batcher_file: Optional[str] = None  # a batch-size rule (Module 16's challenge)
    autoscaler_file: Optional[str] = None  # a scaling rule (Module 17's challenge)
    discipline_file: Optional[str] = None  # a dequeue discipline (Module 19's challenge)
    link_delay_ms: float = 0.0  # a slow link: every frame from producers arrives this late
    link_delay_change_at: Optional[float] = None  # seconds after the start: the delay changes
    link_delay_change_ms: Optional[float] = None  # ... to this (Module 18's challenge)

    def check_own(self) -> None:
        fault_args(vars(self))
        check_link_schedule(
            self.link_delay_ms, self.link_delay_change_at, self.link_delay_change_ms
        )


def _offered(config: ConsumerConfig) -> Dict[str, Any]:
    """What a person's class may take from the config: all of it but the grader's memory
    pressure (a class must not learn that it is being tested)."""
    offered = asdict(config)
    offered.pop("memory_pressure", None)
    return offered


class ConsumerProcess:
    """Owns the sockets; one instance per process."""

    def __init__(self, config: ConsumerConfig, run: ConsumerRun) -> None:
        self.config = config
        self.run_options = run
        self.clock = MonotonicClock()
        self.stats = ProcessStats()
        self.stop = StopSignal()
        self.ctx = zmq.Context()
        self.sockets: List[zmq.Socket] = []
        self.guard = security.ServerGuard(self.ctx, run.keys) if run.keys is not None else None
        try:
            self._open_sockets()
        except BaseException:
            self.close()
            raise
        if run.batcher_file:
            self._load_batcher(run.batcher_file)
        if run.autoscaler_file:
            self._load_autoscaler(run.autoscaler_file)
        now = self.clock.now()
        self.core = ConsumerCore(config, now, session=uuid.uuid4().hex[:12])
        if run.policy_file:
            self._install_policy_file(run.policy_file, now)
        if run.discipline_file:
            self._load_discipline(run.discipline_file, now)
        if config.memory_pressure is not None:
            from lab.processes.plugins import MemoryPressure

            MemoryPressure(*config.memory_pressure).start()
        self.recorder = Recorder(run.record)
        self.control_handler: Optional[Callable[[Dict[str, Any], float], Dict[str, Any]]] = None
        self._timed_faults_done: set = set()
        self.telemetry_malformed = 0  # messages on P+2 that were not telemetry, not relayed
        self._idle_since: Optional[float] = None
        # Frames from producers wait here for the link's delay (one wait for all of them).
        self.link = retune_link(None, run.link_delay_ms)

    def set_link_delay(self, delay_ms: float) -> None:
        """Module 18's live knob (``bplab ctl delay``): frames from producers arrive this
        late from now on; those already on the link keep their time."""
        self.link = retune_link(self.link, delay_ms, self.run_options)

    def _load_batcher(self, spec: str) -> None:
        from lab.processes import plugins

        if not self.config.batching:
            self.close()
            raise plugins.PluginError("--batcher-file needs batching: give --batch-overhead-ms")
        try:
            self.config.batcher_plugin = plugins.load(spec, "batcher", _offered(self.config))
        except plugins.PluginError:
            self.close()
            raise

    def _load_discipline(self, spec: str, now: float) -> None:
        from lab.processes import plugins

        config = self.config
        if config.batching or config.pooled or config.queue_discipline != "fifo":
            self.close()
            raise plugins.PluginError("--discipline-file works with one worker and no --discipline")
        try:
            offered = _offered(config)
            rate = self.core.service.effective_rate
            offered["service_time_s"] = 0.0 if math.isinf(rate) else 1.0 / rate
            self.core.use_discipline_file(plugins.load(spec, "discipline", offered), now)
        except plugins.PluginError:
            self.close()
            raise

    def _load_autoscaler(self, spec: str) -> None:
        from lab.processes import plugins

        if self.config.autoscale is None:
            self.close()
            raise plugins.PluginError("--autoscaler-file needs a range: give --autoscale MIN-MAX")
        try:
            offered = _offered(self.config)
            offered["minimum"], offered["maximum"] = self.config.autoscale
            self.config.autoscaler_plugin = plugins.load(spec, "autoscaler", offered)
        except plugins.PluginError:
            self.close()
            raise

    def _install_policy_file(self, spec: str, now: float) -> None:
        from lab.processes import plugins

        try:
            policy = plugins.load(spec, "policy", _offered(self.config))
        except plugins.PluginError:
            self.close()
            raise
        if policy.name == "base":
            policy.name = type(policy).__name__
        self.core.set_policy(policy, now)

    def _open_sockets(self) -> None:
        run = self.run_options
        self.data = self._socket(zmq.ROUTER)
        net.data_socket_options(self.data)
        self.data.setsockopt(zmq.ROUTER_HANDOVER, 1)
        self._secure(self.data, security.DATA)
        net.bind(self.data, run.bind, run.port, net.DATA_OFFSET)
        self.telemetry_out = net.telemetry_publisher(self.ctx)
        self.sockets.append(self.telemetry_out)
        self._secure(self.telemetry_out, security.TELEMETRY)
        net.bind(self.telemetry_out, run.bind, run.port, net.TELEMETRY_OUT_OFFSET)
        self.telemetry_in = net.telemetry_subscriber(self.ctx)
        self.sockets.append(self.telemetry_in)
        self._secure(self.telemetry_in, security.TELEMETRY)
        net.bind(self.telemetry_in, run.bind, run.port, net.TELEMETRY_IN_OFFSET)
        self.control = self._socket(zmq.ROUTER)
        self.control.setsockopt(zmq.LINGER, 0)
        self.control.setsockopt(zmq.MAXMSGSIZE, net.MAX_CONTROL_MESSAGE)
        self._secure(self.control, security.CONTROL)
        net.bind(self.control, run.bind, run.port, net.CONTROL_OFFSET)

    def _secure(self, sock: zmq.Socket, domain: str) -> None:
        if self.guard is not None:
            self.guard.secure(sock, domain)

    def _socket(self, kind: int) -> zmq.Socket:
        sock = self.ctx.socket(kind)
        self.sockets.append(sock)
        return sock

    # -- the loop ---------------------------------------------------------------------------
    def serve(self) -> Dict[str, Any]:
        run = self.run_options
        core = self.core
        started = self.clock.now()
        deadline = started + run.duration if run.duration else math.inf
        telemetry = Periodic(TELEMETRY_INTERVAL, started)
        watch = ParentWatch(run.parent_pid, started)
        poller = zmq.Poller()
        for sock in (self.data, self.telemetry_in, self.control):
            poller.register(sock, zmq.POLLIN)
        if not run.quiet:
            say(
                f"consumer: module {self.config.module}, mode {core.mode}, buffer "
                f"{core.buffer.capacity or 'unbounded'}, processing {self._speed_text()}, "
                f"listening on {net.endpoint(run.bind, run.port)} (Ctrl-C to stop)"
            )
        while not self.stop:
            now = self.clock.now()
            wake = min(core.next_deadline(now), telemetry.next_at, deadline, self._link_due())
            timeout_ms = math.ceil(max(0.0, (wake - now) * 1000.0))
            ready = dict(poller.poll(min(timeout_ms, 100.0)))
            now = self.clock.now()
            if self.data in ready:
                self._read_data(now)
            if self.link is not None:
                for arrived, (peer, frame) in self.link.release(now):
                    core.on_frame(peer, frame, arrived)
            if self.telemetry_in in ready:
                self._relay_telemetry()
            if self.control in ready:
                self._read_control(now)
            self._timed_faults(now - started, now)
            core.advance(now)
            self._send_outgoing()
            if telemetry.due(now):
                self._publish(now)
            if now >= deadline:
                self.stop.set("duration")
            if run.until_idle and self._idle_long_enough(now):
                self.stop.set("producers left")
            if watch.parent_gone(now):
                self.stop.set("parent exited")
        now = self.clock.now()
        core.advance(now)
        self._send_outgoing()
        self._publish(now)
        return self._summary(now)

    def _idle_long_enough(self, now: float) -> bool:
        if not self._producers_gone():
            self._idle_since = None
            return False
        if self._idle_since is None:
            self._idle_since = now
        return now - self._idle_since >= UNTIL_IDLE_GRACE_S

    def _producers_gone(self) -> bool:
        """True once a producer has come, every producer has left, and the buffer is empty.

        ``--until-idle`` lets the producer's stop end a measurement, so a lesson's numbers do
        not depend on how quickly someone starts the second terminal.
        """
        producers = self.core.producers.values()
        if not producers or any(state.active for state in producers):
            return False
        return len(self.core.buffer) == 0

    def _speed_text(self) -> str:
        config = self.config
        if not config.batching:
            return f"{config.process_rate:g} msg/s"
        kind = "adaptive" if config.batch == "adaptive" else "fixed"
        return (
            f"in batches ({kind}, up to {config.batch_size}, linger {config.batch_wait_ms:g} ms) "
            f"of {config.batch_overhead_ms or 0:g} ms + {config.item_ms or 0:g} ms per message"
        )

    def _read_data(self, now: float) -> None:
        core = self.core
        recv = self.data.recv_multipart
        budget = MAX_RECORDS_PER_TURN
        while budget > 0:
            try:
                frames = recv(zmq.NOBLOCK, copy=True)
            except zmq.Again:
                return
            if len(frames) != 2:
                core.count_malformed(f"message of {len(frames)} parts (expected 1 after the id)")
                budget -= 1
                continue
            if self.link is None:
                core.on_frame(frames[0], frames[1], now)
            else:
                self.link.push((frames[0], frames[1]), now)
            budget -= max(1, len(frames[1]) // protocol.RECORD.size)

    def _link_due(self) -> float:
        due = self.link.next_deadline() if self.link is not None else None
        return math.inf if due is None else due

    def _relay_telemetry(self) -> None:
        for _ in range(200):
            frames = net.recv_nowait(self.telemetry_in)
            if frames is None:
                return
            if len(frames) != 2 or frames[0] != protocol.TELEMETRY_TOPIC:
                self.telemetry_malformed += 1  # not a snapshot: visualizers never see it
                continue
            try:
                self.telemetry_out.send_multipart(frames, zmq.NOBLOCK)
            except zmq.Again:
                pass
            if self.run_options.record:
                self._record_relayed(frames)

    def _record_relayed(self, frames: list) -> None:
        """A producer's snapshot goes into ``--record`` too, so that one consumer recording
        holds the producers' latency (``bplab compare`` of two consumer recordings)."""
        try:
            snapshot = protocol.decode_snapshot(frames)
        except protocol.ProtocolError:
            return  # relayed as it came; the visualizers count it as malformed
        if snapshot["role"] == "producer":
            self.recorder.write(snapshot)

    def _read_control(self, now: float) -> None:
        from lab.processes.control import handle_control_request

        for _ in range(50):
            frames = net.recv_nowait(self.control)
            if frames is None:
                return
            reply = handle_control_request(self, frames, now)
            if reply is not None:
                try:
                    self.control.send_multipart(reply, zmq.NOBLOCK)
                except zmq.ZMQError:
                    pass

    def _send_outgoing(self) -> None:
        send = self.data.send_multipart
        for peer, frame in self.core.take_outgoing():
            try:
                send([peer, frame], zmq.NOBLOCK)
            except zmq.ZMQError:
                pass  # the peer is gone or not reading: a verdict it will never miss

    def _publish(self, now: float) -> None:
        self.stats.refresh()
        if self.core.observe(now, self.stats.rss_mb):
            self.stop.set("memory_guard")
        snapshot = self.core.snapshot(now, self.stats.rss_mb, self.stats.cpu_pct)
        snapshot["id"] = f"consumer-{self.run_options.port}"
        snapshot["port"] = self.run_options.port
        snapshot["t"] = self.clock.to_epoch(now)
        snapshot["telemetry_malformed"] = self.telemetry_malformed
        snapshot["link_delay_ms"] = self.link.delay * 1000.0 if self.link is not None else 0.0
        snapshot["on_link"] = len(self.link) if self.link is not None else 0
        if self.guard is not None:
            snapshot["security"] = self.guard.status()
        try:
            self.telemetry_out.send_multipart(protocol.encode_snapshot(snapshot), zmq.NOBLOCK)
        except zmq.Again:
            pass
        self.recorder.write(snapshot)

    def _timed_faults(self, elapsed: float, now: float) -> None:
        """Demo switches: slow the worker down (and restore it), stall it, or change the
        link's delay, on a timer."""
        run = self.run_options
        done = self._timed_faults_done
        if run.slowdown_at is not None and elapsed >= run.slowdown_at and "slow" not in done:
            done.add("slow")
            self.core.set_slowdown(run.slowdown_factor, now)
        if (
            run.slowdown_at is not None
            and run.slowdown_for is not None
            and elapsed >= run.slowdown_at + run.slowdown_for
            and "restore" not in done
        ):
            done.add("restore")
            self.core.set_slowdown(1.0, now)
        if run.stall_at is not None and elapsed >= run.stall_at and "stall" not in done:
            done.add("stall")
            self.core.stall(run.stall_for, now)
        if change_link(self.link, run, elapsed):
            self.core.log(now, f"link delay now {run.link_delay_change_ms:g} ms")

    def _summary(self, now: float) -> Dict[str, Any]:
        summary = self.core.summary(now)
        summary["port"] = self.run_options.port
        summary["rss_mb_max"] = self.stats.peak_mb()
        summary["stop_reason"] = self.stop.reason
        summary["telemetry_malformed"] = self.telemetry_malformed
        if self.guard is not None:
            summary["security"] = self.guard.status()
        if self.core.stopped_by is None and self.stop.reason == "memory_guard":
            summary["stopped_by"] = "memory_guard"
        return summary

    def close(self) -> None:
        if self.guard is not None:
            self.guard.close()
        for sock in self.sockets:
            sock.close(linger=0)
        self.ctx.term()
        recorder = getattr(self, "recorder", None)
        if recorder is not None:
            recorder.close()


def run_consumer(config: ConsumerConfig, run: ConsumerRun) -> int:
    """Run a consumer until stopped; print the summary; return the exit code."""
    process = ConsumerProcess(config, run)
    process.stop.install()
    try:
        summary = process.serve()
    finally:
        process.close()
    report_consumer(summary, run)
    return 3 if summary.get("stopped_by") == "memory_guard" else 0


def report_consumer(summary: Dict[str, Any], run: ConsumerRun) -> None:
    if summary.get("stopped_by") == "memory_guard":
        say(
            f"consumer: MEMORY GUARD -- RSS passed --max-memory-mb with {summary['depth']:,} "
            "messages queued. This is where a real service would be OOM-killed; the lab "
            "stopped it to protect your laptop."
        )
    if not run.quiet:
        waited = summary["processed"] > 0  # the queue wait is measured on completions
        wait = f"{summary['queue_wait_p99_ms']:.0f} ms" if waited else "n/a (none processed)"
        say(
            "consumer summary: "
            f"received {summary['received']:,}, accepted {summary['accepted']:,}, "
            f"processed {summary['processed']:,}, dropped {summary['dropped']:,}, "
            f"sampled out {summary['sampled_out']:,}, shed {summary['shed']:,}, "
            f"still queued {summary['depth']:,} (max {summary['max_depth']:,}); "
            f"wait in queue p99 {wait}; "
            f"peak RSS {summary['rss_mb_max']:.0f} MB"
        )
        lesson = lesson_line(summary)
        if lesson:
            say(f"consumer: {lesson}")
        for error in summary["identity_errors"]:
            say(f"consumer: ACCOUNTING ERROR {error}")
    if run.json_out:
        print_json(summary)


CLASS_NAMES = ("checkout", "browse", "optional")


def lesson_line(summary: Dict[str, Any]) -> str:
    """The numbers of the consumer's own lesson (Modules 13-15), in one sentence."""
    module, mode = summary["module"], summary["mode"]
    if module == 13 and summary["classes"]:
        parts = []
        for row in summary["classes"]:
            name = CLASS_NAMES[row["class"]] if row["class"] < 3 else str(row["class"])
            lost = row["dropped"] + row["shed"] + row["sampled_out"]
            parts.append(f"{name} lost {lost:,} of {row['received']:,}")
        return f"by class ({mode}): " + ", ".join(parts)
    if module == 14:
        return f"mode {mode}: refused {summary['shed']:,} (429 with retry-after)"
    if module == 15:
        return (
            f"mode {mode}: refused {summary['shed']:,} with retry-after; each refusal costs "
            "simulated worker time (no CPU is burnt)"
        )
    return ""
