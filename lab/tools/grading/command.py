"""The flow of ``bplab check``: find the challenge and the file, grade, report, exit status.

Exit status: 0 when every check passed, 1 when one failed (or the run could not finish:
for instance the solver's class raised inside the consumer), 2 for a usage error (an
unknown challenge, a missing file, a file that does not load), reported as one line.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Optional

from rich.console import Console

from lab.processes import plugins
from lab.processes.runtime import print_json, say
from lab.tools.grading.challenges import CHALLENGES, Challenge, find_challenge, known_names
from lab.tools.grading.core import grade, results_json
from lab.tools.grading.report import challenges_table, print_results
from lab.tools.grading.runner import (
    ChildUsageError,
    RunError,
    load_solution,
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


def run_check(name: str, file: Optional[str] = None, json_out: bool = False) -> int:
    """Grade ``file`` (default: the challenge's starter) against the challenge; exit status."""
    challenge = resolve(name)
    path = file if file is not None else str(default_file(challenge))
    try:
        cls = load_solution(challenge, path)
    except plugins.PluginError as error:
        raise CheckUsageError(str(error)) from None
    shown = _shown(path)
    say(
        f"check {challenge.name}: running the scenario with {cls.__name__} from {shown} "
        f"(about {challenge.scenario.duration_s + 3:.0f} s)"
    )
    probe = run_probe(challenge, cls)
    try:
        evidence = run_scenario(challenge, path)
    except ChildUsageError as error:
        raise CheckUsageError(str(error)) from None
    except RunError as error:
        say(f"FAIL {challenge.name}: {error}")
        if json_out:
            print_json(results_json(challenge.name, path, [], error=str(error)))
        return 1
    results = grade(challenge.checks, replace(evidence, probe=probe))
    report = results_json(challenge.name, path, results)
    if json_out:
        print_json(report)
    else:
        print_results(Console(), challenge, shown, results)
    return 0 if report["passed"] else 1


def _shown(path: str) -> str:
    """The path relative to the current directory when it is below it, else as given."""
    try:
        relative = os.path.relpath(path)
    except ValueError:  # Windows: another drive
        return path
    return path if relative.startswith("..") else relative
