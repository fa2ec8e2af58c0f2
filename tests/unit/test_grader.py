"""The pure half of ``bplab check``: checks, measures, the challenge table and its seeded
plans, the report and the command's usage errors. The probes run in a child process (the
grader never imports a solver's file); the few tests that ask one start it, and nothing
else is started here."""

from __future__ import annotations

import doctest
import importlib
import json
import re
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from lab.core.config import ConsumerConfig
from lab.core.modules import get_module
from lab.processes import plugins
from lab.tools.grading import measures as m
from lab.tools.grading import runner
from lab.tools.grading.challenges import CHALLENGES, find_challenge
from lab.tools.grading.command import CheckUsageError, default_file, run_check
from lab.tools.grading.core import (
    Check,
    CheckResult,
    Evidence,
    MissingData,
    all_passed,
    evaluate,
    final_line,
    format_value,
    grade,
    results_json,
)
from lab.tools.grading.report import challenges_table, results_table
from lab.tools.grading.runner import RunError, run_probe
from lab.tools.grading.table import MAX_CODE_SHARE, code_share, slowest_call
from lab.ui.cli import app, main

REPO = Path(__file__).resolve().parent.parent.parent
EXERCISES = REPO / "exercises"


def _check(op="<=", target=250.0, measure=None, **kw) -> Check:
    return Check(
        "queue-wait p99",
        measure or (lambda ev: ev.consumer["queue_wait_p99_ms"]),
        op,
        target,
        "size it from the speed",
        unit="ms",
        **kw,
    )


# -- checks and their evaluation -------------------------------------------------------------
@pytest.mark.parametrize(
    "op, value, passed",
    [
        ("<=", 250.0, True),
        ("<=", 250.1, False),
        (">=", 250.0, True),
        (">=", 249.9, False),
        ("==", 250.0, True),
        ("==", 0.0, False),
        ("<", 250.0, False),
        (">", 250.1, True),
    ],
)
def test_each_comparison(op, value, passed):
    result = evaluate(_check(op), Evidence(consumer={"queue_wait_p99_ms": value}))
    assert result.passed is passed
    assert result.measured == value
    assert result.hint == ("" if passed else "size it from the speed")


def test_a_passing_row_shows_the_number_and_the_target_without_a_hint():
    result = evaluate(_check(), Evidence(consumer={"queue_wait_p99_ms": 141.4}))
    assert result == CheckResult("queue-wait p99", 141.4, "141 ms", "≤ 250 ms", True, "", "")


def test_a_failing_row_carries_the_hint():
    result = evaluate(_check(), Evidence(consumer={"queue_wait_p99_ms": 743.0}))
    assert (result.shown, result.target, result.passed) == ("743 ms", "≤ 250 ms", False)
    assert result.hint == "size it from the speed"


def test_no_number_fails_with_the_missing_text_and_the_reason():
    def never(evidence):
        raise MissingData("the worker never slowed down")

    result = evaluate(_check(measure=never, missing="never"), Evidence())
    assert (result.measured, result.shown, result.passed) == (None, "never", False)
    assert result.note == "the worker never slowed down"
    assert evaluate(_check(measure=lambda ev: None, missing="never"), Evidence()).shown == "never"


def test_a_measure_that_finds_no_data_fails_instead_of_crashing():
    result = evaluate(_check(), Evidence(consumer={}))
    assert result.passed is False and result.shown == "n/a"
    assert result.note.startswith("could not measure: KeyError")
    nan = evaluate(_check(measure=lambda ev: float("nan")), Evidence())
    assert (nan.passed, nan.note) == (False, "not a number")


def test_an_unknown_comparison_is_refused():
    with pytest.raises(ValueError, match="unknown comparison"):
        _check(op="~")


def test_format_value():
    assert format_value(96.34, "%", 1) == "96.3 %"
    assert format_value(1.014, "", 2) == "1.01"
    assert format_value(110.0, "msg/s") == "110 msg/s"
    assert format_value(0.0) == "0"


