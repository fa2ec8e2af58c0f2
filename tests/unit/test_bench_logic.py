"""The pure parts of ``bplab bench`` and ``bplab validate`` (formulas, rate fits, errors,
tables, targets), and proof that the optimized hot paths give exactly what the plain ones
give. Exact assertions only: no processes, no clocks, no timing figures."""

from __future__ import annotations

import math
from typing import Any, Dict

import pytest

from lab.core import protocol
from lab.core.config import ConsumerConfig, ProducerConfig
from lab.core.consumer_core import ConsumerCore
from lab.core.metrics import LatencyHistogram, RecentLatency
from lab.core.producer_core import ProducerCore
from lab.tools.bench import perf, raw, theory, validate
from lab.tools.bench.harness import last_json


# -- queueing formulas ---------------------------------------------------------------------------
def test_mm1k_blocking_matches_the_formula_and_its_limits():
    assert theory.mm1k_blocking(0.5, 5) == pytest.approx(0.5 * 0.5**5 / (1 - 0.5**6))
    assert theory.mm1k_blocking(3.0, 5) == pytest.approx((1 - 3) * 3**5 / (1 - 3**6))
    assert theory.mm1k_blocking(1.0, 4) == pytest.approx(1 / 5)
    assert theory.mm1k_blocking(1.0 + 1e-12, 4) == pytest.approx(1 / 5)
    assert theory.mm1k_blocking(0.0, 3) == 0.0
    assert theory.mm1k_blocking(1000.0, 1) == pytest.approx(1000 / 1001)  # ρ/(1+ρ) at K=1


def test_mm1k_mean_in_system_sums_the_stationary_distribution():
    for rho in (0.5, 0.9, 1.0, 1.5, 3.0):
        weights = [rho**n for n in range(6)]
        expected = sum(n * w for n, w in enumerate(weights)) / sum(weights)
        assert theory.mm1k_mean_in_system(rho, 5) == pytest.approx(expected)


def test_blocking_is_the_last_state_of_the_stationary_distribution():
    for rho in (0.5, 0.9, 1.5, 3.0):
        weights = [rho**n for n in range(6)]
        assert theory.mm1k_blocking(rho, 5) == pytest.approx(weights[-1] / sum(weights))


def test_overload_drop_fraction():
    assert theory.overload_drop_fraction(300.0, 100.0) == pytest.approx(2 / 3)
    assert theory.overload_drop_fraction(2000.0, 1000.0) == 0.5
    assert theory.overload_drop_fraction(50.0, 100.0) == 0.0  # no overload, no drops


@pytest.mark.parametrize("bad", [(0.5, 0), (-1.0, 3)])
def test_formulas_refuse_nonsense(bad):
    with pytest.raises(ValueError):
        theory.mm1k_blocking(*bad)
    with pytest.raises(ValueError):
        theory.mm1k_mean_in_system(*bad)


# -- errors and ratios -----------------------------------------------------------------------------
def test_errors_ratios_and_costs():
    assert theory.pct_error(101.0, 100.0) == pytest.approx(1.0)
    assert theory.pct_error(99.0, 100.0) == pytest.approx(-1.0)
    assert theory.pp_difference(0.52, 0.50) == pytest.approx(2.0)
    assert theory.ratio_pct(350_000, 700_000) == 50.0
    assert theory.ratio_pct(1.0, 0.0) == 0.0
    assert theory.cost_pct(100.0, 98.0) == pytest.approx(2.0)
    assert theory.cost_pct(100.0, 101.0) == pytest.approx(-1.0)
    assert theory.littles_law_error_pct(2.0, 10.0, 0.2) == 0.0
    with pytest.raises(ValueError):
        theory.pct_error(1.0, 0.0)


# -- rates from cumulative counts ------------------------------------------------------------------
def test_fit_rate_is_exact_on_a_line_and_ignores_an_offset():
    points = [(t / 10, 5 + 100 * t / 10) for t in range(50)]
    assert theory.fit_rate(points) == pytest.approx(100.0)


