"""Docstrings and comments in ``lab/`` say what the code does and why, not its history.

Measured history (what was faster or slower before which change) belongs in
``docs/performance.md``; a reader of the code needs the behaviour. This catches the phrases
that tell history instead: "as before", "the issue's targets", "used to be", "previously".
"""

from __future__ import annotations

import io
import re
import tokenize
from pathlib import Path
from typing import Iterator, Tuple

LAB = Path(__file__).resolve().parents[2] / "lab"
HISTORY = re.compile(
    r"\bas before\b|\bthe issue\b|\bissue #?\d|\b(it|we|this) used to\b|\bused to be\b"
    r"|\bpreviously\b|\bformerly\b|\bthis session\b|\bthe old code\b",
    re.IGNORECASE,
)


def prose(source: str) -> Iterator[Tuple[int, str]]:
    """(line, text) of every comment and string literal; docstrings are string literals."""
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type in (tokenize.COMMENT, tokenize.STRING):
            yield token.start[0], token.string


def history_in(source: str, where: str) -> list:
    return [
        f"{where}:{line}: {match.group(0)!r}"
        for line, text in prose(source)
        for match in HISTORY.finditer(text)
    ]


def test_no_docstring_or_comment_in_lab_tells_history():
    found = []
    for path in sorted(LAB.rglob("*.py")):
        found += history_in(path.read_text(encoding="utf-8"), str(path.relative_to(LAB.parent)))
    assert not found, "\n".join(found)


def test_the_phrases_are_caught_in_docstrings_and_comments_not_in_names():
    source = 'def f(previously_seen):\n    """Rendered as before."""\n    # it used to spin\n'
    assert history_in(source, "f.py") == ["f.py:2: 'as before'", "f.py:3: 'it used to'"]
