"""Real lab processes for measurements: start them, watch their telemetry, tear them down.

A :class:`Session` is one consumer on a free block of loopback ports, any number of
producers and visualizers around it, and a :class:`Tap` that subscribes to the consumer's
telemetry (the same port a visualizer uses) and keeps every snapshot with its time stamp.
Measurements are then read off those time series: a rate is the slope of a cumulative
counter over a window of the consumer's (or producer's) own clock (``theory.fit_rate``).

Rules it keeps, like the test suite's ``ProcessPool``: children are started with
``sys.executable`` (never forked), on ``tcp://127.0.0.1``, each watches this process's pid
(``--parent-pid``), and leaving the ``with`` block stops every one of them, producers
first so their last verdicts still arrive. Every wait is on a condition with a deadline,
and fails with :class:`BenchError` saying what it was waiting for (and which child died).

Visualizers can run under a pseudo-terminal (:class:`PtyChild`) so that what is measured
is the real rich rendering, not the plain-line fallback used when stdout is a pipe.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from contextlib import ExitStack
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import psutil
import zmq

from lab.processes import net
from lab.processes.demo import Child
from lab.tools.bench.theory import Point, fit_rate, in_window

STARTUP_TIMEOUT_S = 30.0  # a busy 2-core machine can take seconds to import and start


class BenchError(RuntimeError):
    """A measurement that could not be made: a child died or telemetry never came."""


def lab_argv(role: str, port: int, *args: str) -> List[str]:
    """``python -m lab ROLE`` on ``port``, quiet, with a JSON summary, watching our pid."""
    argv = [sys.executable, "-m", "lab", role, "--port", str(port), "--json"]
    if role in ("consumer", "producer"):
        argv += ["--quiet", "--parent-pid", str(os.getpid())]
    return argv + list(args)


def raw_argv(role: str, port: int, *args: str) -> List[str]:
    return [sys.executable, "-m", "lab.tools.bench.raw", role, "--port", str(port), *args]


def last_json(text: str) -> Optional[Dict[str, Any]]:
    """The last line of ``text`` that parses as a JSON object (terminal noise ignored)."""
    for line in reversed(text.replace("\r", "\n").splitlines()):
        start = line.find("{")
        if start < 0:
            continue
        try:
            value = json.loads(line[start:])
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
    return None


class PtyChild:
    """A child whose stdin/stdout/stderr are a pseudo-terminal of a given size.

    A thread keeps reading the terminal, as a terminal emulator would, so the child never
    blocks on a full terminal; only the tail of its output is kept.
    """

    TAIL_BYTES = 256 * 1024

    def __init__(self, role: str, argv: List[str], columns: int = 120, rows: int = 40) -> None:
        import fcntl
        import pty
        import struct
        import termios

        self.role = role
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        env = dict(os.environ, TERM="xterm-256color", COLUMNS=str(columns), LINES=str(rows))
        env.pop("NO_COLOR", None)  # colours are part of the real cost
        try:
            self.popen = subprocess.Popen(
                argv, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True
            )
        finally:
            os.close(slave)
        self._master = master
        self._tail = bytearray()
        self.bytes_read = 0
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        while True:
            try:
                chunk = os.read(self._master, 65536)
            except OSError:
                return  # EIO: the child closed the terminal
            if not chunk:
                return
            self.bytes_read += len(chunk)
            self._tail += chunk
            if len(self._tail) > self.TAIL_BYTES:
                del self._tail[: len(self._tail) - self.TAIL_BYTES]

    def running(self) -> bool:
        return self.popen.poll() is None

    def stop(self) -> None:
        if self.running():
            self.popen.terminate()
            try:
                self.popen.wait(timeout=6)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()

    def summary(self) -> Optional[Dict[str, Any]]:
        self._reader.join(timeout=2)
        return last_json(self._tail.decode("utf-8", "replace"))

    def output(self) -> Tuple[str, str]:
        return self._tail.decode("utf-8", "replace"), ""

    def close(self) -> None:
        try:
            os.close(self._master)
        except OSError:
            pass


class CpuMeter:
    """CPU time of a process between two readings, as a percentage of one core."""

    def __init__(self, pid: int) -> None:
        self._process = psutil.Process(pid)
        self._start = self._read()

    def _read(self) -> Tuple[float, float]:
        times = self._process.cpu_times()
        return time.perf_counter(), times.user + times.system

    def restart(self) -> None:
        self._start = self._read()

    def percent(self) -> float:
        wall0, cpu0 = self._start
        wall1, cpu1 = self._read()
        return (cpu1 - cpu0) / (wall1 - wall0) * 100.0 if wall1 > wall0 else 0.0


class Tap:
    """Subscribes to a consumer's telemetry and keeps every snapshot, per id, in order."""

    def __init__(self, port: int) -> None:
        self.ctx = zmq.Context()
        self.sub = net.telemetry_subscriber(self.ctx)
        self.sub.setsockopt(zmq.RCVHWM, 100_000)
        self.sub.connect(net.endpoint("127.0.0.1", port + net.TELEMETRY_OUT_OFFSET))
        self.snapshots: Dict[str, List[Dict[str, Any]]] = {}
        self.roles: Dict[str, str] = {}

    def pump(self, timeout_s: float = 0.0) -> None:
        """Read everything waiting (after waiting up to ``timeout_s`` for the first one)."""
        if not self.sub.poll(timeout_s * 1000.0):
            return
        for snapshot in net.waiting_snapshots(self.sub, limit=1_000_000):
            if snapshot is not None:
                key = snapshot["id"]
                self.roles[key] = snapshot["role"]
                self.snapshots.setdefault(key, []).append(snapshot)

    def ids(self, role: str) -> List[str]:
        return [key for key, r in self.roles.items() if r == role]

    def latest(self, role: str = "consumer") -> Optional[Dict[str, Any]]:
        keys = self.ids(role)
        return self.snapshots[keys[0]][-1] if keys else None

    def series(self, key: str, path: Sequence[str]) -> List[Point]:
        """``(t, value)`` of one snapshot field (``("totals", "received")``) of one id.
        Snapshots are typed (``lab.core.telemetry``): the field is there; None is skipped."""
        points = []
        for snap in self.snapshots.get(key, []):
            value: Any = snap
            for part in path:
                value = None if value is None else value[part]
            if isinstance(value, (int, float)):
                points.append((float(snap["t"]), float(value)))
        return points

    def close(self) -> None:
        self.sub.close(linger=0)
        self.ctx.term()


