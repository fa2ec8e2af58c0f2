"""What a person reads after ``bplab check``: the pass/fail table and the list of challenges."""

from __future__ import annotations

from typing import Iterable, Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text

from lab.tools.grading.challenges import Challenge
from lab.tools.grading.core import CheckResult, all_passed, final_line


def results_table(challenge: Challenge, file: str, results: Sequence[CheckResult]) -> Table:
    """One row per check: what was measured, the target, PASS/FAIL and, on failure, a hint."""
    table = Table(title=f"{challenge.name}: {challenge.title}", caption=file, title_justify="left")
    table.add_column("check")
    table.add_column("measured", justify="right", no_wrap=True)
    table.add_column("target", justify="right", no_wrap=True)
    table.add_column("result", no_wrap=True)
    # As wide as the hint's longest word (a name like ACCEPT_EVICTING_OLDEST is never cut).
    longest = max((len(word) for r in results for word in r.hint.split()), default=4)
    table.add_column("hint", ratio=1, min_width=min(longest, 30))
    for result in results:
        verdict = Text("PASS", style="bold green") if result.passed else Text("FAIL", "bold red")
        hint = Text(result.hint)
        if result.note:
            hint.append(f"{' -- ' if result.hint else ''}{result.note}", style="dim")
        table.add_row(result.name, result.shown, result.target, verdict, hint)
    return table


def print_results(
    console: Console, challenge: Challenge, file: str, results: Sequence[CheckResult]
) -> None:
    console.print(results_table(challenge, file, results))
    style = "bold green" if all_passed(results) else "bold red"
    console.print(Text(final_line(challenge.name, results), style=style))


def challenges_table(challenges: Iterable[Challenge]) -> Table:
    table = Table(title="Graded challenges (bplab check NAME [--file PATH])", title_justify="left")
    table.add_column("challenge", no_wrap=True)
    table.add_column("your class goes into", no_wrap=True)
    table.add_column("goal", ratio=1)
    for challenge in challenges:
        table.add_row(
            challenge.name, f"{challenge.plugin_role} {challenge.plugin_flag}", challenge.goal
        )
    return table
