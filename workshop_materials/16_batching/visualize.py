"""Module 16 dashboard: `bplab visualize --module 16` (see README.md in this folder)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _launch import launch  # noqa: E402

if __name__ == "__main__":
    launch(16, "visualize")
