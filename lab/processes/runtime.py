"""What every lab process's main loop needs besides its core: stopping, recording, summaries.

* :class:`StopSignal` turns Ctrl-C and SIGTERM into a flag the loop checks, so every process
  stops the same way: finish the current step, print a summary, exit 0.
* :class:`Recorder` appends telemetry snapshots to a JSON Lines file (``--record``).
* :class:`Periodic` says when a fixed-interval job (telemetry at 10 Hz) is due, without drift.
* :class:`ParentWatch` ends a child of ``bplab demo`` whose parent has gone.
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
from typing import Any, Dict, Optional, TextIO

import psutil


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