def test_fit_rate_of_a_staircase_beats_the_two_point_rate():
    # 10 events/s counted at 10 Hz, sampled just after an event at one end and just
    # before one at the other: the two-point rate is off by a whole event, the fit is not.
    rate, times = 10.0, [0.001 + i * 0.1 for i in range(40)]
    points = [(t, float(math.floor(rate * t))) for t in times]
    points[-1] = (times[-1] + 0.0985, float(math.floor(rate * (times[-1] + 0.0985))))
    two_point = (points[-1][1] - points[0][1]) / (points[-1][0] - points[0][0])
    assert abs(theory.pct_error(two_point, rate)) > 2.0
    assert abs(theory.pct_error(theory.fit_rate(points), rate)) < 1.0


def test_fit_rate_needs_two_distinct_times():
    with pytest.raises(ValueError):
        theory.fit_rate([(1.0, 1.0)])
    with pytest.raises(ValueError):
        theory.fit_rate([(1.0, 1.0), (1.0, 2.0)])


def test_windows_and_ratios_of_counter_deltas():
    points = [(float(t), float(t * t)) for t in range(10)]
    assert theory.in_window(points, 2.0, 4.0) == [(2.0, 4.0), (3.0, 9.0), (4.0, 16.0)]
    assert theory.delta_ratio((10.0, 100.0), (60.0, 200.0)) == 0.5
    assert theory.delta_ratio((10.0, 100.0), (10.0, 100.0)) is None


# -- checks and tables -----------------------------------------------------------------------------
def test_checks_compare_fractions_in_points_and_the_rest_in_percent():
    fraction = theory.Check("M/M/1/K", "ρ=0.9", "blocking", 0.146, 0.126, 2.0, "pp")
    assert fraction.difference == pytest.approx(2.0) and fraction.ok
    relative = theory.Check("block", "μ=200", "throughput", 196.0, 200.0, 2.0, "%")
    assert relative.difference == pytest.approx(-2.0) and relative.ok
    assert not theory.Check("x", "", "y", 0.53, 0.5, 2.0, "pp").ok
    assert theory.Check("x", "", "y", 0.53, 0.5, 2.0, "pp").as_dict()["ok"] is False


def test_checks_table_puts_measured_and_theory_side_by_side():
    table = theory.checks_table(
        [
            theory.Check("M/M/1/K", "ρ=3", "blocking probability", 0.6730, 0.6676, 2.0, "pp"),
            theory.Check("Little's law", "ρ=3", "L vs λW", 4.3, 4.4, 5.0, "%"),
        ]
    )
    lines = table.splitlines()
    assert lines[0].split("|")[1:-1] == [
        " experiment   ",
        " parameters ",
        " quantity             ",
        " measured ",
        " theory ",
        " difference ",
        " tolerance ",
        " ok  ",
    ]
    assert lines[2].endswith("|   0.6730 | 0.6676 |   +0.54 pp | ±2 pp     | yes |")
    assert lines[3].endswith("|    4.300 |  4.400 |    -2.27 % | ±5 %      | yes |")


def test_markdown_table_pads_and_right_aligns_numbers():
    table = theory.markdown_table(["what", "n"], [["a", "1,234"], ["bb", "5"]])
    assert table.splitlines() == [
        "| what |     n |",
        "|------|------:|",
        "| a    | 1,234 |",
        "| bb   |     5 |",
    ]
    with pytest.raises(ValueError):
        theory.markdown_table(["a", "b"], [["only one"]])


def test_cell_formatting():
    assert theory.fmt(1234567) == "1,234,567"
    assert theory.fmt(1234.5678, 2) == "1,234.57"
    assert theory.fmt(None) == "-" and theory.fmt(math.inf) == "-"
    assert theory.fmt(True) == "yes" and theory.fmt(False) == "NO"


