"""Module 18 dashboard: `bplab visualize --module 18` (see README.md in this folder)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _launch import launch  # noqa: E402

if __name__ == "__main__":
    launch(18, "visualize")