def test_final_line_and_json():
    ok = CheckResult("a", 1.0, "1", "≤ 2", True, "")
    bad = CheckResult("b", 3.0, "3", "≤ 2", False, "hint b")
    assert final_line("12_x", [ok, ok]) == "PASS 12_x: all 2 checks passed"
    assert final_line("12_x", [ok, bad, bad]) == "FAIL 12_x: 2 of 3 checks failed (b, b)"
    assert final_line("12_x", []) == "FAIL 12_x: nothing was measured"
    assert all_passed([ok]) and not all_passed([ok, bad]) and not all_passed([])
    report = results_json("12_x", "f.py", [ok, bad])
    assert report["passed"] is False and report["error"] is None
    assert report["checks"][1] == {
        "name": "b",
        "measured": 3.0,
        "shown": "3",
        "target": "≤ 2",
        "passed": False,
        "hint": "hint b",
        "note": "",
    }
    crashed = results_json("12_x", "f.py", [], error="the consumer stopped early")
    assert crashed["passed"] is False
    assert crashed["summary"] == "FAIL 12_x: the consumer stopped early"
    json.dumps(report)  # JSON-able


def test_grade_keeps_the_order_of_the_checks():
    checks = [_check(), _check(op=">=")]
    results = grade(checks, Evidence(consumer={"queue_wait_p99_ms": 100.0}))
    assert [r.passed for r in results] == [True, False]


# -- measures ---------------------------------------------------------------------------------
def _snap(t, speed=100.0, received=0, processed=0, **extra):
    record = {"uptime_s": t, "t": 1000.0 + t, "service_rate": speed, "depth": 0}
    record["totals"] = {"received": received, "processed": processed}
    record.update(extra)
    return record


def test_throughput_counts_from_the_first_arrival_to_the_last_completion():
    records = [_snap(0.0), _snap(0.1)]  # nothing yet: outside the window
    records += [_snap(0.2 + 0.1 * i, 100.0, 10 + 10 * i, 9 * i) for i in range(10)]
    records += [_snap(1.2, 100.0, 110, 90), _snap(1.3, 100.0, 110, 90)]  # idle after the end
    assert m.active_window(records) == (2, 12)  # 1.2 s: the last completion
    assert m.throughput_ratio(records) == pytest.approx(0.9)


def test_throughput_integrates_the_slowed_speed():
    records = [_snap(0.1 * i, 100.0 if i < 5 else 25.0, 10 * (i + 1), 0) for i in range(10)]
    records[-1]["totals"]["processed"] = 56  # 5 x 10 + 4 x 2.5 = 60 possible
    assert m.throughput_ratio(records) == pytest.approx(56 / 60)


def test_throughput_leaves_out_the_consumers_own_stalls():
    records = [_snap(0.1 * i, 100.0, 10 * (i + 1), 10 * i) for i in range(5)]
    records.append(_snap(1.4, 100.0, 60, 45))  # a 1-second gap: the process was stalled
    records.append(_snap(1.5, 100.0, 70, 55))
    assert m.throughput_ratio(records) == pytest.approx((40 + 10) / (40 + 10))


def test_throughput_leaves_out_the_producers_stalls():
    records = [_snap(0.1 * i, 100.0, 10 * (i + 1), 10 * i) for i in range(10)]
    for i in (4, 5, 6):  # the producer was stalled from t=1000.35 to 1000.65: starved
        records[i]["totals"]["processed"] = records[3]["totals"]["processed"]
    for later in records[7:]:
        later["totals"]["processed"] -= 30
    producer = [{"t": 1000.0 + 0.05 + 0.1 * i} for i in range(4)]  # ... 1000.35
    producer += [{"t": 1000.65 + 0.1 * i} for i in range(4)]
    assert m.stalls(producer) == [(pytest.approx(1000.35), pytest.approx(1000.65))]
    assert m.throughput_ratio(records) == pytest.approx(60 / 90)
    assert m.throughput_ratio(records, producer) == pytest.approx(50 / 50)


def test_throughput_needs_traffic():
    with pytest.raises(MissingData, match="received nothing"):
        m.throughput_ratio([_snap(0.0), _snap(0.1)])
    with pytest.raises(MissingData, match="too short"):
        m.throughput_ratio([_snap(0.0, received=5, processed=5)])


def test_late_accepts_count_from_the_first_slowed_snapshot():
    records = [_snap(3.9, slowdown=1.0), _snap(4.05, slowdown=4.0), _snap(4.15, slowdown=4.0)]
    assert m.slowdown_seen_at(records) == 4.05
    summary = {
        "wait_target_ms": 250.0,
        "waited_past_target_accepted_at": [[3.9, 5], [4.0, 3], [4.1, 1], [4.2, 2], [6.5, 1]],
    }
    assert m.late_accepted_after(summary, 4.05 + 0.1) == 3  # 4.2 and 6.5
    assert m.late_accepted_after(summary, 4.2) == 3  # a bucket starting at the edge counts
    with pytest.raises(MissingData, match="never slowed"):
        m.slowdown_seen_at([_snap(1.0, slowdown=1.0)])
    with pytest.raises(MissingData, match="--wait-target-ms"):
        m.late_accepted_after({"wait_target_ms": None}, 0.0)


