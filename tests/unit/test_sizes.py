"""No class in ``lab/`` longer than about 300 lines of code, no function longer than about 60.

Read with ``ast``. A line of code is a line that is not blank, not only a comment and not
part of a docstring: the docstrings say how a part behaves and are welcome at any length.
A function is measured from its first statement after the signature, so a typer command's
list of options (the flags, declared as data) does not count against its body. The
dashboard's layout tables are module-level data, not functions, so they are not measured.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Iterator, List, Set, Tuple

import pytest

LAB = Path(__file__).resolve().parents[2] / "lab"
MAX_CLASS_LINES = 300
MAX_FUNCTION_LINES = 60

Scoped = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
Functions = (ast.FunctionDef, ast.AsyncFunctionDef)


def docstring_lines(tree: ast.AST) -> Set[int]:
    lines: Set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, Scoped) and node.body:
            first = node.body[0]
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                lines.update(range(first.lineno, first.end_lineno + 1))
    return lines


def code_lines(source: str) -> Set[int]:
    """The numbers of the lines of code in ``source`` (see the module docstring)."""
    written = {
        number
        for number, line in enumerate(source.splitlines(), start=1)
        if line.strip() and not line.strip().startswith("#")
    }
    return written - docstring_lines(ast.parse(source))


def measured(source: str) -> Iterator[Tuple[str, str, int, int]]:
    """(kind, name, first line, lines of code) of every class and function."""
    code = code_lines(source)
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef):
            span = range(node.lineno, node.end_lineno + 1)
            yield "class", node.name, node.lineno, len(code.intersection(span))
        elif isinstance(node, Functions):
            span = range(node.body[0].lineno, node.end_lineno + 1)
            yield "function", node.name, node.lineno, len(code.intersection(span))


def too_long(source: str, where: str) -> List[str]:
    limits = {"class": MAX_CLASS_LINES, "function": MAX_FUNCTION_LINES}
    return [
        f"{where}:{line} {kind} {name}: {lines} lines of code (at most {limits[kind]})"
        for kind, name, line, lines in measured(source)
        if lines > limits[kind]
    ]


def test_no_class_or_function_in_lab_is_too_long():
    problems = []
    for path in sorted(LAB.rglob("*.py")):
        problems += too_long(path.read_text(encoding="utf-8"), str(path.relative_to(LAB.parent)))
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    "body, expected",
    [
        ("    x = 1\n" * 60, []),
        ("    x = 1\n" * 61, ["f.py:1 function f: 61 lines of code (at most 60)"]),
        ('    """' + "doc\n" * 100 + '"""\n' + "    # why\n\n" * 50 + "    x = 1\n" * 60, []),
    ],
)
def test_the_measure_counts_code_not_docstrings_comments_or_blank_lines(body, expected):
    assert too_long("def f(\n    a=1,\n    b=2,\n):\n" + body, "f.py") == expected


def test_a_long_class_is_caught():
    source = "class C:\n" + "".join(
        f"    def m{i}(self):\n        return {i}\n" for i in range(151)
    )
    assert too_long(source, "c.py") == ["c.py:1 class C: 303 lines of code (at most 300)"]
