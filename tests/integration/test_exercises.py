"""The graded challenges are fair: ``bplab check`` fails each untouched starter for the reason
the exercise teaches, and passes each reference solution, with real processes.

Every starter and every reference (for 12 both references) is graded by ``bplab check
--json`` in one module fixture, GRADED_AT_ONCE at a time (each with its own seed and free
ports), longest scenarios first; each test reads its own results. The wrong answers are in
``test_gaming.py``.
"""

from __future__ import annotations

import sys
from typing import Dict, Iterator

import pytest

from lab.processes.plugins import CALL_TIMEOUT_S
from lab.tools.grading.challenges import CHALLENGES
from lab.tools.grading.core import RUN_ROW
from lab.tools.grading.runner import EXIT_SLACK_S
from tests.conftest import GRADED_AT_ONCE, REPO, LabProcess, ProcessPool, run_bounded

pytestmark = pytest.mark.integration

# The failures each starter is written to show (it may fail more, never fewer).
STARTER_FAILS = {
    "12_adaptive_backpressure": {
        "queue-wait p99",
        "accepted after the slowdown showed, then late",
        "limit under real memory pressure vs before it",
        "limit at 1/4 speed, first observe(), vs full speed (probe)",
        "limit at twice the target vs the target (probe)",
        "limit under memory pressure vs calm (probe)",
    },
    "13_priority_shedding": {"class 0 dropped + shed", "class 0 queue-wait p99"},
    "14_token_bucket": {"peak 1-second rate let through"},
    "15_retry_policy": {
        "recovery after the spike",
        "retry amplification (attempts per request)",
        "real run: shortest delay vs its retry-after",
        "isolated shed: delay vs its retry-after (probe)",
        "retry amplification in a storm (probe)",
    },
    "16_adaptive_batcher": {
        "processed vs received, burst + 0.5 s",
        "message latency p99 in the quiet steps",
    },
    "17_autoscaler": {"worst lag while the producer ran"},
    "18_window": {
        "throughput vs capacity, before the change",
        "throughput vs capacity, after the change",
    },
    "19_goodput": {"goodput vs capacity, 2-6.5 s", "wasted vs processed, 2-6.5 s"},
    "20_lag_throttle": {
        "trimmed by MAXLEN (never read)",
        "rate at the end vs the slowed group's speed",
    },
}
# 18 came after 19 and 20: their seeds (and so their draws) stay what they were.
SEEDS = {
    name: 100 + number for number, name in enumerate(sorted(set(STARTER_FAILS) - {"18_window"}))
}
SEEDS["18_window"] = 118  # 1000 msg/s, 60 ms then 10 ms
CHECKS_TIMEOUT_S = 300  # the fixture grades every starter and reference before its first test


def test_every_challenge_has_its_expected_starter_failures():
    assert set(STARTER_FAILS) == set(CHALLENGES)
    for name, failures in STARTER_FAILS.items():
        names = {check.name for check in CHALLENGES[name].plan(SEEDS[name]).checks}
        assert failures <= names, name


def _references(name: str):
    return sorted((REPO / "exercises" / "solutions").glob(f"{name}*.py"))


def _budget(name: str) -> float:
    return CHALLENGES[name].plan(SEEDS[name]).scenario.duration_s + EXIT_SLACK_S + 30


@pytest.fixture(scope="module")
def checks() -> Iterator[Dict[str, LabProcess]]:
    """(challenge, file or "starter") -> its finished ``bplab check --json``."""
    argvs = {}
    for name in sorted(CHALLENGES, key=_budget, reverse=True):
        check = [sys.executable, "-m", "lab", "check", name, "--json", "--seed", str(SEEDS[name])]
        argvs[(name, "starter")] = check
        for path in _references(name):
            argvs[(name, path.name)] = [*check, "--file", str(path)]
    pool = ProcessPool()
    try:
        yield run_bounded(pool, argvs, GRADED_AT_ONCE, max(map(_budget, CHALLENGES)))
    finally:
        pool.close()


@pytest.mark.timeout(CHECKS_TIMEOUT_S)
@pytest.mark.parametrize("name", sorted(CHALLENGES))
def test_the_starter_fails_and_the_references_pass(checks, name):
    seed = SEEDS[name]
    for path in _references(name):
        reference = checks[(name, path.name)]
        assert reference.popen.returncode == 0, _table(reference)
        passed = reference.json()
        assert passed["passed"] and passed["error"] is None and passed["seed"] == seed
        assert all(check["passed"] for check in passed["checks"])
        assert passed["summary"].startswith(f"PASS {name}")
    starter = checks[(name, "starter")]
    assert starter.popen.returncode == 1, _table(starter)
    failed = starter.json()
    assert failed["error"] is None, failed["error"]
    assert STARTER_FAILS[name] <= {c["name"] for c in failed["checks"] if not c["passed"]}
    assert all(c["hint"] for c in failed["checks"] if not c["passed"])


def test_a_class_that_crashes_in_the_consumer_fails_in_one_row(procs, tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text(
        "from lab.core.policies import OverflowPolicy\n\n\n"
        "class Broken(OverflowPolicy):\n"
        "    def decide(self, message, buffer, now):\n"
        "        return 1 / 0\n",
        encoding="utf-8",
    )
    check = procs.lab("check", "13", "--file", str(broken), "--json")
    assert check.wait(60) == 1, check.stderr
    result = check.json()
    assert result["passed"] is False
    line = "your code raised ZeroDivisionError: division by zero (broken.py line 6, in decide())"
    assert result["error"] == line
    assert [(c["name"], c["hint"]) for c in result["checks"]] == [(RUN_ROW, line)]
    assert check.stderr.strip().splitlines()[-1] == f"FAIL 13_priority_shedding: {line}"


def test_a_constructor_that_raises_in_the_consumer_is_a_fail_row(procs, tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text(
        "from lab.core.policies import OverflowPolicy\n\n\n"
        "class Broken(OverflowPolicy):\n"
        "    def __init__(self):\n"
        "        raise ValueError('no limit given')\n",
        encoding="utf-8",
    )
    check = procs.lab("check", "13", "--file", str(broken), "--json")
    assert check.wait(60) == 1, check.stderr
    (row,) = check.json()["checks"]
    assert row["hint"] == (
        "your code raised ValueError: no limit given (broken.py line 6, in Broken(...))"
    )
    assert CALL_TIMEOUT_S == 5.0  # the hang rows of test_gaming.py quote it


def test_check_lists_the_challenges_from_any_directory(procs, tmp_path):
    check = procs.start([sys.executable, "-m", "lab", "check", "--list"], cwd=tmp_path)
    assert check.wait(30) == 0, check.stderr
    for name in CHALLENGES:
        assert name in check.stdout


def _table(process) -> str:
    return f"stdout:\n{process.stdout}\nstderr:\n{process.stderr}"