def test_class_rows():
    summary = {"classes": [{"class": 0, "dropped": 2, "shed": 1, "sampled_out": 0}]}
    assert m.class_lost(summary, 0) == 3
    with pytest.raises(MissingData, match="class 1"):
        m.class_row(summary, 1)


def test_peak_and_rates_between_epoch_times():
    records = [
        {"t": 10.0, "rates": {"received": 50}, "totals": {"processed": 0}},
        {"t": 10.5, "rates": {"received": 120}, "totals": {"processed": 40}},
        {"t": 11.0, "rates": {"received": 90}, "totals": {"processed": 90}},
    ]
    assert m.peak(records, "rates", "received") == 120
    assert m.rate_between(records, 10.2, 11.0, "totals", "processed") == 100.0
    assert m.count_between(records, 10.2, 10.7, "totals", "processed") == 40
    assert m.count_between(records, 9.0, 10.2, "totals", "processed") == 0
    assert m.producer_start_epoch([{"t": 105.5, "uptime_s": 0.5}]) == 105.0
    with pytest.raises(MissingData, match="no telemetry"):
        m.peak(records, "rates", "nothing")
    with pytest.raises(MissingData, match="too little"):
        m.rate_between(records, 20.0, 30.0, "totals", "processed")


def test_recovery_is_the_first_healthy_moment_while_the_producer_runs():
    def consumer(t, shed, depth):
        return {"t": t, "depth": depth, "rates": {"shed": shed}}

    consumers = [
        consumer(4.0, 100, 100),  # in the spike
        consumer(5.5, 30, 100),  # shedding
        consumer(6.5, 0, 40),  # backlog
        consumer(7.6, 0, 5),  # ...but a request timed out at 6.9, in the second before
        consumer(8.0, 0, 3),  # healthy
    ]
    producers = [{"t": t, "timed_out": n} for t, n in ((5.0, 10), (6.5, 19), (6.9, 20), (8, 20))]
    assert m.recovered_after(consumers, producers, 5.0, 12.0, 10) == pytest.approx(3.0)
    assert m.recovered_after(consumers, producers, 5.0, 7.9, 10) is None  # producer gone
    assert m.recovered_after(consumers[:4], producers, 5.0, 12.0, 10) is None


def test_share_of_due_messages_sent():
    summary = {"produced": 400, "retried": 10, "pending": 5, "skipped": 5}
    assert m.unique_share_sent(summary) == pytest.approx(390 / 400)
    with pytest.raises(MissingData):
        m.unique_share_sent({})
    assert m.summary_value({"recovery_s": None}, "recovery_s") is None
    with pytest.raises(MissingData, match="no 'x'"):
        m.summary_value({"a": 1}, "x", "producer")


@pytest.mark.parametrize("name", ["core", "measures", "challenges"])
def test_the_graders_quick_facts(name):
    module = importlib.import_module(f"lab.tools.grading.{name}")
    result = doctest.testmod(module, verbose=False)
    assert result.attempted > 0 and result.failed == 0


# -- the table of challenges ------------------------------------------------------------------
def test_challenges_are_found_by_name_number_or_folder():
    assert find_challenge("12").name == "12_adaptive_backpressure"
    assert find_challenge("13_priority_shedding").number == 13
    assert find_challenge("exercises/14_token_bucket/").name == "14_token_bucket"
    assert find_challenge("99") is None and find_challenge("nonsense") is None


@pytest.mark.parametrize("name", sorted(CHALLENGES))
def test_every_challenge_has_its_folder_starter_readme_and_solution(name):
    challenge = CHALLENGES[name]
    kind = challenge.plugin_kind
    folder = EXERCISES / name
    assert default_file(challenge) == folder / "starter.py"
    starter = plugins.load_class(str(folder / "starter.py"), kind)
    solution = plugins.load_class(str(EXERCISES / "solutions" / f"{name}.py"), kind)
    assert starter.__name__ == solution.__name__
    text = (EXERCISES / "solutions" / f"{name}.py").read_text(encoding="utf-8")
    assert "DON'T PEEK" in text.splitlines()[0]
    assert "TODO" in (folder / "starter.py").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", sorted(CHALLENGES))
