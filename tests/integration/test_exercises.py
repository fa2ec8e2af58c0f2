"""The graded challenges are fair: ``bplab check`` fails each untouched starter for the reason
the exercise teaches, and passes each reference solution, with real processes.

For each challenge the starter and the reference are graded at the same time (two
``bplab check`` processes, four lab processes), which halves the wall time; every grader
picks its own free ports.
"""

from __future__ import annotations

import sys

import pytest

from lab.tools.grading.challenges import CHALLENGES
from tests.conftest import REPO

pytestmark = pytest.mark.integration

# The failures each starter is written to show (it may fail more, never fewer).
STARTER_FAILS = {
    "12_adaptive_backpressure": {
        "queue-wait p99",
        "accepted after the slowdown showed, then late",
        "limit at 1/4 speed vs full speed (probe)",
        "limit under memory pressure vs calm (probe)",
    },
    "13_priority_shedding": {"class 0 dropped + shed", "class 0 queue-wait p99"},
    "14_token_bucket": {"peak 1-second load at the consumer", "dropped by the consumer"},
    "15_retry_policy": {
        "recovery after the spike",
        "retry amplification (attempts per request)",
        "an isolated shed is retried after its retry-after (probe)",
    },
    "20_lag_throttle": {
        "trimmed by MAXLEN (never read)",
        "rate at the end vs the slowed group's speed",
    },
}


def test_every_challenge_has_its_expected_starter_failures():
    assert set(STARTER_FAILS) == set(CHALLENGES)
    for name, failures in STARTER_FAILS.items():
        assert failures <= {check.name for check in CHALLENGES[name].checks}, name


@pytest.mark.parametrize("name", sorted(CHALLENGES))
def test_the_starter_fails_and_the_reference_passes(procs, name):
    solution = REPO / "exercises" / "solutions" / f"{name}.py"
    starter = procs.lab("check", name, "--json")
    reference = procs.lab("check", name, "--file", str(solution), "--json")
    budget = CHALLENGES[name].scenario.duration_s + 45

    assert reference.wait(budget) == 0, _table(reference)
    assert starter.wait(budget) == 1, _table(starter)
    passed = reference.json()
    assert passed["passed"] and passed["error"] is None
    assert all(check["passed"] for check in passed["checks"])
    assert passed["summary"].startswith(f"PASS {name}")
    failed = starter.json()
    assert failed["error"] is None, failed["error"]
    assert STARTER_FAILS[name] <= {c["name"] for c in failed["checks"] if not c["passed"]}
    assert all(c["hint"] for c in failed["checks"] if not c["passed"])


def test_a_class_that_crashes_in_the_consumer_fails_in_one_line(procs, tmp_path):
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
    assert result["passed"] is False and result["checks"] == []
    assert "the consumer stopped early" in result["error"]
    assert "ZeroDivisionError" in result["error"]
    assert check.stderr.strip().splitlines()[-1].startswith("FAIL 13_priority_shedding:")


def test_a_constructor_that_raises_in_the_consumer_is_a_usage_error(procs, tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text(
        "from lab.core.policies import OverflowPolicy\n\n\n"
        "class Broken(OverflowPolicy):\n"
        "    def __init__(self):\n"
        "        raise ValueError('no limit given')\n",
        encoding="utf-8",
    )
    check = procs.lab("check", "13", "--file", str(broken))
    assert check.wait(60) == 2, check.stderr
    last = check.stderr.strip().splitlines()[-1]
    assert last == "bplab check: error: Broken(...) failed: ValueError: no limit given"


def test_check_lists_the_challenges_from_any_directory(procs, tmp_path):
    check = procs.start([sys.executable, "-m", "lab", "check", "--list"], cwd=tmp_path)
    assert check.wait(30) == 0, check.stderr
    for name in CHALLENGES:
        assert name in check.stdout


def _table(process) -> str:
    return f"stdout:\n{process.stdout}\nstderr:\n{process.stderr}"
