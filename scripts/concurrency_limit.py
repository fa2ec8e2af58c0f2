"""Module 19: a producer's adaptive concurrency limit against Little's law, and a slowdown.

For each algorithm (AIMD, Gradient), at once: a Module 13 consumer (drop mode, buffer 50,
100 msg/s) and a producer offering 200 msg/s under ``--limit-algorithm``; halfway the
consumer's worker is made 2x slower (``bplab ctl slow 2``). From the producer's recorded
telemetry it prints, before and after the slowdown, the mean limit, the mean outstanding
count, the answer rate λ, the mean round trip W and λ·W.

    .venv/bin/python scripts/concurrency_limit.py [--seconds 20] [--json]

``--json`` prints the same figures as one JSON object instead of the table (what
``scripts/check_lessons.py`` reads): per algorithm, per half ("1x", "2x slow"), the mean
``limit``, ``outstanding``, ``rate`` (λ, msg/s), ``rtt_ms`` (W) and ``little`` (λ·W),
and the consumer's ``dropped`` for the whole run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lab.core.concurrency import stretch  # noqa: E402
from lab.processes.net import free_port_block  # noqa: E402

ALGORITHMS = ("aimd", "gradient")


def lab(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "lab", *args], stdout=subprocess.DEVNULL)


def windows(record: Path, seconds: float):
    snaps = [json.loads(line) for line in record.read_text().splitlines() if line.strip()]
    snaps = [s for s in snaps if s.get("role") == "producer" and s.get("concurrency")]

    def at(t: float):
        return min(snaps, key=lambda s: abs(s["uptime_s"] - t))["concurrency"]

    half = seconds / 2
    # a settling time of 40 % of each half: the start, then the slowdown
    means = [stretch(at(a), at(b)) for a, b in ((0.4 * half, half), (1.4 * half, seconds))]
    return means, snaps[-1]["totals"]["dropped"]


def as_json(results) -> dict:
    """Per algorithm: each half's means (W in ms) and the consumer's drops."""
    out = {}
    for algorithm, (means, dropped) in results.items():
        halves = {}
        for name, m in zip(("1x", "2x slow"), means):
            row = {key: m[key] for key in ("limit", "outstanding", "rate", "little")}
            row["rtt_ms"] = None if m["rtt"] is None else m["rtt"] * 1e3
            halves[name] = row
        out[algorithm] = {**halves, "dropped": dropped}
    return out


def table(results) -> str:
    lines = [
        f"{'algorithm':<9} {'worker':<7} {'limit':>6} {'out':>6} {'λ msg/s':>8} "
        f"{'W ms':>6} {'λ·W':>6}"
    ]
    for algorithm, (means, dropped) in results.items():
        lines.append(f"{algorithm}: {dropped} dropped by the consumer in the whole run")
        for name, m in zip(("1x", "2x slow"), means):
            lines.append(
                f"{algorithm:<9} {name:<7} {m['limit']:6.1f} {m['outstanding']:6.1f} "
                f"{m['rate']:8.1f} {m['rtt'] * 1e3:6.0f} {m['little']:6.1f}"
            )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bplab-limit-"))
    runs = []
    for algorithm in ALGORITHMS:
        port = str(free_port_block())
        record = folder / f"{algorithm}.jsonl"
        common = ["--module", "13", "--port", port, "--quiet"]
        consumer = lab("consumer", *common, "--duration", str(args.seconds + 3))
        producer = lab(
            "producer",
            *common,
            *("--mps", "200", "--profile", "steady", "--limit-algorithm", algorithm),
            *("--limit-timeout-ms", "200", "--duration", str(args.seconds)),
            *("--record", str(record)),
        )
        runs.append((algorithm, port, record, consumer, producer))
    try:
        time.sleep(args.seconds / 2 + 0.5)  # the producer starts about 0.5 s after launch
        for _, port, _, _, _ in runs:
            subprocess.run(
                [sys.executable, "-m", "lab", "ctl", "slow", "2", "--port", port],
                stdout=subprocess.DEVNULL,
                check=True,
            )
        for run in runs:
            run[4].wait(timeout=args.seconds + 30)
    finally:
        for run in runs:
            for process in run[3:]:
                if process.poll() is None:
                    process.terminate()
                    process.wait(timeout=10)
    results = {algorithm: windows(record, args.seconds) for algorithm, _, record, _, _ in runs}
    if args.json:
        print(json.dumps(as_json(results), sort_keys=True))
    else:
        print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
