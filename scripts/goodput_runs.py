"""Module 19's measurement: the four queue disciplines side by side under 2x overload.

Each discipline gets its own consumer (buffer 500, 100 msg/s simulated worker, 500 ms
deadline from the module's row) and producer (200 msg/s), all at once on ports 19000,
19010, 19020, 19030, for ``--seconds`` (60 by default). Prints one table row each:
processed, goodput, wasted, dropped at dequeue, and goodput as a share of capacity.

    .venv/bin/python scripts/goodput_runs.py --seconds 60
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time

DISCIPLINES = ("fifo", "deadline-drop", "adaptive-lifo", "codel")
CAPACITY_MPS = 100.0


def start(role: str, port: int, seconds: float, *extra: str) -> subprocess.Popen:
    argv = [sys.executable, "-m", "lab", role, "--module", "19", "--port", str(port)]
    argv += ["--duration", f"{seconds:g}", "--json", "--quiet", *extra]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    pairs = []
    for index, name in enumerate(DISCIPLINES):
        port = 19000 + 10 * index
        consumer = start("consumer", port, args.seconds + 10, "--discipline", name)
        pairs.append((name, consumer, start("producer", port, args.seconds)))
    try:
        for _, _, producer in pairs:
            producer.wait()
        time.sleep(0.5)  # the last verdicts
        print(f"{'discipline':<14} {'processed':>9} {'goodput':>8} {'wasted':>7} "
              f"{'dropped at dequeue':>18} {'goodput/capacity':>16}")  # fmt: skip
        for name, consumer, _ in pairs:
            consumer.send_signal(signal.SIGINT)
            out, _ = consumer.communicate(timeout=30)
            summary = json.loads(out.strip().splitlines()[-1])
            share = summary["goodput"] / (CAPACITY_MPS * args.seconds)
            print(f"{name:<14} {summary['processed']:>9,} {summary['goodput']:>8,} "
                  f"{summary['wasted']:>7,} {summary['dequeue_dropped']:>18,} "
                  f"{share:>15.0%}")  # fmt: skip
    finally:
        for _, consumer, producer in pairs:
            for process in (producer, consumer):
                if process.poll() is None:
                    process.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