class Session:
    """One consumer, its producers and visualizers, and a tap; all gone after ``with``."""

    def __init__(self, consumer_args: Sequence[str] = (), name: str = "run") -> None:
        self.name = name
        self.port = net.free_port_block()
        self.consumer_args = list(consumer_args)
        self.producers: List[Child] = []
        self.visualizers: List[Any] = []
        self.others: List[Child] = []
        self.consumer: Optional[Child] = None
        self.tap: Optional[Tap] = None
        self.summaries: Dict[str, Any] = {}

    # -- lifecycle ----------------------------------------------------------------------------
    def __enter__(self) -> Session:
        try:
            self.tap = Tap(self.port)
            self.consumer = Child("consumer", lab_argv("consumer", self.port, *self.consumer_args))
            self.wait(lambda: self.tap.latest("consumer"), STARTUP_TIMEOUT_S, "the consumer")
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def add_producer(self, *args: str) -> Child:
        child = Child("producer", lab_argv("producer", self.port, *args))
        self.producers.append(child)
        return child

    def add_visualizer(self, *args: str, terminal: bool = True) -> Any:
        """A ``bplab visualize``; under a pseudo-terminal when the platform has one."""
        argv = lab_argv("visualize", self.port, *args)
        if terminal and os.name != "nt":
            child: Any = PtyChild("visualizer", argv)
        else:
            child = Child("visualizer", argv + ["--plain"])
        self.visualizers.append(child)
        return child

    def remove_visualizer(self, child: Any) -> Optional[Dict[str, Any]]:
        """Stop one visualizer while the rest of the session goes on; its ``--json`` summary."""
        self.visualizers.remove(child)
        child.stop()
        try:
            return child.summary()
        finally:
            child.close()

    def wait_for_traffic(self, producers: int = 1, timeout: float = STARTUP_TIMEOUT_S) -> float:
        """Wait until the consumer has heard from ``producers`` producers and has received
        messages; returns the consumer's time stamp of that snapshot."""

        def flowing() -> Optional[float]:
            snap = self.tap.latest("consumer")
            if snap and snap["totals"]["received"] > 0 and len(snap["producers"]) >= producers:
                return float(snap["t"])
            return None

        return self.wait(flowing, timeout, f"traffic from {producers} producer(s)")

    def wait_until(self, t_end: float, timeout: Optional[float] = None) -> None:
        """Wait until the consumer's telemetry has reached its time ``t_end``."""
        last = self.tap.latest("consumer")
        span = t_end - float(last["t"]) if last else 0.0
        self.wait(
            lambda: float(self.tap.latest("consumer")["t"]) >= t_end,
            timeout if timeout is not None else max(span, 0.0) + 15.0,
            f"telemetry up to t={t_end:.1f}",
        )

    def wait(self, condition: Callable[[], Any], timeout: float, what: str) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            self.tap.pump(0.05)
            value = condition()
            if value:
                return value
            dead = [c for c in self._children() if not c.running()]
            if dead:
                raise BenchError(
                    f"{self.name}: {self._describe_exit(dead[0])} (waiting for {what})"
                )
            if time.monotonic() > deadline:
                raise BenchError(f"{self.name}: timed out after {timeout:g} s waiting for {what}")

    def stop(self) -> Dict[str, Any]:
        """Stop everyone (producers first) and collect their ``--json`` summaries."""
        for child in self.producers:
            child.stop()
        if self.consumer is not None:
            self.consumer.stop()
        for child in self.visualizers + self.others:
            child.stop()
        self.summaries = {
            "consumer": self.consumer.summary() if self.consumer else None,
            "producers": [c.summary() for c in self.producers],
            "visualizers": [c.summary() for c in self.visualizers],
        }
        return self.summaries

    def close(self) -> None:
        for child in self.producers + ([self.consumer] if self.consumer else []):
            child.stop()
        for child in self.visualizers + self.others:
            child.stop()
        for child in self._children():
            child.close()
        if self.tap is not None:
            self.tap.close()
            self.tap = None

    # -- readings -----------------------------------------------------------------------------
    def consumer_id(self) -> str:
        return self.tap.ids("consumer")[0]

    def consumer_rate(self, counter: str, start: float, end: float) -> float:
        """The consumer's ``totals[counter]`` per second over ``[start, end]`` (its clock)."""
        points = in_window(self.tap.series(self.consumer_id(), ("totals", counter)), start, end)
        return fit_rate(points)

    def producer_rate(self, start: float, end: float, index: int = 0) -> float:
        """A producer's ``produced`` per second over ``[start, end]``."""
        key = sorted(self.tap.ids("producer"))[index]
        return fit_rate(in_window(self.tap.series(key, ("totals", "produced")), start, end))

    def consumer_at(self, t: float) -> Dict[str, Any]:
        """The consumer's first snapshot at or after its time ``t``."""
        for snap in self.tap.snapshots[self.consumer_id()]:
            if float(snap["t"]) >= t:
                return snap
        raise BenchError(f"{self.name}: no consumer snapshot at t={t:.1f}")

    def producer_snapshots(self, index: int = 0) -> List[Dict[str, Any]]:
        key = sorted(self.tap.ids("producer"))[index]
        return self.tap.snapshots[key]

    # -- internals ----------------------------------------------------------------------------
    def _children(self) -> List[Any]:
        consumer = [self.consumer] if self.consumer else []
        return consumer + self.producers + self.visualizers + self.others

    @staticmethod
    def _describe_exit(child: Any) -> str:
        _, err = child.output()
        last = err.strip().splitlines()[-1] if err.strip() else "no message"
        return f"the {child.role} exited with status {child.popen.returncode}: {last}"