# -- the bench's targets and report ----------------------------------------------------------------
def _result(**overrides: Any) -> Dict[str, Any]:
    result: Dict[str, Any] = {
        "raw_push_pull_mps": 700_000.0,
        "raw_credit_mps": 600_000.0,
        "credit_window": 1000,
        "lab_drop_mps": 350_000.0,
        "lab_block_mps": 250_000.0,
        "lab_drop_cpu_us_per_msg": {"consumer": 0.8, "producer": 1.2},
        "block_windows": [
            {
                "window": 1000,
                "raw_credit_mps": 600_000.0,
                "lab_block_mps": 250_000.0,
                "block_vs_credit_pct": 41.67,
                "cpu_us_per_msg": {"consumer": 1.0, "producer": 1.3},
            }
        ],
        "drop_vs_push_pull_pct": 50.0,
        "block_vs_credit_pct": 41.67,
        "pacing": [
            {"target_mps": 10, "achieved_mps": 10.01, "pacing_error_pct": 0.1, "skipped": 0}
        ],
        "processing": [{"target_mps": 10, "achieved_mps": 9.99, "error_pct": -0.1}],
        "pacing_error_max_pct": 0.1,
        "telemetry": {
            "visualizers": 3,
            "window_s": 4.0,
            "mps_0_visualizers": 350_000.0,
            "mps_with_visualizers": 345_000.0,
            "mps_windows_0": [350_000.0, 352_000.0, 348_000.0],
            "mps_windows_with": [345_000.0, 343_000.0],
            "pair_costs_pct": [1.43, 1.44],
            "noise_costs_pct": [-1.15],
            "telemetry_cost_pct": 1.43,
            "consumer_cpu_us_per_msg_0": 0.8,
            "consumer_cpu_us_per_msg_with": 0.81,
            "visualizer_cpu_pct": [4.0, 4.1, 3.9],
            "refresh_per_s": [4.0, 4.0, 4.0],
        },
        "telemetry_cost_pct": 1.43,
        "visualizer_cpu_max_pct": 4.1,
        "sustained": {
            "seconds": 60.0,
            "producer_mps": 100_000.0,
            "median_second_mps": 100_000.0,
            "slowest_second_mps": 98_000.0,
            "processed_mps": 10_000.0,
            "cpu_pct": {"producer": 40.0, "consumer": 30.0, "visualizer": 4.0},
            "refresh_per_s": 4.0,
        },
        "sustained_ok": True,
        "memory": [
            {
                "mode": "drop",
                "rss_start_mb": 38.0,
                "rss_end_mb": 38.5,
                "seconds": 60.0,
                "received": 600_000,
            }
        ],
    }
    result.update(overrides)
    result["targets"] = perf.check_targets(result)
    return result


def test_targets_are_judged_from_the_measured_values():
    met = {t["name"]: t["met"] for t in _result()["targets"]}
    assert met == {
        "drop_vs_push_pull_pct": True,
        "block_vs_credit_pct": True,
        "pacing_error_max_pct": True,
        "sustained_ok": True,
        "telemetry_cost_pct": True,
        "visualizer_cpu_max_pct": True,
    }
    missed = {t["name"]: t["met"] for t in _result(block_vs_credit_pct=39.9)["targets"]}
    assert missed["block_vs_credit_pct"] is False
    unmeasured = _result()
    del unmeasured["telemetry_cost_pct"]
    rows = {t["name"]: t["met"] for t in perf.check_targets(unmeasured)}
    assert rows["telemetry_cost_pct"] is None


def test_a_cost_whose_interval_straddles_the_target_is_reported_as_not_proven():
    pairs = [-1.2, 0.3, 0.9, 1.4, 2.8, 3.7, 0.1, -0.5, 1.1, 0.6, 2.2, 4.0]
    interval = theory.median_interval(pairs)
    assert interval == (0.1, 2.8)  # the 3rd smallest to the 3rd largest of 12
    result = _result(telemetry_cost_pct=0.75, telemetry_cost_pct_interval=interval)
    (row,) = [t for t in result["targets"] if t["name"] == "telemetry_cost_pct"]
    assert (row["met"], row["decided"], row["interval"]) == (True, False, (0.1, 2.8))
    assert "| yes, within noise (95%: 0.10 to 2.80) |" in perf.report(result)
    sure = _result(telemetry_cost_pct=0.75, telemetry_cost_pct_interval=(0.2, 1.3))
    (row,) = [t for t in sure["targets"] if t["name"] == "telemetry_cost_pct"]
    assert (row["met"], row["decided"]) == (True, True)
    over = _result(telemetry_cost_pct=3.1, telemetry_cost_pct_interval=(2.4, 3.9))
    assert [t["met"] for t in over["targets"] if t["name"] == "telemetry_cost_pct"] == [False]
    few = _result(telemetry_cost_pct=3.1, telemetry_cost_pct_interval=None)
    assert "| NO, not proven: too few windows |" in perf.report(few)


