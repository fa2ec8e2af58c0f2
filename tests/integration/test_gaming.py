"""The graders cannot be fooled: every wrong answer in ``tests/gaming/`` fails its challenge,
on the row that teaches why, and every reference solution passes.

Two kinds of case. A wrong answer the probe catches is graded by the probe alone (its child
process, a second or so; a hang costs the guard's 5 s), all of them at once from threads
of a module fixture: the row named here must fail.
One that only a real run can catch (a policy that behaves in the probe, a limiter that
sleeps, a shedding policy) is graded by a whole ``bplab check --json``; those run
GRADED_AT_ONCE at a time, in a fixture shared by the module, and each test reads its own
result. Every case uses a fixed seed, so a failure can be replayed with ``bplab check N
--seed S``; a case written ``stem@S`` is graded with seed S, where the wrong answer fails
only some draws. The reference solutions pass in ``test_exercises.py``, graded next to the
starters.
"""

from __future__ import annotations

import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, Iterator, Tuple

import pytest

from lab.processes import plugins
from lab.tools.grading.challenges import CHALLENGES, find_challenge
from lab.tools.grading.core import RUN_ROW, Evidence, evaluate
from lab.tools.grading.runner import RunError, run_probe
from tests.conftest import GRADED_AT_ONCE, REPO, LabProcess, ProcessPool, run_bounded

pytestmark = pytest.mark.integration

GAMING = REPO / "tests" / "gaming"
SEED = 5
PROBES_AT_ONCE = 8  # probe children are small and short
REAL_RUNS_TIMEOUT_S = 300  # the fixture grades every RUN_FAILS file before its first test
CHECK_BUDGET_S = 90.0  # a check's own bound is the scenario + 20 s; this is the test's

