"""Running a challenge's scenario with real processes: the imperative shell of the graders.

One run, in order:

1. the solver's file is loaded here first (:func:`load_solution`), so a file that does not
   load fails at once with the loader's one-line message, and the challenge's probe (if
   any) puts its questions to the class;
2. the consumer starts on a free block of loopback ports (``lab.processes.net.free_port_block``),
   with ``--json --record``; the runner waits, with a deadline, for its first telemetry
   snapshot;
3. the producer starts with ``--duration``; the runner waits for it to finish, then stops
   the consumer (SIGTERM: it prints its summary and exits);
4. the summaries and recordings become the :class:`~lab.tools.grading.core.Evidence`.

Children are started with ``sys.executable -m lab`` (the same interpreter, the same
``lab`` package), watch the runner's pid, and are always stopped, whatever happens: a
deadline passed, a child crashed, Ctrl-C.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import zmq

from lab.core import protocol, telemetry
from lab.processes import net, plugins
from lab.processes.demo import Child
from lab.tools.grading.challenges import Challenge
from lab.tools.grading.core import Evidence

READY_TIMEOUT_S = 30.0  # a busy laptop may take long to start Python and ZeroMQ
EXIT_SLACK_S = 30.0  # beyond the producer's --duration
PORT_ATTEMPTS = 3  # another program may take a "free" port before the consumer binds it


class RunError(Exception):
    """The scenario could not run to the end; the message is one line saying why."""


class ChildUsageError(RunError):
    """A process refused to start (exit status 2): a flag, or the solver's file (for instance
    its constructor raised); the message is the process's own one line."""


def load_solution(challenge: Challenge, path: str) -> type:
    """The solver's class, loaded as the process will load it (raises PluginError)."""
    return plugins.load_class(path, challenge.scenario.plugin_kind)


def run_probe(challenge: Challenge, cls: type) -> Dict[str, Any]:
    """The challenge's probe answers, or ``{"error": ...}`` if the solver's class raised."""
    if challenge.probe is None:
        return {}
    try:
        return challenge.probe(cls)
    except Exception as error:  # the solver's code: any error is theirs to see
        return {"error": f"{error.__class__.__name__}: {error}"}


def run_scenario(
    challenge: Challenge,
    plugin_path: str,
    python: str = sys.executable,
    progress: Optional[Callable[[str], None]] = None,
) -> Evidence:
    """Run the scenario with the solver's file; raise :class:`RunError` if it cannot end."""
    plugin_path = os.path.abspath(plugin_path)
    say = progress or (lambda _text: None)
    with tempfile.TemporaryDirectory(prefix="bplab-check-") as folder:
        for attempt in range(PORT_ATTEMPTS):
            base = net.free_port_block()
            try:
                return _run_once(challenge, plugin_path, python, base, Path(folder), say)
            except _PortTaken:
                if attempt == PORT_ATTEMPTS - 1:
                    raise RunError("no free ports: the consumer could not bind") from None
    raise AssertionError("unreachable")  # pragma: no cover


class _PortTaken(Exception):
    pass


def _run_once(
    challenge: Challenge,
    plugin_path: str,
    python: str,
    base: int,
    folder: Path,
    say: Callable[[str], None],
) -> Evidence:
    scenario = challenge.scenario
    records = {role: folder / f"{role}-{base}.jsonl" for role in ("consumer", "producer")}
    children: List[Child] = []
    try:
        say(f"consumer starting on port {base}")
        consumer = _start(python, "consumer", challenge, plugin_path, base, records["consumer"])
        children.append(consumer)
        _wait_ready(consumer, base)
        say(f"producer running for {scenario.duration_s:g} s")
        producer = _start(python, "producer", challenge, plugin_path, base, records["producer"])
        children.append(producer)
        _wait_producer(producer, consumer, scenario.duration_s + EXIT_SLACK_S)
        consumer.stop()
        _check_exit(consumer, "consumer", allowed=(0, 3))
        _check_exit(producer, "producer", allowed=(0,))
        return Evidence(
            consumer=consumer.summary() or {},
            producer=producer.summary() or {},
            consumer_records=_read_records(records["consumer"], "consumer"),
            producer_records=_read_records(records["producer"], "producer"),
        )
    finally:
        for child in reversed(children):
            child.stop()
            child.close()


def _argv(
    python: str, role: str, challenge: Challenge, plugin_path: str, base: int, record: Path
) -> List[str]:
    scenario = challenge.scenario
    flags = scenario.consumer_flags if role == "consumer" else scenario.producer_flags
    argv = [python, "-m", "lab", role, "--module", str(scenario.module), *flags]
    if role == "producer":
        argv += ["--duration", f"{scenario.duration_s:g}"]
    if role == scenario.plugin_role:
        argv += [scenario.plugin_flag, plugin_path]
    argv += ["--port", str(base), "--json", "--quiet", "--record", str(record)]
    return argv + ["--parent-pid", str(os.getpid())]


def _start(
    python: str, role: str, challenge: Challenge, plugin_path: str, base: int, record: Path
) -> Child:
    """The demo's kind of child: output in files (never a full pipe), a polite stop."""
    return Child(role, _argv(python, role, challenge, plugin_path, base, record))


def _wait_ready(consumer: Child, base: int) -> None:
    """Until the consumer's first telemetry snapshot arrives (it is listening by then)."""
    ctx = zmq.Context()
    sub = net.telemetry_subscriber(ctx)
    try:
        sub.connect(net.endpoint("127.0.0.1", base + net.TELEMETRY_OUT_OFFSET))
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if not consumer.running():
                _exited_early(consumer, "consumer")
            if sub.poll(100):
                try:
                    snapshot = protocol.decode_snapshot(sub.recv_multipart())
                except protocol.ProtocolError:
                    continue
                if snapshot.get("role") == "consumer":
                    return
        raise RunError(f"the consumer did not start within {READY_TIMEOUT_S:g} s")
    finally:
        sub.close(linger=0)
        ctx.term()


def _wait_producer(producer: Child, consumer: Child, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            producer.popen.wait(timeout=0.1)
            return
        except subprocess.TimeoutExpired:
            pass
        if not consumer.running():
            _exited_early(consumer, "consumer")
        if time.monotonic() > deadline:
            raise RunError(f"the producer did not finish within {timeout:g} s")


def _exited_early(child: Child, role: str) -> None:
    _, err = child.output()
    last = _last_line(err)
    if child.popen.returncode == 2 and "already in use" in last:
        raise _PortTaken()
    if child.popen.returncode == 2:
        raise ChildUsageError(last.split("error: ", 1)[-1])
    raise RunError(f"the {role} stopped early (exit {child.popen.returncode}): {last}")


def _check_exit(child: Child, role: str, allowed) -> None:
    code = child.popen.returncode
    if code not in allowed:
        _exited_early(child, role)
    if child.summary() is None:
        raise RunError(f"the {role} printed no summary")


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no message"


def _read_records(path: Path, role: str) -> List[Dict[str, Any]]:
    """The ``role``'s own snapshots in a --record file, completed by the telemetry schema
    (a consumer's file also holds the producer snapshots it relays)."""
    out: List[Dict[str, Any]] = []
    if not path.is_file():
        return out
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            try:
                record = telemetry.complete(json.loads(line))
            except (json.JSONDecodeError, telemetry.TelemetryError):
                continue  # a line cut short by a stop, or not a snapshot: skip it
            if record["role"] == role:
                out.append(record)
    return out