def test_report_has_every_table_and_the_targets():
    text = perf.report(_result())
    assert "| raw PUSH/PULL (baseline)" in text and "700,000" in text
    assert "lab block mode, buffer 1000" in text and "41.7" in text
    assert "+0.100" in text and "-0.100" in text  # pacing and processing errors
    assert "telemetry cost % (median)" in text and "1.43" in text
    assert "1.43, 1.44" in text and "-1.15" in text  # every pair, and the noise floor
    assert "| drop  |" in text or "| drop |" in text
    assert text.count("| yes |") == 6


def test_data_paths_are_compared_window_by_window_and_the_worst_counts():
    cpu = {"consumer": 1.0, "producer": 2.0}
    raw = {"raw_push_pull_mps": 800.0, "raw_credit_by_window": {1000: 600.0, 50: 200.0}}
    lab = {
        "lab_drop": {"mps": 400.0, "cpu_us_per_msg": cpu},
        "lab_block_by_window": {
            1000: {"mps": 300.0, "cpu_us_per_msg": cpu},
            50: {"mps": 70.0, "cpu_us_per_msg": cpu},
        },
    }
    merged = perf.compare_data_paths(raw, lab)
    assert merged["drop_vs_push_pull_pct"] == 50.0
    assert (merged["raw_credit_mps"], merged["lab_block_mps"], merged["credit_window"]) == (
        600.0,
        300.0,
        1000,
    )
    assert [row["block_vs_credit_pct"] for row in merged["block_windows"]] == [50.0, 35.0]
    assert merged["block_vs_credit_pct"] == 35.0


def test_quick_plan_is_shorter_in_every_part():
    full, quick = perf.BenchPlan(), perf.BenchPlan.quick_plan()
    for name in ("throughput_s", "pacing_s", "telemetry_s", "sustained_s", "memory_s"):
        assert getattr(quick, name) < getattr(full, name), name
    assert set(quick.memory_modes) <= set(full.memory_modes)
    assert "unbounded" not in full.memory_modes and "block" in full.memory_modes


# -- validation experiments are built as the theory needs them ------------------------------------
def test_mm1k_runs_poisson_arrivals_into_exponential_service_with_buffer_k():
    plan = validate.ValidatePlan()
    mm1k_group, rest, windows = validate.experiments(plan)
    mm1k = [e for e in mm1k_group if isinstance(e, validate.MM1K)]
    assert len(mm1k) == len(mm1k_group) and not any(isinstance(e, validate.MM1K) for e in rest)
    assert [e.rho for e in mm1k] == [0.5, 0.9, 1.5, 3.0]
    replicated = validate.experiments(validate.ValidatePlan(mm1k_replicas=2))[0]
    assert [e.rho for e in replicated] == [0.5, 0.5, 0.9, 0.9, 1.5, 1.5, 3.0, 3.0]
    for experiment in mm1k:
        consumer, producer = experiment.consumer_args, experiment.producer_args
        assert consumer[consumer.index("--mode") + 1] == "drop"
        assert consumer[consumer.index("--service-dist") + 1] == "exponential"
        assert consumer[consumer.index("--buffer") + 1] == str(plan.mm1k_k)
        assert producer[producer.index("--profile") + 1] == "poisson"
        lam = float(producer[producer.index("--mps") + 1])
        mu = float(consumer[consumer.index("--process-rate") + 1])
        assert lam / mu == pytest.approx(experiment.rho)
    seeds = {e.consumer_args[e.consumer_args.index("--seed") + 1] for e in replicated}
    assert len(seeds) == 8


