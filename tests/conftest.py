"""Shared test fixtures: free ports, real lab processes that are always torn down, and
waiting on a condition with a deadline (never a bare sleep)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import pytest

REPO = Path(__file__).resolve().parent.parent

# Graded checks (three processes each) run this many at a time. Under two xdist workers the
# other worker runs real processes too (often the other graded file), so fewer: at most four
# checks at once on the machine either way, about 1.3 cores of 2.
GRADED_AT_ONCE = 2 if os.environ.get("PYTEST_XDIST_WORKER") else 4


def _keep_compiled_bytecode() -> None:
    """Let the lab processes the suite starts (several hundred) reuse compiled bytecode.

    With PYTHONDONTWRITEBYTECODE set, every child compiles all of ``lab/`` again before it
    runs (about 40 ms of CPU each). The compiled files go to a folder under the temporary
    directory instead, so the source tree stays as clean as the setting meant it to."""
    if os.environ.pop("PYTHONDONTWRITEBYTECODE", None) is not None:
        os.environ.setdefault(
            "PYTHONPYCACHEPREFIX", str(Path(tempfile.gettempdir()) / "bplab-test-pycache")
        )


_keep_compiled_bytecode()


def wait_for(condition: Callable[[], Any], timeout: float, what: str, poll: float = 0.02) -> Any:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(poll)


class LabProcess:
    """A child process running ``python -m lab ...`` (or a script), with captured output."""

    def __init__(self, argv: List[str], env: Optional[Dict[str, str]] = None, cwd=None) -> None:
        self.argv = argv
        full_env = dict(os.environ)
        full_env.setdefault("PYTHONUNBUFFERED", "1")
        full_env.setdefault("NO_COLOR", "1")
        if env:
            full_env.update(env)
        kwargs: Dict[str, Any] = {}
        if os.name == "nt":
            kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP
        self.popen = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            env=full_env,
            cwd=str(cwd or REPO),
            **kwargs,
        )
        self.stdout = ""
        self.stderr = ""

    @property
    def pid(self) -> int:
        return self.popen.pid

    def running(self) -> bool:
        return self.popen.poll() is None

    def peek(self, stream: str = "stdout") -> str:
        """What the process has printed so far on ``stream``, without waiting for it to exit
        (POSIX: select on the pipe)."""
        import select

        pipe = getattr(self.popen, stream)
        while select.select([pipe], [], [], 0)[0]:
            chunk = os.read(pipe.fileno(), 65536).decode(errors="replace")
            if not chunk:
                break
            setattr(self, stream, getattr(self, stream) + chunk)
        return getattr(self, stream)

    def signal(self, signum: int) -> None:
        if self.running():
            self.popen.send_signal(signum)

    def wait(self, timeout: float = 30.0) -> int:
        """Wait for exit and collect output; the process is killed if it overstays."""
        try:
            out, err = self.popen.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            out, err = self.popen.communicate()
            self.stdout += out or ""
            self.stderr += err or ""
            raise AssertionError(
                f"{self.argv} did not exit within {timeout:g} s\nstderr:\n{self.stderr}"
            ) from None
        self.stdout += out or ""
        self.stderr += err or ""
        return self.popen.returncode

    def json(self) -> Dict[str, Any]:
        """The last JSON object the process printed on stdout."""
        for line in reversed(self.stdout.strip().splitlines()):
            line = line.strip()
            if line.startswith("{"):
                return json.loads(line)
        raise AssertionError(f"no JSON on stdout of {self.argv}\nstderr:\n{self.stderr}")

    def stop(self) -> None:
        if self.running():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=5)
        for stream in (self.popen.stdout, self.popen.stderr):
            if stream and not stream.closed:
                try:
                    stream.close()
                except OSError:
                    pass


class ProcessPool:
    """Starts lab processes and guarantees they are gone when the test ends."""

    def __init__(self) -> None:
        self.processes: List[LabProcess] = []

    def lab(self, *args: str, env: Optional[Dict[str, str]] = None) -> LabProcess:
        return self.start([sys.executable, "-m", "lab", *args], env=env)

    def script(self, relative: str, *args: str, cwd=None) -> LabProcess:
        return self.start([sys.executable, str(REPO / relative), *args], cwd=cwd)

    def start(self, argv: List[str], env=None, cwd=None) -> LabProcess:
        process = LabProcess(argv, env=env, cwd=cwd)
        self.processes.append(process)
        return process

    def close(self) -> None:
        for process in reversed(self.processes):
            process.stop()


@pytest.fixture
def procs():
    pool = ProcessPool()
    try:
        yield pool
    finally:
        pool.close()


@pytest.fixture
def base_port() -> int:
    from lab.processes.net import free_port_block

    return free_port_block()


class TelemetryTap:
    """Subscribes to a consumer's telemetry port and keeps the latest snapshot per id."""

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        import zmq

        from lab.processes import net

        self._zmq = zmq
        self.ctx = zmq.Context()
        self.sub = net.telemetry_subscriber(self.ctx)
        self.sub.connect(net.endpoint(host, port + net.TELEMETRY_OUT_OFFSET))
        self.latest: Dict[str, Dict[str, Any]] = {}

    def pump(self) -> None:
        from lab.processes import net

        # the relay forwards whatever is published: skip what is not a snapshot
        for snapshot in net.waiting_snapshots(self.sub):
            if snapshot is not None:
                self.latest[snapshot["id"]] = snapshot

    def consumer(self) -> Optional[Dict[str, Any]]:
        self.pump()
        for snapshot in self.latest.values():
            if snapshot["role"] == "consumer":
                return snapshot
        return None

    def producers(self) -> List[Dict[str, Any]]:
        self.pump()
        return [s for s in self.latest.values() if s["role"] == "producer"]

    def close(self) -> None:
        self.sub.close(linger=0)
        self.ctx.term()


