"""Module 18 consumer: `bplab consumer --module 18`. See README.md here; --help lists flags."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _launch import launch  # noqa: E402

if __name__ == "__main__":
    launch(18, "consumer")