def test_replicas_are_pooled_arrival_by_arrival():
    plan = validate.ValidatePlan()
    runs = [validate.MM1K(plan, 0.9, 0), validate.MM1K(plan, 0.9, 1)]
    results = [
        {"dropped": 10.0, "received": 100.0, "mean_depth": 2.0, "lambda_w": 2.1},
        {"dropped": 30.0, "received": 300.0, "mean_depth": 3.0, "lambda_w": 2.9},
    ]
    blocking, little = validate.pool_mm1k(plan, runs, results)
    assert blocking.measured == pytest.approx(40 / 400)
    assert blocking.theory == pytest.approx(theory.mm1k_blocking(0.9, plan.mm1k_k))
    assert blocking.parameters.endswith(", 2 runs")
    assert (little.measured, little.theory, little.unit) == (2.5, 2.5, "%")


def test_only_selects_experiments_and_warmups_cover_the_fill_time():
    plan = validate.ValidatePlan(only=["block"])
    ((block,),) = validate.experiments(plan)
    assert isinstance(block, validate.BlockMode)
    assert block.warmup == pytest.approx(plan.warmup_s + 100 / 200 + 100 / 200)
    overload = validate.OverloadDrop(validate.ValidatePlan(), 300.0, 100.0)
    assert overload.warmup == pytest.approx(2.0 + 50 / 200)


# -- small helpers of the harness and the raw peers ------------------------------------------------
def test_last_json_finds_the_summary_after_terminal_noise():
    text = '\x1b[2J\x1b[H dashboard\r\n{"a": 1}\r\n{"refreshes": 40, "cpu_pct": 3.5}\r\n'
    assert last_json(text) == {"refreshes": 40, "cpu_pct": 3.5}
    assert last_json("no json here") is None


def test_raw_meter_counts_only_the_window_after_the_warmup():
    meter = raw.Meter(warmup=1.0, seconds=2.0)
    meter.count = 100
    assert not meter.tick(10.0)  # first message seen: the warm-up starts
    meter.count = 500
    assert not meter.tick(11.0)  # warm-up over: the window opens at 500
    meter.count = 2500
    assert meter.tick(13.0)
    assert meter.result == {"mps": 1000.0, "count": 2000, "seconds": 2.0}


# -- the optimized hot paths agree exactly with the plain ones -------------------------------------
def test_record_many_is_record_for_each_value():
    values = [0.0, 1e-7, 0.000255, 0.000256, 0.0123, 0.0123, 1.5, -0.1, 3.25]
    one, many = LatencyHistogram(), LatencyHistogram()
    for value in values:
        one.record(value)
    many.record_many(values)
    assert many._buckets == one._buckets
    assert (many.count, many.max) == (one.count, one.max)
    assert many.sum == pytest.approx(one.sum)
    for percent in (1, 50, 90, 99, 100):
        assert many.percentile(percent) == one.percentile(percent)
    recent_one, recent_many = RecentLatency(seconds=2), RecentLatency(seconds=2)
    for value in values:
        recent_one.record(7.5, value)
    recent_many.record_many(7.5, values)
    assert recent_many.summary(7.9) == recent_one.summary(7.9)


@pytest.mark.parametrize("payload", [b"", b"xyz"])
def test_data_frames_decode_the_same_with_and_without_payloads(payload):
    records = [protocol.Record(s, 1.0 + s, 2.0, s % 3, s % 2, payload) for s in range(50)]
    as_tuples = [tuple(r) for r in records]
    frame = protocol.encode_data(as_tuples, 7)
    assert frame == protocol.encode_data(records, 7)
    assert protocol.decode_data_frame(frame) == (7, records)


def test_a_payload_length_that_lies_is_still_malformed():
    header = protocol._header(protocol.DATA) + protocol.DATA_HEAD.pack(2, 0, 0)
    frame = (
        header
        + protocol.RECORD.pack(1, 0.0, 0.0, 0, 0, 30)
        + protocol.RECORD.pack(2, 0.0, 0.0, 0, 0, 0)
    )
    with pytest.raises(protocol.ProtocolError):
        protocol.decode_data_frame(frame)


