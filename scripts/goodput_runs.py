"""Module 19's measurement: the four queue disciplines side by side under 2x overload.

Each discipline gets its own consumer (buffer 500, 100 msg/s simulated worker) and
producer (200 msg/s, a 500 ms deadline), the module's defaults, all at once on ports
19000, 19010, 19020, 19030: the lesson's commands, ``bplab consumer --module 19
--until-idle --json --discipline D`` and ``bplab producer --module 19 --duration 60
--json``. Prints one table row each: processed, goodput, wasted, dropped at dequeue, and
goodput as a share of what the worker can do in the producer's ``--seconds``. The worker's
time is simulated, so the counts hardly depend on how busy the machine is.

    .venv/bin/python scripts/goodput_runs.py --seconds 60
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

DISCIPLINES = ("fifo", "deadline-drop", "adaptive-lifo", "codel")
CAPACITY_MPS = 100.0


def start(role: str, port: int, *extra: str) -> subprocess.Popen:
    argv = [sys.executable, "-m", "lab", role, "--module", "19", "--port", str(port)]
    return subprocess.Popen([*argv, "--json", "--quiet", *extra], stdout=subprocess.PIPE, text=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    pairs = []
    for index, name in enumerate(DISCIPLINES):
        port = 19000 + 10 * index
        consumer = start("consumer", port, "--until-idle", "--discipline", name)
        pairs.append((name, consumer, start("producer", port, "--duration", f"{args.seconds:g}")))
    try:
        for _, _, producer in pairs:
            producer.wait()
        print(f"{'discipline':<14} {'processed':>9} {'goodput':>8} {'wasted':>7} "
              f"{'dropped at dequeue':>18} {'goodput/capacity':>16}")  # fmt: skip
        for name, consumer, _ in pairs:
            out, _ = consumer.communicate(timeout=60)  # --until-idle: the backlog drains
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
