"""Starts a lab role from a workshop script, whatever Python and directory it was run from.

The workshop's commands are written ``python3 workshop_materials/NN_topic/consumer.py``.
If that ``python3`` is not the one the lab was installed into (a new terminal where the
virtual environment is not activated), this finds the project's ``.venv`` and runs the
same command with it, instead of failing with an ImportError.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
INSTALL_HINT = "python3 -m venv .venv && .venv/bin/python -m pip install -e ."


def _venv_python() -> Path:
    if os.name == "nt":
        return REPO / ".venv" / "Scripts" / "python.exe"
    return REPO / ".venv" / "bin" / "python"


def _lab_importable() -> bool:
    try:
        import psutil  # noqa: F401
        import rich  # noqa: F401
        import typer  # noqa: F401
        import zmq  # noqa: F401
    except ImportError:
        return False
    return True


def launch(module: int, role: str) -> None:
    if not _lab_importable():
        candidate = _venv_python()
        # Compare environments, not binaries: a venv's python is a link to the very
        # interpreter that made it, so the two executables resolve to the same file.
        in_venv = Path(sys.prefix).resolve() == (REPO / ".venv").resolve()
        if candidate.exists() and not in_venv:
            argv = [str(candidate), os.path.abspath(sys.argv[0]), *sys.argv[1:]]
            if os.name == "nt":
                sys.exit(subprocess.call(argv))
            os.execv(argv[0], argv)
        sys.stderr.write(
            f"{os.path.basename(sys.argv[0])}: the lab is not installed for {sys.executable}; "
            f"from {REPO} run: {INSTALL_HINT}\n"
        )
        sys.exit(2)
    if str(REPO) not in sys.path:
        sys.path.append(str(REPO))  # a checkout that was not pip-installed still works
    from lab.ui.cli import run_module_role

    run_module_role(module, role)