def test_each_readme_names_every_check_of_every_draw(name):
    challenge = CHALLENGES[name]
    readme = (EXERCISES / name / "README.md").read_text(encoding="utf-8")
    assert f"bplab check {name}" in readme and "--seed" in readme
    for seed in range(20):
        for check in challenge.plan(seed).checks:
            assert f"| {check.name} |" in readme, check.name
    index = (EXERCISES / "README.md").read_text(encoding="utf-8")
    assert f"[{name}]({name}/README.md)" in index


@pytest.mark.parametrize("name", sorted(CHALLENGES))
def test_a_seed_always_draws_the_same_plan_and_seeds_draw_several(name):
    challenge = CHALLENGES[name]
    plans = [challenge.plan(seed) for seed in range(40)]
    assert [p.facts for p in plans] == [challenge.plan(seed).facts for seed in range(40)]
    assert len({p.scenario.commands()[0] + p.scenario.commands()[1] for p in plans}) >= 2
    assert all(p.checks[-1].name == "slowest call into your code" for p in plans)


def test_the_scenario_commands_name_the_plugin_flag_once():
    commands = CHALLENGES["14_token_bucket"].plan(3).scenario.commands("mine.py")
    assert commands[0] == "bplab consumer --module 14 --mode drop --buffer 50 --process-rate 100"
    assert "--consumer-rate 100 " in commands[1]
    assert commands[1].count("--limiter-file mine.py") == 1
    assert commands[1].endswith("--limiter-file mine.py")


def test_fourteen_draws_the_consumer_capacity_and_tells_it_to_the_limiter():
    plans = [CHALLENGES["14_token_bucket"].plan(seed) for seed in range(40)]
    assert {p.facts["consumer_rate"] for p in plans} == {60.0, 100.0, 150.0}
    for plan in plans:
        capacity = f"{plan.facts['consumer_rate']:g}"
        consumer, producer = plan.scenario.commands("mine.py")
        assert consumer.endswith(f"--process-rate {capacity}")
        assert f"--consumer-rate {capacity} " in producer
        (peak,) = [c for c in plan.checks if c.name == "peak 1-second rate let through"]
        assert peak.target == plan.facts["consumer_rate"]


def test_the_producer_builds_a_limiter_file_with_the_consumer_rate(tmp_path):
    from lab.core.config import ProducerConfig
    from lab.core.modules import MODULES
    from lab.processes.producer import ProducerRun

    path = tmp_path / "limiter.py"
    path.write_text(
        "class Told:\n"
        "    def __init__(self, now, consumer_rate=1.0):\n"
        "        self.rate = consumer_rate\n"
        "    def take_up_to(self, now, count):\n"
        "        return count\n"
        "    def time_until(self, now):\n"
        "        return 0.0\n"
    )
    told = {}
    for given in (60.0, None):
        config = ProducerConfig.for_module(MODULES[14], consumer_rate=given)
        ProducerRun.for_module(MODULES[14], limiter_file=str(path)).load_plugins(config)
        told[given] = config.limiter_plugin.rate
    assert told == {60.0: 60.0, None: 1.0}  # not given: the class's own default
    with pytest.raises(ValueError, match=r"^--consumer-rate must be a finite number > 0"):
        ProducerConfig.for_module(MODULES[14], consumer_rate=0.0)


def test_twelve_draws_two_speeds_two_targets_and_provokes_memory_pressure():
    plans = [CHALLENGES["12_adaptive_backpressure"].plan(seed) for seed in range(40)]
    assert {(p.facts["speed_per_s"], p.facts["target_ms"]) for p in plans} == {
        (100.0, 250.0),
        (100.0, 500.0),
        (160.0, 250.0),
        (160.0, 500.0),
    }
    for plan in plans:
        at_s, target_mb, _ = plan.scenario.memory_pressure
        assert 0.75 * plan.facts["max_memory_mb"] < target_mb < plan.facts["max_memory_mb"]
        assert plan.facts["probe_clock_s"] >= 50.0  # a probe's clock never starts at 0


