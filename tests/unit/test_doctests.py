"""The quick facts in the docstrings are doctests: run every lab module that has any."""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

import lab

LAB = Path(lab.__file__).resolve().parent
MODULES = sorted(
    ".".join(path.relative_to(LAB).with_suffix("").parts)
    for path in LAB.rglob("*.py")
    if path.stem != "__main__" and ">>>" in path.read_text(encoding="utf-8")
)


def test_the_core_modules_with_quick_facts_are_all_collected():
    core = {"buffer", "clock", "metrics", "pacing", "policies", "protocol", "retry", "service"}
    assert {f"core.{name}" for name in core} <= set(MODULES)
    assert "tools.sim" in MODULES


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name):
    module = importlib.import_module(f"lab.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.attempted > 0, f"lab.{name} has '>>>' but no doctest ran"
    assert result.failed == 0, f"{result.failed} doctest(s) failed in lab.{name} (see stdout)"
