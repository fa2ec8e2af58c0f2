"""Open a module in tmux, the way the lesson runs it: consumer, dashboard and producer panes.

    python scripts/tmux_layout.py 12            # session "bplab-12", then: tmux attach -t bplab-12
    python scripts/tmux_layout.py 12 --attach   # and attach at once

The dashboard gets the big pane on the left; the consumer and producer share the right.
Restart the consumer with other flags in its pane (Ctrl-C, then the up arrow) while the
room watches the dashboard. Needs tmux (Linux, macOS, WSL). Run it from anywhere.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from lab.core.modules import get_module  # noqa: E402


def pane_command(script: Path, *args: str) -> str:
    return " ".join(shlex.quote(part) for part in (sys.executable, str(script), *args))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("module", type=int, help="module number, e.g. 12")
    parser.add_argument("--attach", action="store_true", help="attach to the session")
    args = parser.parse_args()
    if shutil.which("tmux") is None:
        print(
            "tmux_layout: tmux is not installed; run the three commands of the lesson in "
            "three terminals instead",
            file=sys.stderr,
        )
        return 2
    try:
        spec = get_module(args.module)
    except ValueError as error:
        print(f"tmux_layout: {error}", file=sys.stderr)
        return 2
    folder = REPO / "workshop_materials" / spec.folder
    visualizer = next(folder.glob("visualize*.py"))
    session = f"bplab-{spec.number}"
    if subprocess.run(["tmux", "has-session", "-t", session], capture_output=True).returncode == 0:
        print(f"tmux_layout: session {session} already exists: tmux attach -t {session}")
        return 0
    tmux = ["tmux"]
    subprocess.run(
        tmux
        + ["new-session", "-d", "-s", session, "-x", "160", "-y", "45", pane_command(visualizer)],
        check=True,
    )
    subprocess.run(
        tmux
        + [
            "split-window",
            "-h",
            "-t",
            session,
            "-l",
            "70",
            pane_command(folder / "consumer.py", "--port", str(spec.port)),
        ],
        check=True,
    )
    subprocess.run(
        tmux + ["split-window", "-v", "-t", session, pane_command(folder / "producer.py")],
        check=True,
    )
    print(
        f"tmux session {session} started: tmux attach -t {session} "
        f"(end it with: tmux kill-session -t {session})"
    )
    if args.attach:
        return subprocess.call(tmux + ["attach", "-t", session])
    return 0


if __name__ == "__main__":
    sys.exit(main())