# -- the rows about the solver's code: the plugin guard's report ------------------------------
def _report(**calls):
    rows = {name: {"calls": n, "total_s": t, "slowest_s": s} for name, (n, t, s) in calls.items()}
    return Evidence(plugin={"wall_s": 10.0, "calls": rows})


def test_the_share_of_time_in_the_code_leaves_out_loading_and_building():
    evidence = _report(
        **{
            "decide()": (1000, 0.2, 0.001),
            "observe()": (100, 0.3, 0.01),
            "loading the file": (1, 4.0, 4.0),
            "Policy(...)": (1, 1.0, 1.0),
        }
    )
    assert code_share(evidence) == (5.0, "1,100 calls; most time in observe()")
    assert slowest_call(evidence) == (10.0, "in observe()")
    assert MAX_CODE_SHARE == 5.0


def test_no_timing_report_fails_the_code_rows_with_the_reason():
    check = CHALLENGES["14_token_bucket"].plan(0).checks[-1]
    result = evaluate(check, Evidence())
    assert not result.passed and result.shown == "n/a"
    assert result.note == "the process running your code wrote no timing report"


def test_a_limiter_that_sent_nothing_has_no_latency_row_to_pass():
    latency = next(
        c for c in CHALLENGES["14_token_bucket"].plan(0).checks if c.name.startswith("producer")
    )
    result = evaluate(latency, Evidence(producer={"produced": 0, "latency_p99_ms": 0.0}))
    assert not result.passed and (result.shown, result.note) == ("n/a", "nothing was sent")


# -- probes: in a child, the starter's answers fail, the solution's pass ---------------------
def _probe_results(name: str, path: Path, seed: int = 1):
    challenge = CHALLENGES[name]
    plan = challenge.plan(seed)
    evidence = Evidence(probe=run_probe(challenge, str(path), seed))
    return {c.name: evaluate(c, evidence) for c in plan.checks if "(probe)" in c.name}


@pytest.mark.parametrize("name", ["12_adaptive_backpressure", "15_retry_policy"])
def test_probes_fail_the_starter_and_pass_the_solution(name):
    starter = _probe_results(name, EXERCISES / name / "starter.py")
    solution = _probe_results(name, EXERCISES / "solutions" / f"{name}.py")
    assert starter and not all(r.passed for r in starter.values())
    assert all(r.passed for r in solution.values()), solution


def test_the_adaptive_probe_asks_every_speed_and_target():
    name = "12_adaptive_backpressure"
    answers = run_probe(CHALLENGES[name], str(EXERCISES / "solutions" / f"{name}.py"), 1)
    # 30 % of speed x target, at least 2: 100 x 0.25 -> 7 (28 %), at 1/4 speed 2 (28.6 %);
    # under pressure a quarter: 7 // 4 -> 2 (28.6 %)
    assert answers == pytest.approx(
        {
            "fast_share": 28.0,
            "slow_share": 200 / 7,
            "target_growth": 200.0,
            "regrowth": 100.0,
            "pressed_share": 200 / 7,
        }
    )
    starter = run_probe(CHALLENGES[name], str(EXERCISES / name / "starter.py"), 1)
    assert starter["slow_share"] == 100.0 and starter["target_growth"] == 100.0


