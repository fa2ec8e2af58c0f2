"""The flow of ``bplab check``: find the challenge and the file, draw the plan, grade,
report, exit status.

Exit status: 0 when every check passed; 1 when one failed, and whenever the solver's code
raised, hung or could not be run (then the table's one row says why, file and line
included); 2 for a usage error (an unknown challenge, a missing file, a file with no
suitable class), reported as one line. ``--json`` always prints one JSON object, for a
failed run too.
"""

from __future__ import annotations

import os
import random
from dataclasses import replace
from pathlib import Path
from typing import Optional

from rich.console import Console

from lab.processes.runtime import print_json, say
from lab.tools.grading.challenges import CHALLENGES, Challenge, find_challenge, known_names
from lab.tools.grading.core import failed_run, grade, results_json
from lab.tools.grading.report import challenges_table, print_results
from lab.tools.grading.runner import (
    ChildUsageError,
    ProbeUsageError,
    RunError,
    run_probe,
    run_scenario,
)

STARTER = "starter.py"


class CheckUsageError(Exception):
    """A usage problem, one line (the CLI turns it into exit status 2)."""


def exercises_root() -> Path:
    """``exercises/`` next to the ``lab`` package (a checkout or an editable install), else
    in the current directory."""
    beside = Path(__file__).resolve().parent.parent.parent / "exercises"
    return beside if beside.is_dir() else Path.cwd() / "exercises"


def default_file(challenge: Challenge) -> Path:
    return exercises_root() / challenge.name / STARTER


def resolve(name: str) -> Challenge:
    challenge = find_challenge(name)
    if challenge is None:
        raise CheckUsageError(
            f"unknown challenge {name!r}; known challenges: {', '.join(known_names())}"
        )
    return challenge


def list_challenges(console: Optional[Console] = None) -> int:
    (console or Console()).print(challenges_table(CHALLENGES[name] for name in known_names()))
    return 0


def draw_seed() -> int:
    """A fresh seed per run (printed, so ``--seed`` replays it)."""
    return random.SystemRandom().randrange(1, 1_000_000)


def run_check(
    name: str, file: Optional[str] = None, json_out: bool = False, seed: Optional[int] = None
) -> int:
    """Grade ``file`` (default: the challenge's starter) against the challenge; exit status."""
    challenge = resolve(name)
    path = file if file is not None else str(default_file(challenge))
    if not os.path.isfile(path.partition(":")[0]):
        raise CheckUsageError(f"no such file: {path}")
    seed = draw_seed() if seed is None else seed
    plan = challenge.plan(seed)
    shown = _shown(path)
    say(
        f"check {challenge.name} --seed {seed} ({plan.facts_text()}): running {shown} "
        f"(about {plan.scenario.duration_s + 5:.0f} s)"
    )
    try:
        probe = run_probe(challenge, path, seed)
        evidence = run_scenario(plan, path)
    except ProbeUsageError as error:
        raise CheckUsageError(str(error)) from None
    except (RunError, ChildUsageError) as error:
        say(f"FAIL {challenge.name}: {error}")
        results = [failed_run(str(error))]
        report = results_json(challenge.name, path, results, str(error), seed, plan.facts)
        _show(challenge, shown, results, report, json_out)
        return 1
    results = grade(plan.checks, replace(evidence, probe=probe))
    report = results_json(challenge.name, path, results, seed=seed, facts=plan.facts)
    _show(challenge, shown, results, report, json_out)
    return 0 if report["passed"] else 1


def _show(challenge: Challenge, shown: str, results, report, json_out: bool) -> None:
    if json_out:
        print_json(report)
    else:
        print_results(Console(), challenge, shown, results)


def print_usage_error_json(name: str, file: Optional[str], error: str) -> None:
    """The ``--json`` object of a check that could not start (the usage error's line)."""
    found = find_challenge(name)
    shown_name = found.name if found is not None else name
    print_json(
        {
            **results_json(shown_name, file or "", [], error=error),
            "summary": f"usage error: {error}",
        }
    )


def _shown(path: str) -> str:
    """The path relative to the current directory when it is below it, else as given."""
    try:
        relative = os.path.relpath(path)
    except ValueError:  # Windows: another drive
        return path
    return path if relative.startswith("..") else relative
