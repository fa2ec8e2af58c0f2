"""``bplab validate --quick`` end to end, and a smoke run of the bench's measurements.

Real processes on loopback, short runs. The tolerances are the quick plan's, wide enough
for a busy 2-core CI machine; no timing figure is a pass/fail criterion here (those live in
``bplab bench`` and ``docs/performance.md``). The bench smoke test only checks that each
kind of measurement runs and reports something sane.
"""

from __future__ import annotations

import json

import psutil
import pytest

from lab.tools.bench import perf
from lab.tools.bench.harness import run_raw_pair
from lab.tools.bench.theory import interleaved_costs
from lab.tools.bench.validate import ValidatePlan

pytestmark = pytest.mark.integration


def test_quick_validation_reproduces_the_theory(procs):
    run = procs.lab("validate", "--quick", "--json")
    code = run.wait(timeout=150)
    assert run.stdout.strip(), run.stderr
    result = json.loads(run.stdout.strip().splitlines()[-1])
    checks = result["checks"]
    by_quantity = {(c["experiment"], c["quantity"], c["parameters"]): c for c in checks}
    plan = ValidatePlan.quick_plan()
    assert len(checks) == len(plan.overload) + 2 * len(plan.mm1k_rhos) + 2 + len(
        plan.batch_sizes
    ) + len(plan.pool_sizes) + len(plan.window_sizes)
    blocking = [c for c in checks if c["quantity"] == "blocking probability"]
    assert [c["parameters"].split()[0] for c in blocking] == ["ρ=0.5", "ρ=3"]
    assert all(c["unit"] == "pp" and c["tolerance"] == plan.tolerance_pp for c in blocking)
    failed = [c for c in checks if not c["ok"]]
    assert not failed, json.dumps(failed, indent=1)
    assert result["ok"] is True and code == 0
    assert any(key[0] == "Little's law" for key in by_quantity)


def test_bench_measurements_run_and_report(tmp_path):
    plan = perf.BenchPlan(warmup_s=0.3, throughput_s=1.0)
    raw = run_raw_pair("pull", "push", seconds=1.0, warmup=0.3)
    assert raw["mps"] > 0 and raw["count"] > 0
    ingest = perf.measure_ingest("drop", plan, 1000, visualizers=1)
    assert ingest["mps"] > 0
    assert set(ingest["cpu_us_per_msg"]) == {"consumer", "producer"}
    assert len(ingest["visualizer_cpu_pct"]) == 1
    assert ingest["visualizer_refresh_per_s"][0] > 0  # the dashboard drew under a terminal


def test_telemetry_cost_alternates_windows_and_leaves_nothing_running():
    plan = perf.BenchPlan(
        warmup_s=0.3, telemetry_s=0.8, telemetry_pairs=1, visualizers=2, paced_telemetry=False
    )
    result = perf.measure_telemetry(plan)
    without, loaded = result["mps_windows_0"], result["mps_windows_with"]
    assert len(without) == 2 and len(loaded) == 1  # A B A
    assert min(without + loaded) > 0
    assert result["pair_costs_pct"] == interleaved_costs(without, loaded)
    assert result["telemetry_cost_pct"] == result["pair_costs_pct"][0]
    assert result["noise_costs_pct"] == []  # two windows without have no inner one
    assert len(result["visualizer_cpu_pct"]) == 2
    assert len(result["refresh_per_s"]) == 2 and min(result["refresh_per_s"]) > 0
    assert psutil.Process().children(recursive=True) == []  # every process was stopped
