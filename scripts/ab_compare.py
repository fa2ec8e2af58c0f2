"""Two versions of the lab, measured in one run: before and after a performance change.

    python scripts/ab_compare.py --before 38076ec [--after COMMIT] [--rounds 2]

For each side the script unpacks that commit of the repository (``git archive``) into a
temporary folder, copies in today's measuring code (``lab/tools/bench/harness.py``, ``perf.py``
and ``theory.py``), so that only the code under test differs, and then measures, with that
folder first on the path of every process it starts:

* **redraw**: the CPU time of one dashboard redraw, rich ``Live`` included, offline (a
  Module 12 drop-mode dashboard built from simulated snapshots, 400 redraws into a
  120x40 colour terminal that is a ``StringIO``);
* **telemetry**: ``perf.measure_telemetry``, the unpaced drop-mode data path with windows
  alternating without and with three visualizers under pseudo-terminals (see
  ``docs/performance.md``), which gives the median cost, the noise floor and the
  visualizers' CPU;
* **overload**: ``perf.run_overload``, 100,000 msg/s into a 10,000 msg/s consumer with one
  dashboard, 10 s: the CPU of the producer, the consumer and the dashboard.

Sides alternate (before, after, before, after, ...) so both see the same machine. The
default ``--after`` is the working tree as it is now.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, List

REPO = Path(__file__).resolve().parent.parent
MEASURING_CODE = (
    "lab/tools/bench/harness.py",
    "lab/tools/bench/perf.py",
    "lab/tools/bench/theory.py",
)


def unpack(commit: str, into: Path) -> Path:
    """``commit`` of this repository as plain files, with today's measuring code."""
    into.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", commit], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    for name in MEASURING_CODE:
        shutil.copy(REPO / name, into / name)
    return into


def measure_side(tree: Path, pairs: int) -> Dict[str, Any]:
    """Run this script's ``--measure`` in ``tree``: its ``lab`` is the one imported."""
    env = dict(os.environ, PYTHONPATH=str(tree))
    argv = [sys.executable, str(Path(__file__).resolve()), "--measure", "--pairs", str(pairs)]
    done = subprocess.run(argv, cwd=tree, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"ab_compare: measuring {tree} failed:\n{done.stderr.strip()}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def redraw_ms(width: int = 120, height: int = 40, redraws: int = 400) -> float:
    """CPU milliseconds per redraw of a Module 12 drop-mode dashboard, rich ``Live`` included."""
    import io
    import time

    from rich.console import Console
    from rich.live import Live

    from lab.core.config import ConsumerConfig, ProducerConfig
    from lab.tools.sim import simulate

    try:
        from lab.core.telemetry import complete
    except ImportError:  # a commit from before the schema: the dashboard took plain dicts

        def complete(snapshot):
            return snapshot

    from lab.ui.dashboard import DashboardState, render

    state = DashboardState(12, "Backpressure", 12000)
    consumer, producer = ConsumerConfig(mode="drop"), ProducerConfig(rate=20.0)
    for at in (5.0, 6.0):
        result = simulate(consumer, [producer], duration=at, drain=0.0, stop_times=[1e9])
        snap = result.consumer_core.snapshot(at, rss_mb=40.0, cpu_pct=5.0)
        prod = result.producer_cores[0].snapshot(at, rss_mb=30.0, cpu_pct=3.0)
        state.update(complete(dict(snap, id="consumer-12000")), at)
        state.update(complete(dict(prod, id=prod["name"])), at)
    terminal = io.StringIO()
    console = Console(
        file=terminal, width=width, height=height, force_terminal=True, color_system="truecolor"
    )
    with Live(render(state, 6.0, width, height), console=console, auto_refresh=False) as live:
        started = time.process_time()
        for index in range(redraws):
            live.update(render(state, 6.0 + index / 100, width, height), refresh=True)
        spent = time.process_time() - started
    return spent / redraws * 1e3


def measure(pairs: int) -> Dict[str, Any]:
    from dataclasses import replace

    from lab.tools.bench import perf

    plan = replace(perf.BenchPlan(paced_telemetry=False), telemetry_pairs=pairs)
    telemetry = perf.measure_telemetry(plan)
    overload = perf.run_overload(10.0, 1.0, visualizers=1)
    return {"redraw_ms": redraw_ms(), **telemetry, "overload": overload}


def summary_row(side: str, result: Dict[str, Any]) -> List[str]:
    cpu = result["visualizer_cpu_pct"]
    overload = result["overload"]
    return [
        side,
        f"{result['redraw_ms']:.2f}",
        f"{statistics.median(cpu):.2f} / {max(cpu):.2f}",
        f"{statistics.median(result['refresh_per_s']):.2f}",
        f"{result['mps_0_visualizers']:,.0f}",
        f"{result['mps_with_visualizers']:,.0f}",
        f"{result['telemetry_cost_pct']:.2f}",
        ", ".join(f"{c:.1f}" for c in result["pair_costs_pct"]),
        ", ".join(f"{c:.1f}" for c in result["noise_costs_pct"]),
        f"{overload['producer_mps']:,.0f}",
        " / ".join(f"{overload['cpu_pct'][role]:.1f}" for role in ("producer", "consumer"))
        + f" / {overload['visualizer_cpu_pct'][0]:.1f}",
    ]


HEADERS = [
    "side",
    "ms per redraw (120x40)",
    "visualizer CPU %, median / max",
    "redraws/s",
    "msg/s, 0 visualizers",
    "msg/s, 3 visualizers",
    "cost % (median)",
    "cost % of each pair",
    "noise floor %",
    "overload: producer msg/s",
    "overload: CPU % producer / consumer / dashboard",
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", help="the commit to compare with", default=None)
    parser.add_argument("--after", default=None, help="a commit (default: the working tree)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--pairs", type=int, default=8, help="telemetry windows per side")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.pairs)))
        return 0
    if not args.before:
        parser.error("--before COMMIT is required")
    sys.path.insert(0, str(REPO))
    from lab.tools.bench.theory import markdown_table

    with tempfile.TemporaryDirectory(prefix="ab-compare-") as scratch:
        trees = {"before": unpack(args.before, Path(scratch) / "before")}
        trees["after"] = unpack(args.after, Path(scratch) / "after") if args.after else REPO
        rows = []
        for round_number in range(1, args.rounds + 1):
            for side, tree in trees.items():
                sys.stderr.write(f"ab_compare: round {round_number}, {side} ...\n")
                result = measure_side(tree, args.pairs)
                if args.json:
                    print(json.dumps({"side": side, "round": round_number, **result}))
                rows.append(summary_row(side, result))
    if not args.json:
        print(markdown_table(HEADERS, rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
