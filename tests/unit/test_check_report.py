"""bplab check's table at 80 columns: a hint's long name is never cut."""

from __future__ import annotations

from rich.console import Console

from lab.tools.grading.challenges import CHALLENGES
from lab.tools.grading.core import CheckResult
from lab.tools.grading.report import results_table


def test_a_hint_keeps_its_longest_word_whole_at_80_columns():
    challenge = next(c for c in CHALLENGES.values() if "13" in c.name or "shed" in c.name)
    # a hint with a long name in it, as a hint may have (the layout must not cut it)
    hint = "when a critical message finds the buffer full, ACCEPT_EVICTING_OLDEST makes room"
    failed = CheckResult("class 0 dropped + shed", 12.0, "12", "== 0", False, hint)
    passed = CheckResult("class 0 queue-wait p99", 80.0, "80 ms", "<= 100 ms", True, "")
    console = Console(width=80, record=True, force_terminal=False)
    console.print(results_table(challenge, "exercises/x.py", [failed, passed]))
    text = console.export_text()
    assert "ACCEPT_EVICTING_OLDEST" in text
    assert all(len(row) <= 80 for row in text.splitlines())
