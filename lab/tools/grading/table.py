"""What a challenge is made of: a seeded plan (scenario, checks, drawn facts) and a probe.

A challenge is not one fixed scenario: a constant that happens to suit one speed or one
deadline would pass it. Each run of ``bplab check`` draws a seed (printed, and replayed
with ``--seed N``); :meth:`Challenge.plan` turns it into a :class:`Plan`: the flags of the
two processes, the facts that were drawn (a speed, a target, a spike's time) and the checks
with their targets. The same seed always gives the same plan, in this process and in the
probe's child.

Every plan also ends with the rows about the solver's code itself (:func:`code_checks`):
how much of its process's time it took, and its slowest call, measured by the plugin guard
(``lab.processes.plugins.Guard``) in the process that ran it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

from lab.tools.grading.core import Check, Evidence, MissingData, Noted


@dataclass(frozen=True)
class Scenario:
    """How the processes of one plan are run."""

    module: int
    plugin_role: str  # "consumer" or "producer": who loads the solver's file
    plugin_flag: str  # "--policy-file", "--retry-file" or "--limiter-file"
    plugin_kind: str  # a key of lab.processes.plugins.KINDS
    consumer_flags: Tuple[str, ...]
    producer_flags: Tuple[str, ...]
    duration_s: float  # the producer's --duration
    memory_pressure: Optional[Tuple[float, float, float]] = None  # (at_s, target_mb, for_s)

    def commands(self, plugin_path: str = "FILE.py") -> List[str]:
        """The two command lines, as a person would type them (for the README and --list)."""
        lines = []
        for role, flags in (("consumer", self.consumer_flags), ("producer", self.producer_flags)):
            parts = ["bplab", role, "--module", str(self.module), *flags]
            if role == "producer":
                parts += ["--duration", f"{self.duration_s:g}"]
            if role == self.plugin_role:
                parts += [self.plugin_flag, plugin_path]
            lines.append(" ".join(parts))
        return lines


@dataclass(frozen=True)
class Plan:
    """One seeded draw of a challenge."""

    seed: int
    scenario: Scenario
    checks: Tuple[Check, ...]
    facts: Dict[str, Any] = field(default_factory=dict)  # what was drawn, JSON-able

    def facts_text(self) -> str:
        """The drawn numbers, for the line a person reads before the run."""
        return ", ".join(
            f"{key.replace('_', ' ')} {value:g}"
            for key, value in self.facts.items()
            if isinstance(value, (int, float)) and not key.startswith("probe")
        )


@dataclass(frozen=True)
class Challenge:
    name: str  # the folder under exercises/, e.g. "12_adaptive_backpressure"
    title: str
    goal: str  # one line for --list
    plugin_role: str
    plugin_flag: str
    plugin_kind: str
    draw: Callable[[int], Plan]
    # The probe runs in a child process (lab.tools.grading.probe): it gets a function that
    # builds a fresh guarded instance from constructor keywords, and the plan.
    probe: Optional[Callable[[Callable[[Dict[str, Any]], Any], Plan], Dict[str, Any]]] = None

    @property
    def number(self) -> int:
        return int(self.name.split("_", 1)[0])

    def plan(self, seed: int) -> Plan:
        return self.draw(seed)


def flags(**values: Any) -> Tuple[str, ...]:
    """Command-line flags from keywords: ``flags(process_rate=100)`` -> ``--process-rate 100``.

    >>> flags(buffer=50, spike_factor=2.5, profile="spike")
    ('--buffer', '50', '--spike-factor', '2.5', '--profile', 'spike')
    """
    out: List[str] = []
    for key, value in values.items():
        out += [f"--{key.replace('_', '-')}", value if isinstance(value, str) else f"{value:g}"]
    return tuple(out)


def rng_for(seed: int, name: str) -> random.Random:
    """The plan's random source: the seed and the challenge's name, so 12 and 13 drawn with
    one seed do not move together."""
    return random.Random(f"{name}:{seed}")


def probe_value(evidence: Evidence, key: str) -> Optional[float]:
    """One answer of the probe (None: the solver's code gave none, e.g. "gave up")."""
    probe = evidence.probe
    if "error" in probe:
        raise MissingData(f"the probe failed: {probe['error']}")
    if key not in probe:
        raise MissingData("the probe did not run")
    value = probe[key]
    return None if value is None else float(value)


# -- the rows about the solver's code itself --------------------------------------------------
MAX_CODE_SHARE = 5.0  # % of its process's time: a policy is a quick decision, not a worker
MAX_CALL_MS = 100.0  # the slowest single call; a blocked loop stops everything behind it
NOT_TIMED = ("loading the file",)  # an import may be slow once; calls may not


def _calls(evidence: Evidence) -> Dict[str, Dict[str, float]]:
    report = evidence.plugin
    if not report:
        raise MissingData("the process running your code wrote no timing report")
    calls = {
        name: row
        for name, row in (report.get("calls") or {}).items()
        if name not in NOT_TIMED and not name.endswith("(...)")
    }
    if not calls:
        raise MissingData("your code was never called")
    return calls


def code_share(evidence: Evidence) -> Noted:
    """Per cent of the process's wall time spent inside the solver's methods."""
    calls = _calls(evidence)
    wall = float(evidence.plugin.get("wall_s") or 0.0)
    if wall <= 0:
        raise MissingData("the timing report has no wall time")
    total = sum(float(row["total_s"]) for row in calls.values())
    busiest = max(calls, key=lambda name: calls[name]["total_s"])
    count = sum(int(row["calls"]) for row in calls.values())
    return Noted(100.0 * total / wall, f"{count:,} calls; most time in {busiest}")


def slowest_call(evidence: Evidence) -> Noted:
    calls = _calls(evidence)
    name = max(calls, key=lambda key: calls[key]["slowest_s"])
    return Noted(1000.0 * float(calls[name]["slowest_s"]), f"in {name}")


def code_checks(loop: str) -> Tuple[Check, ...]:
    """The two rows every challenge ends with; ``loop`` names the loop the code runs in."""
    return (
        Check(
            "time spent inside your code",
            code_share,
            "<=",
            MAX_CODE_SHARE,
            f"your methods run inside the {loop}'s loop and nothing else moves meanwhile: "
            "answer from what you already know, never wait (no sleep, no polling)",
            unit="%",
            digits=1,
        ),
        Check(
            "slowest call into your code",
            slowest_call,
            "<=",
            MAX_CALL_MS,
            f"one call blocked the {loop} this long: compute an answer and return it; "
            "to wait, return a time (time_until, delay) and let the loop sleep",
            unit="ms",
            digits=1,
        ),
    )