class Experiment:
    """One consumer and one producer, warmed up, measured over a window, stopped.

    Subclasses give the flags, ``warmup`` and ``seconds``, and ``measure(start, end)``,
    which reads the window ``[start, end]`` (the consumer's clock) off the telemetry.
    :func:`run_together` runs several at once, which is how light experiments share time.
    """

    name = "experiment"
    warmup = 1.0  # seconds after the first traffic before the window opens
    seconds = 1.0  # the window's length

    def __init__(self, consumer: Sequence[str], producer: Sequence[str]) -> None:
        self.consumer_args = list(consumer)
        self.producer_args = list(producer)
        self.session: Optional[Session] = None
        self.t0 = 0.0

    def label(self) -> str:
        return self.name

    def start(self, stack: ExitStack) -> None:
        self.session = stack.enter_context(Session(self.consumer_args, name=self.label()))
        self.session.add_producer(*self.producer_args)

    def ready(self) -> None:
        self.t0 = self.session.wait_for_traffic()

    def window(self) -> Tuple[float, float]:
        start = self.t0 + self.warmup
        return start, start + self.seconds

    def finish(self) -> Any:
        start, end = self.window()
        self.session.wait_until(end + 0.3)  # producers' snapshots arrive a little later
        return self.measure(start, end)

    def measure(self, start: float, end: float) -> Any:
        raise NotImplementedError

    def counters(self, start: float, end: float, *names: str) -> Tuple[Tuple[float, ...], ...]:
        """The consumer's ``totals`` named, at the first snapshots of ``start`` and ``end``."""
        first = self.session.consumer_at(start)
        last = self.session.consumer_at(end)
        return (
            tuple(float(first["totals"][n]) for n in names),
            tuple(float(last["totals"][n]) for n in names),
        )


def run_together(experiments: Sequence[Experiment]) -> List[Any]:
    """Start every experiment, wait for all to warm up, measure each; all torn down after."""
    with ExitStack() as stack:
        for experiment in experiments:
            experiment.start(stack)
        for experiment in experiments:
            experiment.ready()
        return [experiment.finish() for experiment in experiments]


def run_raw_pair(
    receiver: str, sender: str, seconds: float, warmup: float, extra: Sequence[str] = ()
) -> Dict[str, Any]:
    """Run a raw receiver and sender (``raw.py``) and return the receiver's measurement."""
    port = net.free_port_block(1)
    deadline = str(warmup + seconds + 20.0)
    receive = Child(
        "raw " + receiver,
        raw_argv(
            receiver,
            port,
            "--warmup",
            str(warmup),
            "--seconds",
            str(seconds),
            "--deadline",
            deadline,
            *extra,
        ),
    )
    send = Child("raw " + sender, raw_argv(sender, port, "--deadline", deadline, *extra))
    try:
        receive.popen.wait(timeout=float(deadline) + 5)
    except subprocess.TimeoutExpired:
        pass
    finally:
        for child in (receive, send):
            child.stop()
    try:
        result = receive.summary()
        if not result:
            raise BenchError(f"raw {receiver}/{sender}: {Session._describe_exit(receive)}")
        return result
    finally:
        receive.close()
        send.close()
