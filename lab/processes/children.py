"""A lab process started by another one (the demo, the graders, the benchmarks).

Children are started with ``sys.executable`` (no fork, the same interpreter everywhere), in
their own process group or session, so a terminal's Ctrl-C reaches only the parent, which
stops them in order. Their output goes to temporary files, never pipes: a child can never
block on a full pipe nobody reads.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
from typing import Any, Dict, List, Optional

CHILD_STOP_TIMEOUT_S = 6.0


class Child:
    """A lab process started by the demo, with its output in temporary files."""

    def __init__(self, role: str, argv: List[str]) -> None:
        self.role = role
        # Files, not pipes: a child can never block on a full pipe nobody reads.
        self.stdout = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (closed in close())
        self.stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115
        kwargs: Dict[str, Any] = {}
        if os.name == "nt":
            kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP
        else:
            kwargs["start_new_session"] = True
        self.popen = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=self.stdout, stderr=self.stderr, **kwargs
        )

    def running(self) -> bool:
        return self.popen.poll() is None

    def stop(self) -> None:
        """Ask politely (SIGTERM / CTRL_BREAK), wait, then insist."""
        if self.running():
            self.popen.send_signal(signal.CTRL_BREAK_EVENT if os.name == "nt" else signal.SIGTERM)
            try:
                self.popen.wait(timeout=CHILD_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()

    def output(self) -> tuple:
        self.stdout.seek(0)
        self.stderr.seek(0)
        return self.stdout.read(), self.stderr.read()

    def close(self) -> None:
        self.stdout.close()
        self.stderr.close()

    def summary(self) -> Optional[Dict[str, Any]]:
        out, _ = self.output()
        for line in reversed(out.strip().splitlines()):
            if line.startswith("{"):
                try:
                    return json.loads(line)
                except json.JSONDecodeError:
                    return None
        return None