# Caught by the probe: file -> the probe row that must fail.
PROBE_FAILS: Dict[str, str] = {
    "g12_hard_coded_steps": "limit at 1/4 speed, first observe(), vs full speed (probe)",
    "g12_tiny_fixed_queue": "limit when fast vs speed x target (probe)",
    "g12_ignores_target": "limit at twice the target vs the target (probe)",
    "g12_ratchet": "limit back at full speed vs before the slowdown (probe)",
    "g12_always_accept": "limit at 1/4 speed, first observe(), vs full speed (probe)",
    "g12_drop_everything": "limit when fast vs speed x target (probe)",
    "g15_always_ten_seconds": "isolated shed: delay vs the time left to its deadline (probe)",
    "g15_retry_while_early": "isolated shed: delay vs its retry-after (probe)",
    "g15_never_retry": "isolated shed: delay vs its retry-after (probe)",
}
# Code that breaks the run, caught in the probe's child: file -> the start of its one line.
PROBE_STOPS: Dict[str, str] = {
    "g12_system_exit_at_import": "your code raised SystemExit: 0 "
    "(g12_system_exit_at_import.py line 7, in loading the file)",
    "g12_loop_at_import": "your code did not return within 5 s "
    "(in loading the file, g12_loop_at_import.py line 5)",
    "g12_system_exit_in_observe": "your code raised SystemExit: 0 "
    "(g12_system_exit_in_observe.py line 10, in observe())",
    "g12_loop_in_observe": "your code did not return within 5 s "
    "(in observe(), g12_loop_in_observe.py line",
    "g15_system_exit_in_delay": "your code raised SystemExit: 3 "
    "(g15_system_exit_in_delay.py line 8, in delay())",
    "g15_loop_in_delay": "your code did not return within 5 s "
    "(in delay(), g15_loop_in_delay.py line",
    # Hangs inside a C call: named by the watchdog (the lock is let go) or by faulthandler.
    "g15_sleep_60_in_delay": "your code did not return within 5 s "
    "(in delay(), g15_sleep_60_in_delay.py line 8)",
    "g15_event_wait_in_delay": "your code did not return within 5 s "
    "(in delay(), g15_event_wait_in_delay.py line 8)",
    "g15_lock_held_in_delay": "your code did not return within 5 s "
    "(in delay(), g15_lock_held_in_delay.py line 10; stuck in one call that holds Python's lock)",
}
# Caught only by a real run: file -> the rows that must fail.
RUN_FAILS: Dict[str, Tuple[str, ...]] = {
    "g12_probe_detector": ("limit under real memory pressure vs before it",),
    "g13_drop_all_optional": ("refused before the spike, with room to spare",),
    "g13_shed_lesser_70": ("refused before the spike, with room to spare",),
    "g13_always_accept": ("class 0 dropped + shed",),
    "g13_drop_everything": (
        "class 0 dropped + shed",
        "worker busy during the spike",
        "refused before the spike, with room to spare",
    ),
    "g13_sleep_in_decide": ("time spent inside your code",),
    "g13_loop_in_decide": (RUN_ROW,),
    "g13_lock_held_in_decide": (RUN_ROW,),
    "g14_sleeping_limiter": ("time spent inside your code",),
    "g14_rate_105_burst_5": ("peak 1-second rate let through",),
    "g14_never_send": ("messages sent by the end", "producer latency p99 (due -> verdict)"),
    # Constants sized for 100 msg/s: too generous for a 60 msg/s consumer (seed 4 draws it),
    # too slow to drain the spike for a 150 msg/s one (seed 6).
    "g14_hard_coded_100@4": ("peak 1-second rate let through",),
    "g14_hard_coded_100@6": ("messages sent by the end",),
    "g15_probe_detector": ("real run: shortest delay vs its retry-after",),
    "g16_constant_batch_small": ("processed vs received, burst + 0.5 s",),
    "g16_constant_batch_large": ("message latency p99 in the quiet steps",),
    "g16_sleep_in_rule": ("time spent inside your code",),
    "g17_always_max": (
        "worker-seconds vs an oracle that knew the load",
        "most workers at once vs the database's knee",
    ),
    "g17_always_min": ("worst lag while the producer ran",),
    "g17_past_the_knee": ("most workers at once vs the database's knee",),
    "g17_sleep_in_rule": ("time spent inside your code",),
    # Seed 5 draws 500 msg/s, 60 ms then 10 ms: what suits the long delay is too much after.
    "g18_small_window": ("throughput vs capacity, before the change",),
    "g18_buffer_window": ("most in flight, before the change", "most in flight, after the change"),
    "g18_sized_once": ("most in flight, after the change",),
    # Seed 2 draws 10 ms then 60 ms: sized for the short delay, the consumer starves after.
    "g18_sized_once@2": ("throughput vs capacity, after the change",),
    "g18_sleep_in_observe": ("time spent inside your code",),
    "g19_always_drop": ("goodput vs capacity, 2-6.5 s",),
    "g19_fifo_untouched": ("goodput vs capacity, 2-6.5 s", "wasted vs processed, 2-6.5 s"),
    "g19_sleep_in_rule": ("time spent inside your code",),
    "g20_constant_rate": ("rate at the end vs the slowed group's speed",),
    "g20_sleep_in_update": ("time spent inside your code",),
}


# The real run's one line for code that hangs in the consumer (the probe never calls it).
RUN_HANGS = {
    "g13_loop_in_decide": "your code did not return within 5 s "
    "(in decide(), g13_loop_in_decide.py line 8)",
    "g13_lock_held_in_decide": "your code did not return within 5 s "
    "(in decide(), g13_lock_held_in_decide.py line 9; stuck in one call that holds Python's lock)",
}


def _challenge(stem: str):
    return find_challenge(stem[1:3])


def _case(case: str) -> Tuple[str, int]:
    """A RUN_FAILS key: the gaming file's stem and the seed it is graded with."""
    stem, _, seed = case.partition("@")
    return stem, int(seed) if seed else SEED


DRAWN_CAPACITY = {"g14_hard_coded_100@4": 60.0, "g14_hard_coded_100@6": 150.0}
# Challenge 18's cases: (capacity, delay before, delay after) that their comments name.
DRAWN_LINK = {"g18_small_window": (500.0, 60.0, 10.0), "g18_sized_once@2": (500.0, 10.0, 60.0)}


@pytest.mark.parametrize("case", sorted(DRAWN_CAPACITY))
def test_a_case_with_its_own_seed_gets_the_draw_its_comment_names(case):
    stem, seed = _case(case)
    assert _challenge(stem).plan(seed).facts["consumer_rate"] == DRAWN_CAPACITY[case]


@pytest.mark.parametrize("case", sorted(DRAWN_LINK))
def test_a_window_case_gets_the_link_its_comment_names(case):
    stem, seed = _case(case)
    facts = _challenge(stem).plan(seed).facts
    drawn = (facts["capacity_mps"], facts["delay_before_ms"], facts["delay_after_ms"])
    assert drawn == DRAWN_LINK[case]


