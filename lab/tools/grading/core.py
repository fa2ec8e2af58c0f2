"""Checks and their evaluation: evidence in, a pass/fail row per check out. Pure.

A :class:`Check` names one number (``measure`` computes it from the :class:`Evidence` of a
run), a comparison and a target, and the one-line hint a person gets when it fails. A
measure that cannot produce its number (the run never recovered, a summary is missing, the
solver's class raised) returns None or raises :class:`MissingData`; that check fails, and
the table says why.

>>> check = Check("drops", lambda ev: ev.consumer["dropped"], "==", 0, "keep room")
>>> evaluate(check, Evidence(consumer={"dropped": 3})).passed
False
>>> evaluate(check, Evidence(consumer={"dropped": 0})).shown
'0'
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Sequence, Union

OPS: Dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "==": operator.eq,
    "<": operator.lt,
    ">": operator.gt,
}
OP_TEXT = {"<=": "≤", ">=": "≥", "==": "=", "<": "<", ">": ">"}


class MissingData(Exception):
    """A measure could not produce its number; the message says why (shown as a note)."""


class Noted(NamedTuple):
    """A measured number with a note for the table (e.g. which method was slowest)."""

    value: float
    note: str


@dataclass(frozen=True)
class Evidence:
    """What one graded run produced."""

    consumer: Dict[str, Any] = field(default_factory=dict)  # the consumer's --json summary
    producer: Dict[str, Any] = field(default_factory=dict)  # the producer's --json summary
    consumer_records: Sequence[Dict[str, Any]] = ()  # the consumer's --record snapshots
    producer_records: Sequence[Dict[str, Any]] = ()
    probe: Dict[str, Any] = field(default_factory=dict)  # answers of the solver's class
    plugin: Dict[str, Any] = field(default_factory=dict)  # the plugin guard's timing report


@dataclass(frozen=True)
class Check:
    """One graded number: ``measure(evidence) <op> target``."""

    name: str
    measure: Callable[[Evidence], Union[None, float, Noted]]
    op: str
    target: float
    hint: str
    unit: str = ""
    digits: int = 0
    missing: str = "n/a"  # shown when the measure has no number (e.g. "never")

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise ValueError(f"unknown comparison {self.op!r}; use one of {', '.join(OPS)}")

    @property
    def target_text(self) -> str:
        return f"{OP_TEXT[self.op]} {format_value(self.target, self.unit, self.digits)}"


@dataclass(frozen=True)
class CheckResult:
    """A check's row in the table (``hint`` is empty when it passed)."""

    name: str
    measured: Optional[float]
    shown: str
    target: str
    passed: bool
    hint: str
    note: str = ""  # why there is no number, when there is none

    def as_dict(self) -> Dict[str, Any]:
        return {
            "name": self.name,
            "measured": self.measured,
            "shown": self.shown,
            "target": self.target,
            "passed": self.passed,
            "hint": self.hint,
            "note": self.note,
        }


def format_value(value: float, unit: str = "", digits: int = 0) -> str:
    """A number as the table shows it: fixed decimals, then the unit.

    >>> format_value(0.912, "%", 1), format_value(250, "ms"), format_value(3, "")
    ('0.9 %', '250 ms', '3')
    """
    text = f"{value:.{digits}f}"
    if unit == "%":
        return f"{text} %"
    return f"{text} {unit}" if unit else text


def evaluate(check: Check, evidence: Evidence) -> CheckResult:
    """Measure one check on the evidence and compare it with its target."""
    note = ""
    try:
        value = check.measure(evidence)
    except MissingData as error:
        value, note = None, str(error)
    except (KeyError, IndexError, TypeError, ValueError, ZeroDivisionError) as error:
        value, note = None, f"could not measure: {error.__class__.__name__}: {error}"
    if isinstance(value, Noted):
        value, note = value.value, value.note
    if value is not None:
        value = float(value)
        if math.isnan(value):
            value, note = None, note or "not a number"
    if value is None:
        return CheckResult(
            check.name, None, check.missing, check.target_text, False, check.hint, note
        )
    passed = OPS[check.op](value, check.target)
    return CheckResult(
        check.name,
        value,
        format_value(value, check.unit, check.digits),
        check.target_text,
        passed,
        "" if passed else check.hint,
        note,
    )


RUN_ROW = "your code ran to the end"


def failed_run(error: str) -> CheckResult:
    """The row shown when the solver's code (or the run) could not finish: the one line
    that says why, file and line included when it was the solver's code.

    >>> failed_run("your code raised SystemExit (p.py line 3, in observe())").shown
    'stopped'
    """
    return CheckResult(RUN_ROW, None, "stopped", "no error", False, error)


def grade(checks: Sequence[Check], evidence: Evidence) -> List[CheckResult]:
    return [evaluate(check, evidence) for check in checks]


def all_passed(results: Sequence[CheckResult]) -> bool:
    return bool(results) and all(result.passed for result in results)


def final_line(challenge: str, results: Sequence[CheckResult]) -> str:
    """The last line of a check.

    >>> ok = CheckResult("a", 1.0, "1", "≤ 2", True, "")
    >>> final_line("12_x", [ok, ok])
    'PASS 12_x: all 2 checks passed'
    >>> final_line("12_x", [ok, CheckResult("b", 3.0, "3", "≤ 2", False, "hint")])
    'FAIL 12_x: 1 of 2 checks failed (b)'
    """
    failed = [result.name for result in results if not result.passed]
    if not results:
        return f"FAIL {challenge}: nothing was measured"
    if not failed:
        return f"PASS {challenge}: all {len(results)} checks passed"
    return f"FAIL {challenge}: {len(failed)} of {len(results)} checks failed ({', '.join(failed)})"


def results_json(
    challenge: str,
    file: str,
    results: Sequence[CheckResult],
    error: Optional[str] = None,
    seed: Optional[int] = None,
    facts: Optional[Dict[str, Any]] = None,
) -> Dict[str, Any]:
    """The ``--json`` object of a check (``error``: the run could not finish; then the
    results hold the row that says why)."""
    return {
        "challenge": challenge,
        "file": file,
        "seed": seed,
        "facts": dict(facts or {}),
        "passed": error is None and all_passed(results),
        "error": error,
        "checks": [result.as_dict() for result in results],
        "summary": final_line(challenge, results)
        if error is None
        else f"FAIL {challenge}: {error}",
    }
