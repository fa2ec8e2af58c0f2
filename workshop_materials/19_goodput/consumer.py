"""Module 19 consumer: `bplab consumer --module 19`. See README.md here; --help lists flags."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _launch import launch  # noqa: E402

if __name__ == "__main__":
    launch(19, "consumer")
