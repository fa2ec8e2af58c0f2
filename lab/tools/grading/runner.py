"""Running a challenge's plan with real processes: the imperative shell of the graders.

The solver's file is never imported here. One run, in order:

1. the probe's child (``python -m lab.tools.grading.probe``) loads the file behind the
   plugin guard and answers the challenge's probe (:func:`run_probe`), with a timeout;
2. the consumer starts on a free block of loopback ports (``lab.processes.net.free_port_block``),
   with ``--json --record``; the runner waits, with a deadline, for its first telemetry
   snapshot;
3. the producer starts with ``--duration``; the runner waits for it to finish (at most
   :data:`EXIT_SLACK_S` past the scenario's length), then stops the consumer (SIGTERM: it
   prints its summary and exits);
4. the summaries, the recordings and the plugin guard's timing report become the
   :class:`~lab.tools.grading.core.Evidence`.

Children are started with ``sys.executable -m lab`` (the same interpreter, the same
``lab`` package), watch the runner's pid, and are always stopped, whatever happens: a
deadline passed, a child crashed, Ctrl-C. When the solver's code raises or hangs in a
child, the child's plugin guard ends it with one line naming the file and line (or, for a
C call that held the interpreter's lock, faulthandler's dump, which
:func:`lab.processes.plugins.hang_from_dump` reads), and the runner raises
:class:`RunError` with that line.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional

import zmq

from lab.core import protocol, telemetry
from lab.processes import net, plugins
from lab.processes.children import Child
from lab.tools.grading.challenges import Challenge, Plan, Scenario
from lab.tools.grading.core import Evidence

READY_TIMEOUT_S = 30.0  # a busy laptop may take long to start Python and ZeroMQ
EXIT_SLACK_S = 20.0  # beyond the producer's --duration
PORT_ATTEMPTS = 3  # another program may take a "free" port before the consumer binds it
PROBE_TIMEOUT_S = 20.0  # the probe's whole child: start-up, loading, every question


class RunError(Exception):
    """The scenario could not run to the end; the message is one line saying why."""


class ChildUsageError(RunError):
    """A process refused to start (exit status 2): a flag, or the solver's file (for instance
    its constructor raised); the message is the process's own one line."""


class ProbeUsageError(Exception):
    """The file has no suitable class (the loader's one line)."""


def run_probe(
    challenge: Challenge, path: str, seed: int, python: str = sys.executable
) -> Dict[str, Any]:
    """The probe's answers, from a child process. Raises :class:`ProbeUsageError` when the
    file has no suitable class and :class:`RunError` when the solver's code raised or hung
    (or the answers could not be used)."""
    argv = [python, "-m", "lab.tools.grading.probe", challenge.name, path, str(seed)]
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:  # run() has killed it
        raise RunError(
            f"your code did not return within {PROBE_TIMEOUT_S:g} s (in the probe)"
        ) from None
    if done.returncode == plugins.EXIT_PLUGIN_FAILED:
        raise RunError(_without_prefix(_last_line(done.stderr)))
    hung = plugins.hang_from_dump(done.stderr)
    if hung is not None:
        raise RunError(hung)
    try:
        reply = json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        raise RunError(
            f"the probe stopped (exit {done.returncode}): {_last_line(done.stderr)}"
        ) from None
    if reply["status"] == "usage":
        raise ProbeUsageError(reply["error"])
    if reply["status"] != "ok":
        raise RunError(reply["error"])
    return reply["answers"]


def run_scenario(
    plan: Plan,
    plugin_path: str,
    python: str = sys.executable,
    progress: Optional[Callable[[str], None]] = None,
) -> Evidence:
    """Run the plan's scenario with the solver's file; raise :class:`RunError` if it
    cannot end."""
    plugin_path = os.path.abspath(plugin_path)
    say = progress or (lambda _text: None)
    with tempfile.TemporaryDirectory(prefix="bplab-check-") as folder:
        for attempt in range(PORT_ATTEMPTS):
            base = net.free_port_block()
            try:
                return _run_once(plan.scenario, plugin_path, python, base, Path(folder), say)
            except _PortTaken:
                if attempt == PORT_ATTEMPTS - 1:
                    raise RunError("no free ports: the consumer could not bind") from None
    raise AssertionError("unreachable")  # pragma: no cover


class _PortTaken(Exception):
    pass


def _run_once(
    scenario: Scenario,
    plugin_path: str,
    python: str,
    base: int,
    folder: Path,
    say: Callable[[str], None],
) -> Evidence:
    records = {role: folder / f"{role}-{base}.jsonl" for role in ("consumer", "producer")}
    report = folder / f"plugin-{base}.json"
    children: List[Child] = []
    try:
        say(f"consumer starting on port {base}")
        consumer = _start(python, "consumer", scenario, plugin_path, base, records, report)
        children.append(consumer)
        _wait_ready(consumer, base)
        say(f"producer running for {scenario.duration_s:g} s")
        producer = _start(python, "producer", scenario, plugin_path, base, records, report)
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
            plugin=_read_report(report),
        )
    finally:
        for child in reversed(children):
            child.stop()
            child.close()


def _argv(python: str, role: str, scenario: Scenario, plugin_path: str, base: int, record: Path):
    flags = scenario.consumer_flags if role == "consumer" else scenario.producer_flags
    argv = [python, "-m", "lab", role, "--module", str(scenario.module), *flags]
    if role == "producer":
        argv += ["--duration", f"{scenario.duration_s:g}"]
    if role == scenario.plugin_role:
        argv += [scenario.plugin_flag, plugin_path]
    if role == "consumer" and scenario.memory_pressure is not None:
        argv += ["--memory-pressure", ":".join(f"{v:g}" for v in scenario.memory_pressure)]
    argv += ["--port", str(base), "--json", "--quiet", "--record", str(record)]
    return argv + ["--parent-pid", str(os.getpid())]


def _start(
    python: str,
    role: str,
    scenario: Scenario,
    plugin_path: str,
    base: int,
    records: Dict[str, Path],
    report: Path,
) -> Child:
    """The demo's kind of child: output in files (never a full pipe), a polite stop. The
    process that runs the solver's code gets the guard's report file through its
    environment."""
    argv = _argv(python, role, scenario, plugin_path, base, records[role])
    extra: Dict[str, str] = {}
    if role == scenario.plugin_role:
        extra[plugins.REPORT_ENV] = str(report)
    with _environment(extra):
        return Child(role, argv)


@contextlib.contextmanager
def _environment(extra: Dict[str, str]) -> Iterator[None]:
    """``os.environ`` with ``extra`` for the duration (a child inherits it at start)."""
    saved = {key: os.environ.get(key) for key in extra}
    os.environ.update(extra)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


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
    if child.popen.returncode == plugins.EXIT_PLUGIN_FAILED:
        raise RunError(_without_prefix(last))
    hung = plugins.hang_from_dump(err)
    if hung is not None:
        raise RunError(hung)
    if child.popen.returncode < 0 and last == "no message":
        # Killed by the runner: it stopped answering even its watchdog, so something held
        # the interpreter in one call that Python cannot interrupt.
        raise RunError(
            f"the {role} stopped answering and was killed (exit {child.popen.returncode}): "
            "if your code runs there, one call into it never returned, not even to the "
            "lab's watchdog"
        )
    raise RunError(f"the {role} stopped early (exit {child.popen.returncode}): {last}")


def _without_prefix(line: str) -> str:
    return line[len("error: ") :] if line.startswith("error: ") else line


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


def _read_report(path: Path) -> Dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, json.JSONDecodeError):
        return {}