def test_queue_waits_in_one_batch_or_one_by_one_are_the_same_histograms():
    """A batch of completions that crosses a whole second is split by second, as
    recording each wait at its own start would."""

    def run(step: float) -> ConsumerCore:
        core = ConsumerCore(ConsumerConfig(mode="drop", capacity=500, process_rate=400.0), 0.0)
        producer = ProducerCore(ProducerConfig(messages_per_s=math.inf, name="p"), 0.0)
        producer.advance(0.0)
        for frame in producer.take_control_frames():
            core.on_frame(b"p", frame, 0.0)
        for _, frame in core.take_outgoing():
            producer.on_frame(frame, 0.0)
        out = producer.pull_frame(0.9)
        core.on_frame(b"p", out.data, 0.9)  # 400 messages at t=0.9: 1 s of work
        t = 0.9
        while t < 2.5:
            t += step
            core.advance(t)
        return core

    batched, stepped = run(0.7), run(0.0005)
    batched_waits, stepped_waits = (
        batched.completion.queue_wait_recent,
        stepped.completion.queue_wait_recent,
    )
    assert batched_waits.total()._buckets == stepped_waits.total()._buckets
    assert batched_waits.summary(2.5) == stepped_waits.summary(2.5)
    assert batched.summary(2.6)["classes"] == stepped.summary(2.6)["classes"]


def test_consumer_summary_has_little_w():
    core = ConsumerCore(ConsumerConfig(mode="drop", capacity=10, process_rate=10.0), 0.0)
    producer = ProducerCore(ProducerConfig(messages_per_s=math.inf, name="p"), 0.0)
    producer.advance(0.0)
    for frame in producer.take_control_frames():
        core.on_frame(b"p", frame, 0.0)
    for _, frame in core.take_outgoing():
        producer.on_frame(frame, 0.0)
    out = producer.pull_frame(0.0)
    core.on_frame(b"p", out.data, 0.0)  # 10 accepted at t=0, the rest dropped
    core.advance(1.0)  # all 10 done at 0.1, 0.2, ..., 1.0
    summary = core.summary(1.0)
    assert summary["service_mean_ms"] == pytest.approx(100.0)
    assert summary["queue_wait_mean_ms"] == pytest.approx(450.0)
    assert summary["time_in_system_mean_ms"] == pytest.approx(550.0)
    # Little: time-average of depth over [0, 1] = accepted/1 s x W
    assert summary["mean_depth"] == pytest.approx(10 * 0.55)


def test_concurrency_limit_runs_in_the_full_plan_only_and_checks_limit_against_lambda_w():
    plan = validate.ValidatePlan(only=["limit"])
    ((aimd, gradient),) = validate.experiments(plan)
    assert (aimd.algorithm, gradient.algorithm) == ("aimd", "gradient")
    producer = aimd.producer_args
    assert producer[producer.index("--limit-algorithm") + 1] == "aimd"
    assert aimd.warmup == pytest.approx(plan.warmup_s + plan.limit_settle_s)
    quick = validate.ValidatePlan.quick_plan()
    assert not any(
        isinstance(e, validate.ConcurrencyLimit)
        for group in validate.experiments(quick)
        for e in group
    )

    def report(t, answers, rtt_sum, limit_area):
        state = {"answers": answers, "rtt_sum_s": rtt_sum, "limit_area": limit_area}
        state.update({"outstanding_area": limit_area, "elapsed_s": t})
        return {"t": t, "concurrency": state}

    class Session:  # 10 s, 1,000 answers of 0.2 s each: λW = 20; a mean limit of 18
        def producer_snapshots(self):
            snaps = [report(5.0, 0, 0.0, 0.0), report(10.0, 500, 100.0, 90.0)]
            return [{"t": 4.0, "concurrency": None}] + snaps + [report(15.0, 1000, 200.0, 180.0)]

    aimd.session = Session()
    (check,) = aimd.measure(4.5, 15.0)
    assert (check.measured, check.theory, check.unit) == (18.0, 20.0, "%")
    assert check.experiment == "concurrency limit" and not check.ok  # 10 % off, past ±5 %
