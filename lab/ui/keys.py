"""Single keypresses from the terminal, without waiting for Enter (the demo's live control).

:class:`KeyReader` puts the terminal in cbreak mode (POSIX) from creation until ``close()``
and returns the keys pressed so far without blocking; on Windows it uses ``msvcrt``. When
standard input is not a terminal (a pipe, a test, CI) it reads nothing and changes nothing.
The terminal is restored on close, even after an error (it is also a context manager).

:func:`key_actions` is the key map, a table built from the module's live modes, and
:func:`legend` is the line the dashboard shows so the whole room knows the keys.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Dict, List, Optional, Sequence

RATE_STEP = 2.0


class KeyReader:
    def __init__(self) -> None:
        self.enabled = False
        self._saved: Any = None
        self._fd: Optional[int] = None
        try:
            interactive = sys.stdin is not None and sys.stdin.isatty()
        except (AttributeError, ValueError):
            interactive = False
        if not interactive:
            return
        if os.name == "nt":
            self.enabled = True
            return
        import termios
        import tty

        self._fd = sys.stdin.fileno()
        try:
            self._saved = termios.tcgetattr(self._fd)
            tty.setcbreak(self._fd)
            self.enabled = True
        except termios.error:
            self._saved = None

    def __enter__(self) -> KeyReader:
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()

    def close(self) -> None:
        if self._saved is not None and self._fd is not None:
            import termios

            termios.tcsetattr(self._fd, termios.TCSADRAIN, self._saved)
            self._saved = None
        self.enabled = False

    def read(self) -> List[str]:
        """Every key pressed since the last call (never blocks)."""
        if not self.enabled:
            return []
        if os.name == "nt":
            import msvcrt

            keys = []
            while msvcrt.kbhit():  # type: ignore[attr-defined]
                keys.append(msvcrt.getwch())  # type: ignore[attr-defined]
            return keys
        import select

        keys: List[str] = []
        while select.select([sys.stdin], [], [], 0)[0]:
            data = os.read(self._fd, 64).decode(errors="ignore")  # type: ignore[arg-type]
            if not data:
                break
            keys.extend(data)
        return keys


KNOB_KEYS: Dict[str, Dict[str, Dict[str, Any]]] = {
    "batch": {
        "]": {"cmd": "batch", "value": "double"},
        "[": {"cmd": "batch", "value": "half"},
        "a": {"cmd": "batch", "value": "adaptive"},
        "f": {"cmd": "batch", "value": "fixed"},
    },
    "workers": {
        "]": {"cmd": "workers", "value": "more"},
        "[": {"cmd": "workers", "value": "fewer"},
    },
}
KNOB_KEYS["discipline"] = {  # Module 19
    key: {"cmd": "discipline", "value": name}
    for key, name in (
        ("f", "fifo"),
        ("l", "lifo"),
        ("a", "adaptive-lifo"),
        ("d", "deadline-drop"),
        ("c", "codel"),
    )
}
KNOB_KEYS["flow"] = {  # Module 18: the window, and the link's delay (both ends)
    "]": {"cmd": "window", "value": "double"},
    "[": {"cmd": "window", "value": "half"},
    ">": {"cmd": "delay", "value": "more"},
    ".": {"cmd": "delay", "value": "more"},  # the same key without shift
    "<": {"cmd": "delay", "value": "less"},
    ",": {"cmd": "delay", "value": "less"},
}
KNOB_LEGENDS = {
    "batch": "[/] batch  a adaptive  f fixed",
    "workers": "[/] workers",
    "discipline": "f/l/a/d/c fifo/lifo/adaptive/deadline/codel",
    "flow": "[/] window  </> delay",
}


def key_actions(
    modes: Sequence[str],
    slowdown_factor: float = 4.0,
    stall_for: float = 3.0,
    knob: Optional[str] = None,
) -> Dict[str, Dict[str, Any]]:
    """Key -> control request (see ``lab/processes/control.py``); rate keys carry a
    ``factor`` that the demo turns into a rate from what the producers run at now."""
    actions: Dict[str, Dict[str, Any]] = {
        str(index): {"cmd": "mode", "value": mode} for index, mode in enumerate(modes[:9], start=1)
    }
    actions["+"] = actions["="] = {"cmd": "rate", "factor": RATE_STEP}
    actions["-"] = {"cmd": "rate", "factor": 1 / RATE_STEP}
    actions["k"] = {"cmd": "spike", "factor": 10, "duration": 5}
    actions["s"] = {"cmd": "slow", "value": slowdown_factor}
    actions["r"] = {"cmd": "restore"}
    actions["x"] = {"cmd": "stall", "value": stall_for}
    actions.update(KNOB_KEYS.get(knob or "", {}))
    return actions


def legend(modes: Sequence[str], knob: Optional[str] = None) -> str:
    mode_keys = " ".join(f"{i} {m}" for i, m in enumerate(modes[:9], start=1))
    knob_keys = f"  {KNOB_LEGENDS[knob]}" if knob in KNOB_LEGENDS else ""
    return f"keys: {mode_keys} | +/- rate{knob_keys}  k spike  s slow  r restore  x stall  q quit"
