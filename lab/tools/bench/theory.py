"""The arithmetic of ``bench`` and ``validate``: queueing formulas, rate fits, errors, tables.

Pure functions only (no sockets, no clocks), so the unit tests can check every one exactly.

Queueing notation: ``lam`` (λ) is the arrival rate, ``mu`` (μ) the service rate, ``rho`` (ρ)
their ratio λ/μ, and ``k`` (K) the most messages the consumer holds, the one in service
included (the lab's ``--buffer``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, List, Optional, Sequence, Tuple

Point = Tuple[float, float]  # (time in seconds, a cumulative count)


# -- queueing theory -----------------------------------------------------------------------------
def mm1k_blocking(rho: float, k: int) -> float:
    """M/M/1/K: the probability that an arrival finds K in the system and is refused.

    ``(1 - ρ) ρ^K / (1 - ρ^(K+1))``, and ``1 / (K + 1)`` at ρ = 1.

    >>> round(mm1k_blocking(0.5, 5), 5)
    0.01587
    """
    if k < 1 or rho < 0:
        raise ValueError("need K >= 1 and rho >= 0")
    if math.isclose(rho, 1.0):
        return 1.0 / (k + 1)
    return (1.0 - rho) * rho**k / (1.0 - rho ** (k + 1))


def mm1k_mean_in_system(rho: float, k: int) -> float:
    """M/M/1/K: the mean number in the system, L (waiting plus in service).

    ``ρ/(1-ρ) - (K+1) ρ^(K+1) / (1 - ρ^(K+1))``, and ``K/2`` at ρ = 1.
    """
    if k < 1 or rho < 0:
        raise ValueError("need K >= 1 and rho >= 0")
    if math.isclose(rho, 1.0):
        return k / 2.0
    return rho / (1.0 - rho) - (k + 1) * rho ** (k + 1) / (1.0 - rho ** (k + 1))


def overload_drop_fraction(lam: float, mu: float) -> float:
    """Deterministic arrivals at λ > μ into a bounded buffer: in steady state the worker
    takes μ of every λ, so the fraction dropped tends to ``1 - μ/λ`` (0 when λ <= μ)."""
    if lam <= 0 or mu <= 0:
        raise ValueError("rates must be positive")
    return max(0.0, 1.0 - mu / lam)


def littles_law_error_pct(mean_in_system: float, rate: float, mean_time_s: float) -> float:
    """How far L is from λW, in percent of λW (signed: positive when L is larger)."""
    return pct_error(mean_in_system, rate * mean_time_s)


# -- errors and ratios ---------------------------------------------------------------------------
def pct_error(measured: float, expected: float) -> float:
    """Signed error in percent of ``expected``: 101 vs 100 is +1.0."""
    if expected == 0:
        raise ValueError("the expected value is 0: use a difference, not a percentage")
    return (measured - expected) / expected * 100.0


def pp_difference(measured: float, expected: float) -> float:
    """Signed difference of two fractions, in percentage points: 0.52 vs 0.50 is +2.0."""
    return (measured - expected) * 100.0


def ratio_pct(part: float, whole: float) -> float:
    """``part`` as a percentage of ``whole`` (0 if there is no whole)."""
    return part / whole * 100.0 if whole > 0 else 0.0


def cost_pct(baseline: float, loaded: float) -> float:
    """How much slower ``loaded`` is than ``baseline``, in percent (negative: faster)."""
    return (baseline - loaded) / baseline * 100.0 if baseline > 0 else 0.0


def interleaved_costs(without: Sequence[float], loaded: Sequence[float]) -> List[float]:
    """The cost of each loaded window when windows alternate ``A0 B1 A1 B2 A2 ... Bn An``
    (A: ``without``, n + 1 of them; B: ``loaded``, n): each B against the mean of the A
    windows on either side, in percent (negative: the B window was faster). A drift that
    is linear over the three windows cancels out.

    >>> [round(c, 3) for c in interleaved_costs([100.0, 102.0, 98.0], [99.0, 99.0])]
    [1.98, 1.0]
    """
    if len(without) != len(loaded) + 1:
        raise ValueError("need one more window without than with: A B A ... B A")
    return [cost_pct((without[i] + without[i + 1]) / 2.0, loaded[i]) for i in range(len(loaded))]


def neighbour_costs(without: Sequence[float]) -> List[float]:
    """The same statistic for each inner A window against the A windows next to it: what
    :func:`interleaved_costs` reads when nothing at all was added (the noise floor).

    >>> [round(c, 3) for c in neighbour_costs([100.0, 102.0, 98.0, 100.0])]
    [-3.03, 2.97]
    """
    return [
        cost_pct((without[i - 1] + without[i + 1]) / 2.0, without[i])
        for i in range(1, len(without) - 1)
    ]


def median_interval(
    values: Sequence[float], confidence: float = 0.95
) -> Optional[Tuple[float, float]]:
    """A distribution-free interval for the median of the population ``values`` came from:
    the k-th smallest to the k-th largest value, with the largest k for which the chance
    that the median lies outside is at most ``1 - confidence`` (the sign test). ``None``
    when there are too few values for that confidence (fewer than 6 at 95%).

    It assumes nothing about the shape of the noise, so one disturbed window cannot move
    it far, which a mean and its standard error would not survive.

    >>> median_interval([5, 1, 4, 2, 3, 9, 8, 7, 6, 10, 12, 11])
    (3, 10)
    >>> median_interval([1, 2, 3]) is None
    True
    """
    ordered = sorted(values)
    n = len(ordered)
    outside = (1.0 - confidence) / 2.0
    below, k = 0.0, 0
    while k < n:
        below += math.comb(n, k) / 2.0**n  # P(fewer than k + 1 values under the median)
        if below > outside:
            break
        k += 1
    if k == 0:
        return None
    return ordered[k - 1], ordered[n - k]


# -- rates from cumulative counts ------------------------------------------------------------------
def in_window(points: Iterable[Point], start: float, end: float) -> List[Point]:
    """The points with ``start <= t <= end``."""
    return [(t, v) for t, v in points if start <= t <= end]


def fit_rate(points: Sequence[Point]) -> float:
    """Events per second: the least-squares slope of a cumulative count against time.

    A count sampled ten times a second is a staircase; the two-point rate of a short window
    is off by up to one event at each end, the slope through every sample is not.

    >>> round(fit_rate([(0.0, 0), (0.1, 10), (0.2, 20), (0.3, 30)]), 9)
    100.0
    """
    n = len(points)
    if n < 2:
        raise ValueError("a rate needs at least two samples")
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    var_t = sum((t - mean_t) ** 2 for t, _ in points)
    if var_t == 0:
        raise ValueError("the samples all have the same time")
    cov = sum((t - mean_t) * (v - mean_v) for t, v in points)
    return cov / var_t


def delta_ratio(first: Tuple[float, float], last: Tuple[float, float]) -> Optional[float]:
    """``Δa / Δb`` between two samples of a pair of counters, e.g. (dropped, received)."""
    da, db = last[0] - first[0], last[1] - first[1]
    return da / db if db > 0 else None


# -- theory checks --------------------------------------------------------------------------------
@dataclass
class Check:
    """One measured quantity against its theoretical value.

    ``unit`` says how the two are compared: ``"pp"`` for fractions (the difference in
    percentage points) or ``"%"`` for anything else (the error relative to theory).

    >>> check = Check("drop", "λ=2μ", "drop fraction", 0.512, 0.5, 2.0, "pp")
    >>> round(check.difference, 6), check.ok
    (1.2, True)
    """

    experiment: str
    parameters: str
    quantity: str
    measured: float
    theory: float
    tolerance: float
    unit: str = "pp"

    @property
    def difference(self) -> float:
        if self.unit == "pp":
            return pp_difference(self.measured, self.theory)
        return pct_error(self.measured, self.theory)

    @property
    def ok(self) -> bool:
        return abs(self.difference) <= self.tolerance

    def as_dict(self) -> dict:
        return {
            "experiment": self.experiment,
            "parameters": self.parameters,
            "quantity": self.quantity,
            "measured": self.measured,
            "theory": self.theory,
            "difference": self.difference,
            "unit": self.unit,
            "tolerance": self.tolerance,
            "ok": self.ok,
        }


def checks_table(checks: Sequence[Check]) -> str:
    """Measured and theory side by side, one row per check."""
    rows = []
    for c in checks:
        digits = 4 if c.unit == "pp" else 3
        rows.append(
            [
                c.experiment,
                c.parameters,
                c.quantity,
                fmt(c.measured, digits),
                fmt(c.theory, digits),
                f"{c.difference:+.2f} {c.unit}",
                f"±{c.tolerance:g} {c.unit}",
                "yes" if c.ok else "NO",
            ]
        )
    headers = [
        "experiment",
        "parameters",
        "quantity",
        "measured",
        "theory",
        "difference",
        "tolerance",
        "ok",
    ]
    return markdown_table(headers, rows)


# -- tables ---------------------------------------------------------------------------------------
def fmt(value: Any, digits: int = 1) -> str:
    """A cell: thousands separators, ``digits`` decimals for floats, ``-`` for nothing."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return "-"
        return f"{value:,.{digits}f}"
    return str(value)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table with padded columns: readable in a terminal, pasteable into docs.

    Cells are used as given (format them first); numbers' columns are right-aligned.

    >>> print(markdown_table(["name", "n"], [["a", "1"], ["bb", "22"]]))
    | name |  n |
    |------|---:|
    | a    |  1 |
    | bb   | 22 |
    """
    cells = [[str(c) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        if len(row) != len(headers):
            raise ValueError(f"row {row} has {len(row)} cells, expected {len(headers)}")
        widths = [max(w, len(c)) for w, c in zip(widths, row)]
    numeric = [
        bool(cells) and all(_looks_numeric(row[i]) for row in cells) for i in range(len(headers))
    ]

    def line(row: Sequence[str]) -> str:
        parts = [c.rjust(w) if num else c.ljust(w) for c, w, num in zip(row, widths, numeric)]
        return "| " + " | ".join(parts) + " |"

    rule = (
        "|"
        + "|".join(
            ("-" * (w + 1) + ":") if num else "-" * (w + 2) for w, num in zip(widths, numeric)
        )
        + "|"
    )
    return "\n".join([line(list(headers)), rule] + [line(row) for row in cells])


def _looks_numeric(text: str) -> bool:
    stripped = text.replace(",", "").replace("%", "").replace("+", "").strip()
    if stripped in ("", "-"):
        return True
    try:
        float(stripped.split()[0])
    except ValueError:
        return False
    return True
