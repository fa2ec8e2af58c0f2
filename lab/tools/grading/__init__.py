"""Graded micro-challenges: ``bplab check NN_name [--file PATH]``.

A challenge (``exercises/NN_name/``) asks a person to write one class: an overflow policy
for the consumer, a retry policy or a rate limiter for the producer. The grader loads that
class into the *real* processes, runs the challenge's scenario headless on free loopback
ports, and compares what it measured with the targets.

The package has one home for each idea:

* ``core.py``: checks, results and their evaluation (pure);
* ``measures.py``: how each number is computed from the processes' ``--json`` summaries
  and ``--record`` telemetry (pure);
* ``challenges.py``: the table of challenges, their scenarios, checks, targets and hints;
* ``runner.py``: starting, waiting for and always tearing down the processes (the shell);
* ``report.py``: the pass/fail table a person reads.
"""

from lab.tools.grading.challenges import CHALLENGES, Challenge, find_challenge, known_names
from lab.tools.grading.core import Check, CheckResult, Evidence, all_passed, evaluate, grade

__all__ = [
    "CHALLENGES",
    "Challenge",
    "Check",
    "CheckResult",
    "Evidence",
    "all_passed",
    "evaluate",
    "find_challenge",
    "grade",
    "known_names",
]