def test_every_file_in_the_gaming_folder_is_graded_and_fits_its_challenge():
    files = {path.stem for path in GAMING.glob("g*.py")}
    run_stems = {_case(case)[0] for case in RUN_FAILS}
    assert files == set(PROBE_FAILS) | set(PROBE_STOPS) | run_stems
    assert {_challenge(stem).name for stem in files} == set(CHALLENGES)
    for stem in files:
        kind = _challenge(stem).plugin_kind
        text = (GAMING / f"{stem}.py").read_text(encoding="utf-8")
        assert f'"""{stem[1:3]}, ' in text, stem  # the docstring names challenge and trick
        if stem not in PROBE_STOPS:
            assert plugins.KINDS[kind], stem


def _probe(stem: str) -> Tuple[object, float]:
    """The probe's answers (or the RunError it raised) and how long it took."""
    began = time.monotonic()
    try:
        outcome: object = run_probe(_challenge(stem), str(GAMING / f"{stem}.py"), SEED)
    except RunError as error:
        outcome = error
    return outcome, time.monotonic() - began


@pytest.fixture(scope="module")
def probes() -> Dict[str, Tuple[object, float]]:
    stems = sorted(set(PROBE_FAILS) | set(PROBE_STOPS))
    with ThreadPoolExecutor(max_workers=PROBES_AT_ONCE) as pool:
        return dict(zip(stems, pool.map(_probe, stems)))


@pytest.mark.parametrize("stem", sorted(PROBE_FAILS))
def test_a_wrong_answer_fails_its_probe_row(probes, stem):
    answers, _ = probes[stem]
    assert isinstance(answers, dict), answers
    plan = _challenge(stem).plan(SEED)
    rows = {check.name: evaluate(check, Evidence(probe=answers)) for check in plan.checks}
    row = rows[PROBE_FAILS[stem]]
    assert not row.passed and row.hint, row


@pytest.mark.parametrize("stem", sorted(PROBE_STOPS))
def test_code_that_raises_or_hangs_in_the_probe_is_one_line_naming_file_and_line(probes, stem):
    error, took = probes[stem]
    assert isinstance(error, RunError), error
    assert str(error).startswith(PROBE_STOPS[stem]), str(error)
    assert took < plugins.CALL_TIMEOUT_S + 10


def test_system_exit_at_import_is_a_fail_row_and_a_json_object(procs):
    check = procs.lab(
        "check", "12", "--file", str(GAMING / "g12_system_exit_at_import.py"), "--json"
    )
    assert check.wait(60) == 1, check.stderr
    result = check.json()
    assert result["passed"] is False and result["seed"] is not None
    (row,) = result["checks"]
    assert row["name"] == RUN_ROW and not row["passed"]
    assert row["hint"] == result["error"] == PROBE_STOPS["g12_system_exit_at_import"]


@pytest.fixture(scope="module")
def real_runs() -> Iterator[Dict[str, LabProcess]]:
    """Every RUN_FAILS file graded by ``bplab check --json``, GRADED_AT_ONCE at a time; the
    processes are gone when the module is done."""
    argvs = {}
    for case in RUN_FAILS:
        stem, seed = _case(case)
        name, path = _challenge(stem).name, GAMING / f"{stem}.py"
        argv = [sys.executable, "-m", "lab", "check", name, "--file", str(path)]
        argvs[case] = [*argv, "--seed", str(seed), "--json"]
    pool = ProcessPool()
    try:
        yield run_bounded(pool, argvs, GRADED_AT_ONCE, CHECK_BUDGET_S)
    finally:
        pool.close()


@pytest.mark.timeout(REAL_RUNS_TIMEOUT_S)
@pytest.mark.parametrize("case", sorted(RUN_FAILS))
def test_a_wrong_answer_fails_its_real_run_on_the_right_row(real_runs, case):
    check = real_runs[case]
    assert check.popen.returncode == 1, check.stderr
    result = check.json()
    failed = {row["name"]: row for row in result["checks"] if not row["passed"]}
    for name in RUN_FAILS[case]:
        assert name in failed, (name, result["summary"])
        assert failed[name]["hint"]
    if case in RUN_HANGS:
        assert failed[RUN_ROW]["hint"] == RUN_HANGS[case]
