"""Graded micro-challenges: ``bplab check NN_name [--file PATH] [--seed N]``.

A challenge (``exercises/NN_name/``) asks a person to write one class: an overflow policy
for the consumer, a retry policy or a rate limiter for the producer. The grader never
imports that file itself: a probe process asks the class made-up questions, then the
*real* processes load it and run the challenge's scenario headless on free loopback ports,
and the grader compares what they measured with the targets. Each run draws its numbers
from a printed seed, so a constant tuned to one draw fails another.

The package has one home for each idea:

* ``core.py``: checks, results and their evaluation (pure);
* ``measures.py``: how each number is computed from the processes' ``--json`` summaries
  and ``--record`` telemetry (pure);
* ``table.py``: what a challenge is made of (a seeded plan, checks, a probe) and the rows
  about the solver's code itself (time inside it, slowest call);
* ``adaptive.py``, ``priority.py``, ``token_bucket.py``, ``retry.py``: the challenges, and
  ``challenges.py`` their table;
* ``probe.py``: the probe's child process;
* ``runner.py``: starting, waiting for and always tearing down the processes (the shell);
* ``command.py`` and ``report.py``: the flow of ``bplab check`` and the table a person reads.
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
