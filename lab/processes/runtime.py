"""What every lab process's main loop needs besides its core: stopping, recording, summaries.

* :class:`StopSignal` turns Ctrl-C and SIGTERM into a flag the loop checks, so every process
  stops the same way: finish the current step, print a summary, exit 0.
* :class:`Recorder` appends telemetry snapshots to a JSON Lines file (``--record``).
* :class:`Periodic` says when a fixed-interval job (telemetry at 10 Hz) is due, without drift.
* :class:`ParentWatch` ends a child of ``bplab demo`` whose parent has gone.
* :class:`RunOptions` builds and checks a process's own options (``ConsumerRun``,
  ``ProducerRun``, ...) the way ``lab.core.config`` builds the cores' configs.
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
from dataclasses import fields
from typing import Any, Dict, List, Optional, TextIO, TypeVar

import psutil

from lab.core.config import check_positive
from lab.core.delayline import DelayLine, check_link_delay
from lab.core.modules import ModuleSpec

MAX_BASE_PORT = 65532  # the lab uses port..port+3
# Defaults of run options that more than one *Run (and the CLI's help) share.
LOOPBACK = "127.0.0.1"  # bind and connect here unless told otherwise: nothing leaves the machine
SLOWDOWN_FACTOR = 4.0  # --slowdown-factor, and the demo's s key
STALL_FOR_S = 3.0  # --stall-for, and the demo's x key
REFRESH_PER_S = 4.0  # dashboard redraws per second (--refresh)

R = TypeVar("R", bound="RunOptions")


def check_port(port: int) -> int:
    if not 1 <= port <= MAX_BASE_PORT:
        raise ValueError(
            f"--port {port} is out of range: use 1..{MAX_BASE_PORT} (the lab uses port..port+3)"
        )
    return port


def retune_link(link: Optional[DelayLine], delay_ms: float, run: Any = None) -> Optional[DelayLine]:
    """The delay line a shell holds for ``--link-delay-ms`` after a (live) change to
    ``delay_ms``: none while the link is fast and always was (no cost on the hot path);
    once made, the same line, retuned, so frames already on it keep their order. With
    ``run``, its ``link_delay_ms`` follows (what a later ``more``/``less`` starts from)."""
    if run is not None:
        run.link_delay_ms = delay_ms
    if link is None:
        return DelayLine(delay_ms / 1000.0) if delay_ms > 0 else None
    link.set_delay(delay_ms / 1000.0)
    return link


def check_link_schedule(ms: float, change_at: Optional[float], change_ms: Optional[float]) -> None:
    """``--link-delay-ms`` and its one scheduled change (``--link-delay-change-at S`` with
    ``--link-delay-change-ms D2``), which come together and only after a delay was given."""
    check_link_delay(ms)
    if (change_at is None) != (change_ms is None):
        raise ValueError(
            "--link-delay-change-at and --link-delay-change-ms go together: give both or neither"
        )
    if change_at is None or change_ms is None:
        return
    if not ms:
        raise ValueError("--link-delay-change-at needs --link-delay-ms: the delay before it")
    check_positive(change_at, "--link-delay-change-at", allow_zero=True)
    check_link_delay(change_ms, flag="--link-delay-change-ms")


def change_link(link: Optional[DelayLine], run: Any, elapsed: float) -> bool:
    """Apply the ``run``'s ``--link-delay-change-at``/``-ms`` once ``elapsed`` seconds have
    passed; True on the turn it changed (frames already on the link keep their time). It
    happens once: a live change afterwards (``bplab ctl delay``) is not undone."""
    change_at, change_ms = run.link_delay_change_at, run.link_delay_change_ms
    if link is None or change_at is None or change_ms is None or elapsed < change_at:
        return False
    run.link_delay_change_at = None
    retune_link(link, change_ms, run)
    return True


def check_record(path: Optional[str]) -> Optional[str]:
    """``--record FILE`` must be a file this process can append to: say so now, in one line."""
    if path is None:
        return None
    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "a", encoding="utf-8"):
            pass
    except OSError as error:
        raise ValueError(
            f"--record {path!r} cannot be written ({error.strerror or error}); give the path "
            "of a file in a folder you can write to"
        ) from None
    return path


# The consumer's injected faults (``bplab consumer`` and ``bplab demo``): flag, and whether 0
# makes sense (a fault at second 0 does; a factor or a length of 0 does not).
FAULT_FLAGS = (
    ("slowdown_at", True),
    ("slowdown_factor", False),
    ("slowdown_for", False),
    ("stall_at", True),
    ("stall_for", False),
)


def fault_args(options: Dict[str, Any]) -> List[str]:
    """Check the fault options in ``options`` (name -> value) and return them as consumer flags."""
    args: List[str] = []
    for name, allow_zero in FAULT_FLAGS:
        flag = "--" + name.replace("_", "-")
        value = options.get(name)
        check_positive(value, flag, allow_zero=allow_zero)
        if value is not None:
            args += [flag, repr(float(value))]
    return args


class RunOptions:
    """What every ``*Run`` dataclass shares: built from the flags a person gave (``None`` =
    not given: the port defaults to the module's, the rest to the dataclass's own defaults),
    then checked once; a problem is a ``ValueError`` with the one line a person reads."""

    port: int
    duration: Optional[float]
    record: Optional[str]

    @classmethod
    def for_module(cls: type[R], spec: ModuleSpec, **flags: Any) -> R:
        known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        unknown = set(flags) - known
        if unknown:
            raise TypeError(f"unknown flags: {', '.join(sorted(unknown))}")
        given = {name: value for name, value in flags.items() if value is not None}
        if "module" in known:
            given["module"] = spec.number
        given.setdefault("port", spec.port)
        run = cls(**given)
        run.validate()
        return run

    def validate(self) -> None:
        check_positive(self.duration, "--duration")
        self.check_own()
        check_port(self.port)
        check_record(self.record)

    def check_own(self) -> None:
        """The checks of one kind of process's own options (none here)."""