def test_code_that_raises_in_the_probe_is_one_line_with_file_and_line(tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text(
        "class Retry:\n    def delay(self, attempt, retry_after_s, now):\n"
        "        raise RuntimeError('oops')\n",
        encoding="utf-8",
    )
    with pytest.raises(RunError) as error:
        run_probe(CHALLENGES["15_retry_policy"], str(broken), 1)
    assert str(error.value) == "your code raised RuntimeError: oops (broken.py line 3, in delay())"


# -- the report -------------------------------------------------------------------------------
def _render(renderable) -> str:
    console = Console(record=True, width=200, color_system=None)
    console.print(renderable)
    return console.export_text()


def test_the_table_has_a_row_per_check_and_hints_only_for_failures():
    challenge = CHALLENGES["13_priority_shedding"]
    results = [
        CheckResult("class 0 dropped + shed", 0.0, "0", "= 0", True, ""),
        CheckResult("class 0 queue-wait p99", 490.0, "490 ms", "≤ 250 ms", False, "use priority"),
        CheckResult("worker busy during the spike", None, "n/a", "≥ 90.0 %", False, "busy", "gap"),
    ]
    text = _render(results_table(challenge, "starter.py", results))
    lines = [line for line in text.splitlines() if "class 0" in line or "worker busy" in line]
    assert re.search(r"class 0 dropped \+ shed .* 0 .* = 0 .* PASS", lines[0])
    assert "use priority" not in lines[0]
    assert re.search(r"490 ms .* ≤ 250 ms .* FAIL .* use priority", lines[1])
    assert re.search(r"n/a .* FAIL .* busy -- gap", lines[2])
    assert "13_priority_shedding: Priority shedding" in text


def test_the_list_names_every_challenge_and_where_the_class_goes():
    text = _render(challenges_table(CHALLENGES.values()))
    for challenge in CHALLENGES.values():
        assert challenge.name in text
    assert "producer --retry-file" in text and "consumer --policy-file" in text


# -- usage errors: one line, exit status 2 ----------------------------------------------------
def test_unknown_challenge_lists_the_known_ones():
    with pytest.raises(CheckUsageError) as error:
        run_check("99_nothing")
    assert str(error.value) == (
        "unknown challenge '99_nothing'; known challenges: 12_adaptive_backpressure, "
        "13_priority_shedding, 14_token_bucket, 15_retry_policy, 16_adaptive_batcher, "
        "17_autoscaler, 18_window, 19_goodput, 20_lag_throttle"
    )


def test_a_missing_file_or_a_file_without_the_class_is_a_usage_error(tmp_path):
    with pytest.raises(CheckUsageError, match="no such file"):
        run_check("12", str(tmp_path / "missing.py"))
    empty = tmp_path / "empty.py"
    empty.write_text("x = 1\n", encoding="utf-8")
    with pytest.raises(CheckUsageError, match="must define exactly one class"):
        run_check("12", str(empty))


@pytest.mark.parametrize(
    "argv, words",
    [
        (["check", "99"], ["unknown challenge '99'", "12_adaptive_backpressure"]),
        (["check"], ["name a challenge", "--list"]),
        (["check", "14", "--file", "/nonexistent/x.py"], ["no such file: /nonexistent/x.py"]),
    ],
)
def test_the_cli_reports_usage_errors_in_one_line(capsys, argv, words):
    with pytest.raises(SystemExit) as done:
        main(argv)
    assert done.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("bplab check: error:")
    for word in words:
        assert word in err[0]


def test_the_cli_lists_the_challenges(capsys):
    with pytest.raises(SystemExit) as done:
        main(["check", "--list"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert all(name in out for name in CHALLENGES)


# -- the plugin guard, in this process (its failures end a process: see test_gaming.py) ---
def _module(tmp_path, text: str) -> str:
    path = tmp_path / "mine.py"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_a_load_error_names_the_solvers_file_and_line_even_for_system_exit(tmp_path):
    path = _module(tmp_path, "import sys\n\nsys.exit(2)\n")
    with pytest.raises(plugins.PluginCrash) as error:
        plugins.load_class(path, "retry")
    assert str(error.value) == (
        f"{path} failed to load: your code raised SystemExit: 2 (mine.py line 3, "
        "in loading the file)"
    )


def test_the_guard_times_the_outer_call_only_and_keeps_the_slowest(tmp_path):
    path = _module(
        tmp_path,
        "class Retry:\n"
        "    def delay(self, attempt, retry_after_s, now):\n"
        "        return self.base() * attempt\n\n"
        "    def base(self):\n"
        "        return 0.5\n",
    )
    guard = plugins.Guard(path)
    policy = guard.wrap(plugins.build(plugins.load_class(path, "retry"), {}), ("delay", "base"))
    assert [policy.delay(n, 0.1, 1.0) for n in (1, 2, 3)] == [0.5, 1.0, 1.5]
    report = guard.report()
    assert set(report["calls"]) == {"delay()"}  # base() ran inside delay()
    assert report["calls"]["delay()"]["calls"] == 3
    assert 0 <= report["calls"]["delay()"]["slowest_s"] <= report["calls"]["delay()"]["total_s"]
    assert report["error"] is None and report["wall_s"] > 0


FAULTHANDLER_DUMP = """Timeout (0:00:06)!
Thread 0x00007fb6631366c0 (most recent call first):
  File "/usr/lib/python3.11/threading.py", line 331 in wait
  File "/repo/lab/processes/plugins.py", line 227 in _watch

Thread 0x00007fb663febb80 (most recent call first):
  File "/home/me/retry.py", line 9 in total
  File "/home/me/retry.py", line 6 in delay
  File "/repo/lab/processes/plugins.py", line 189 in _call
  File "/repo/lab/processes/plugins.py", line 178 in run
  File "/repo/lab/processes/plugins.py", line 215 in guarded
  File "/repo/lab/core/producer_core.py", line 120 in _retry
"""


def test_a_faulthandler_dump_names_the_method_and_the_innermost_line_in_its_file():
    assert plugins.hang_from_dump(FAULTHANDLER_DUMP) == (
        "your code did not return within 5 s (in delay(), retry.py line 9; "
        "stuck in one call that holds Python's lock)"
    )
    loading = FAULTHANDLER_DUMP.replace("line 6 in delay", "line 6 in <module>")
    assert "(in loading the file, retry.py line 9;" in plugins.hang_from_dump(loading)
    assert plugins.hang_from_dump("error: your code raised ValueError") is None
    no_guard = FAULTHANDLER_DUMP.replace(" in _call", " in other")
    assert plugins.hang_from_dump(no_guard) is None


def test_memory_pressure_is_a_hidden_consumer_flag_through_its_config():
    spec = get_module(12)
    config = ConsumerConfig.for_module(spec, memory_pressure="8.5:224:2.5")
    assert config.memory_pressure == (8.5, 224.0, 2.5)
    assert ConsumerConfig.for_module(spec).memory_pressure is None
    with pytest.raises(ValueError, match=r"^--memory-pressure wants AT_S:TARGET_MB:FOR_S"):
        ConsumerConfig.for_module(spec, memory_pressure="8.5:224")
    with pytest.raises(ValueError, match=r"^--memory-pressure's TARGET_MB must be"):
        ConsumerConfig.for_module(spec, memory_pressure="1:-5:2")
    assert "--memory-pressure" not in CliRunner().invoke(app, ["consumer", "--help"]).output


def test_the_graded_consumer_is_given_the_pressure_as_a_flag_not_an_environment():
    scenario = find_challenge("12").plan(5).scenario
    argv = runner._argv("python", "consumer", scenario, "p.py", 6000, Path("r.jsonl"))
    at_s, target_mb, for_s = scenario.memory_pressure
    assert argv[argv.index("--memory-pressure") + 1] == f"{at_s:g}:{target_mb:g}:{for_s:g}"
    assert "BPLAB_MEMORY_PRESSURE" not in Path(plugins.__file__).read_text(encoding="utf-8")


def test_json_gets_an_object_even_for_a_usage_error(capsys):
    with pytest.raises(SystemExit) as done:
        main(["check", "14", "--file", "/nonexistent/x.py", "--json"])
    assert done.value.code == 2
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert result["passed"] is False and result["checks"] == []
    assert result["challenge"] == "14_token_bucket"
    assert result["error"] == "no such file: /nonexistent/x.py"
    assert captured.err.strip() == "bplab check: error: no such file: /nonexistent/x.py"


# -- the measured speed a policy gets (LoadSignals.measured_rate_per_s) ----------------------
def test_the_measured_speed_follows_a_slowdown_with_the_lag_of_its_window():
    from lab.core import protocol
    from lab.core.config import ConsumerConfig
    from lab.core.consumer_core import ConsumerCore
    from lab.core.policies import MEASURED_RATE_WINDOW_S

    core = ConsumerCore(ConsumerConfig(mode="drop", capacity=500, process_rate=100.0), 0.0, "s")
    records = [protocol.Record(seq, 0.0, 0.0, 0, 0) for seq in range(300)]
    core.on_frame(b"alice", protocol.encode_data(records, 0), 0.0)
    seen = {}
    core.policy.observe = lambda signals, now: seen.__setitem__(
        round(now, 1), signals.measured_rate_per_s
    )
    core.observe(0.0, 10.0)  # nothing finished yet: the nominal speed
    for tenth in range(1, 17):
        now = tenth / 10
        if tenth == 11:
            core.service.slowdown = 4.0  # from 1.0 s on the worker needs 40 ms a message
        core.advance(now)
        core.observe(now, 10.0)
    assert seen[0.0] == 100.0
    assert seen[1.0] == pytest.approx(100.0)
    assert 25.0 < seen[1.1] < 100.0  # the window still holds the fast half second
    assert seen[round(1.0 + MEASURED_RATE_WINDOW_S + 0.1, 1)] == pytest.approx(25.0)
