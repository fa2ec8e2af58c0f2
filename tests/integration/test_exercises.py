"""The graded challenges are fair: ``bplab check`` fails each untouched starter for the reason
the exercise teaches, and passes each reference solution, with real processes.

For each challenge the starter and the reference (for 12 both references) are graded at
the same time, each with its own seed and free ports, which halves the wall time. The
wrong answers are in ``test_gaming.py``.
"""

from __future__ import annotations

import sys

import pytest

from lab.processes.plugins import CALL_TIMEOUT_S
from lab.tools.grading.challenges import CHALLENGES
from lab.tools.grading.core import RUN_ROW
from lab.tools.grading.runner import EXIT_SLACK_S
from tests.conftest import REPO

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
        "isolated shed: delay vs its retry-after (probe)",
        "retry amplification in a storm (probe)",
    },
    "16_adaptive_batcher": {
        "processed vs received, burst + 0.5 s",
        "message latency p99 in the quiet steps",
    },
    "17_autoscaler": {"worst lag while the producer ran"},
    "20_lag_throttle": {
        "trimmed by MAXLEN (never read)",
        "rate at the end vs the slowed group's speed",
    },
}
SEEDS = {name: 100 + number for number, name in enumerate(sorted(STARTER_FAILS))}


def test_every_challenge_has_its_expected_starter_failures():
    assert set(STARTER_FAILS) == set(CHALLENGES)
    for name, failures in STARTER_FAILS.items():
        names = {check.name for check in CHALLENGES[name].plan(SEEDS[name]).checks}
        assert failures <= names, name


def _references(name: str):
    return sorted((REPO / "exercises" / "solutions").glob(f"{name}*.py"))


@pytest.mark.parametrize("name", sorted(CHALLENGES))
def test_the_starter_fails_and_the_references_pass(procs, name):
    seed = str(SEEDS[name])
    starter = procs.lab("check", name, "--json", "--seed", seed)
    references = [
        procs.lab("check", name, "--file", str(path), "--json", "--seed", seed)
        for path in _references(name)
    ]
    budget = CHALLENGES[name].plan(SEEDS[name]).scenario.duration_s + EXIT_SLACK_S + 30

    for reference in references:
        assert reference.wait(budget) == 0, _table(reference)
        passed = reference.json()
        assert passed["passed"] and passed["error"] is None and passed["seed"] == int(seed)
        assert all(check["passed"] for check in passed["checks"])
        assert passed["summary"].startswith(f"PASS {name}")
    assert starter.wait(budget) == 1, _table(starter)
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