class StopSignal:
    """Set by SIGINT/SIGTERM, a deadline, or the loop itself; checked once per loop turn."""

    def __init__(self) -> None:
        self.reason: Optional[str] = None

    def install(self) -> StopSignal:
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        if hasattr(signal, "SIGBREAK"):  # Windows: Ctrl-Break and the demo's stop request
            signal.signal(signal.SIGBREAK, self._on_signal)
        return self

    def set(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason

    def __bool__(self) -> bool:
        return self.reason is not None

    def _on_signal(self, signum: int, _frame: Any) -> None:
        name = signal.Signals(signum).name
        if self.reason is not None and name == "SIGINT":
            raise KeyboardInterrupt  # a second Ctrl-C: the user really wants out
        self.set(name)


class Periodic:
    """Fires every ``interval`` seconds on a fixed grid (late turns do not shift the grid)."""

    __slots__ = ("interval", "next_at")

    def __init__(self, interval: float, now: float) -> None:
        self.interval = interval
        self.next_at = now

    def due(self, now: float) -> bool:
        if now < self.next_at:
            return False
        missed = math.floor((now - self.next_at) / self.interval)
        self.next_at += (missed + 1) * self.interval
        return True


class Recorder:
    """Appends one JSON object per line; flushes about once a second."""

    def __init__(self, path: Optional[str]) -> None:
        self._file: Optional[TextIO] = None
        self._lines_since_flush = 0
        if path:
            directory = os.path.dirname(os.path.abspath(path))
            os.makedirs(directory, exist_ok=True)
            self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 (closed in close())

    def write(self, record: Dict[str, Any]) -> None:
        if self._file is None:
            return
        self._file.write(json.dumps(record, separators=(",", ":")) + "\n")
        self._lines_since_flush += 1
        if self._lines_since_flush >= 10:
            self._file.flush()
            self._lines_since_flush = 0

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class ParentWatch:
    """True once the given parent process is gone (checked at most once a second)."""

    def __init__(self, parent_pid: Optional[int], now: float) -> None:
        self.parent_pid = parent_pid
        self._next_check = now

    def parent_gone(self, now: float) -> bool:
        if not self.parent_pid or now < self._next_check:
            return False
        self._next_check = now + 1.0
        return not psutil.pid_exists(self.parent_pid)


def print_json(summary: Dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(summary, sort_keys=True) + "\n")
    sys.stdout.flush()


def say(text: str) -> None:
    """A line for the person at the terminal (stderr, so stdout stays clean for --json)."""
    sys.stderr.write(text + "\n")
    sys.stderr.flush()