def wait_consumer_up(port: int, timeout: float = 30.0) -> Dict[str, Any]:
    """The first snapshot of the consumer on ``port``: it is bound and serving.

    Start a producer after this when a test measures waits. A producer that comes up first
    holds what falls due meanwhile and sends it in one burst, so on a loaded machine the
    consumer's start would show as seconds of queueing."""
    tap = TelemetryTap(port)
    try:
        return wait_for(tap.consumer, timeout, f"the consumer on port {port}")
    finally:
        tap.close()


@pytest.fixture
def tap_factory():
    taps: List[TelemetryTap] = []

    def make(port: int) -> TelemetryTap:
        tap = TelemetryTap(port)
        taps.append(tap)
        return tap

    try:
        yield make
    finally:
        for tap in taps:
            tap.close()


class PtyProcess:
    """A lab process whose stdin, stdout and stderr are a pseudo-terminal of a chosen size
    (POSIX only): rich draws its live dashboard there, and keys can be typed into it."""

    def __init__(self, argv: List[str], rows: int = 24, cols: int = 80) -> None:
        import fcntl
        import pty
        import struct
        import termios

        self.argv = argv
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
        env.update(PYTHONUNBUFFERED="1", TERM="xterm-256color")
        self.popen = subprocess.Popen(
            argv, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=str(REPO)
        )
        os.close(slave)
        self.output = ""

    @property
    def pid(self) -> int:
        return self.popen.pid

    def running(self) -> bool:
        return self.popen.poll() is None

    def read(self) -> str:
        """Everything the process has written so far (also keeps its terminal from filling)."""
        import select

        while select.select([self.master], [], [], 0)[0]:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            self.output += chunk.decode(errors="replace")
        return self.output

    def text(self) -> str:
        """The output without terminal escape sequences."""
        import re

        return re.sub(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\r", "", self.read())

    def type(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def signal(self, signum: int) -> None:
        if self.running():
            self.popen.send_signal(signum)

    def wait(self, timeout: float = 30.0) -> int:
        """Wait for exit, reading the terminal meanwhile; killed if it overstays."""
        deadline = time.monotonic() + timeout
        while self.running():
            self.read()
            if time.monotonic() > deadline:
                self.popen.kill()
                self.popen.wait(5)
                raise AssertionError(f"{self.argv} did not exit within {timeout:g} s")
            time.sleep(0.02)
        self.read()
        return self.popen.returncode

    def close(self) -> None:
        if self.running():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.wait(5)
            except AssertionError:
                pass
        try:
            os.close(self.master)
        except OSError:
            pass


@pytest.fixture
def ptys():
    """Start processes on pseudo-terminals (``ptys(argv, rows, cols)``); all gone at the end."""
    if os.name == "nt":
        pytest.skip("pseudo-terminals are POSIX only")
    started: List[PtyProcess] = []

    def start(argv: List[str], rows: int = 24, cols: int = 80) -> PtyProcess:
        process = PtyProcess(argv, rows, cols)
        started.append(process)
        return process

    try:
        yield start
    finally:
        for process in reversed(started):
            process.close()


def run_bounded(
    pool: ProcessPool, argvs: Dict[Any, List[str]], at_once: int, budget_s: float
) -> Dict[Any, LabProcess]:
    """Every argv run to its end, ``at_once`` at a time, in the order given (longest first
    packs best); a process still running ``budget_s`` after its start is killed, and its
    test fails on the exit status."""
    waiting = list(argvs.items())
    done: Dict[Any, LabProcess] = {}
    running: Dict[str, Any] = {}
    while waiting or running:
        while waiting and len(running) < at_once:
            key, argv = waiting.pop(0)
            running[key] = (pool.start(argv), time.monotonic())
        for key, (process, started) in list(running.items()):
            if not process.running() or time.monotonic() - started > budget_s:
                try:
                    process.wait(1)
                except AssertionError:
                    pass  # overstayed and killed: its test fails on the exit status
                done[key] = process
                del running[key]
        time.sleep(0.2)  # polling children that report only by exiting
    return done
