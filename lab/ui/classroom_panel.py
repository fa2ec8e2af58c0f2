"""The instructor's producers table in classroom mode: the room on the projector.

One header line counts the room (producers joined, left, and connection attempts refused,
by reason), then the top producers by rate: name, rate, share of the consumer's intake,
credit (block mode), drops or sheds, and latency p99. Rates, credit and counts come from
the consumer's own snapshot (one message a tick, however big the room); latency comes from
each producer's relayed snapshot, joined by name. The table keeps as many rows as the
terminal has room for and says how many it left out, so forty producers stay readable.

Pure: ``lines`` is a function of the dashboard state, the consumer's snapshot and the size.
"""

from __future__ import annotations

from typing import Any, Dict, List

from rich.text import Text

from lab.ui.textgrid import grid, line
from lab.ui.widgets import fmt_count, fmt_rate, fmt_seconds

COLUMNS = ("producer", "rate", "share", "credit", "dropped/shed", "p99")
# Rows the rest of the dashboard takes at the heights a projector has (measured at 160x48).
OTHER_ROWS = 30
MIN_ROWS, MAX_ROWS = 3, 25
REFUSAL_WORDS = (
    ("wrong_key", "wrong key"),
    ("unauthorised", "not allowed"),
    ("plaintext", "no CURVE"),
    ("other", "other"),
)


def is_classroom(snap: Dict[str, Any]) -> bool:
    return snap.get("security") is not None


def room_counts(snap: Dict[str, Any]) -> Dict[str, int]:
    rows = snap.get("producers", [])
    refused: Dict[str, int] = {}
    for by_reason in snap.get("security", {}).get("refused", {}).values():
        for reason, n in by_reason.items():
            refused[reason] = refused.get(reason, 0) + n
    return {
        "joined": sum(1 for r in rows if r.get("active")),
        "left": sum(1 for r in rows if not r.get("active")),
        "refused": sum(refused.values()),
        **{f"refused_{reason}": n for reason, n in refused.items()},
    }


def lines(state: Any, snap: Dict[str, Any], now: float, height: int) -> List[Text]:
    """The header line and the table, at most ``height - OTHER_ROWS`` producer rows."""
    counts = room_counts(snap)
    reasons = ", ".join(
        f"{word} {counts[f'refused_{key}']:,}"
        for key, word in REFUSAL_WORDS
        if counts.get(f"refused_{key}")
    )
    header = line(
        ("ROOM      ", "bold"),
        f"{counts['joined']:,} joined · {counts['left']:,} left · ",
        (f"{counts['refused']:,} refused", "red" if counts["refused"] else ""),
        f" ({reasons})" if reasons else "",
    )
    rows = sorted(
        (r for r in snap.get("producers", []) if r.get("active")),
        key=lambda r: (-(r.get("in_per_s") or 0.0), str(r.get("name"))),
    )
    if not rows:
        return [header]
    room = max(MIN_ROWS, min(MAX_ROWS, height - OTHER_ROWS))
    total_rate = sum(r.get("in_per_s") or 0.0 for r in rows)
    latency = {str(p.get("name")): p.get("latency", {}) for p in state.live_producers(now)}
    table = grid(
        [_cells(r, total_rate, latency) for r in rows[:room]],
        "lrrrrr",
        header=COLUMNS,
    )
    more = len(rows) - room
    tail = (
        [Text(f"… and {more:,} more (top {room} by rate shown)", style="dim")] if more > 0 else []
    )
    return [header] + table + tail


def _cells(row: Dict[str, Any], total_rate: float, latency: Dict[str, Dict[str, Any]]):
    rate = row.get("in_per_s") or 0.0
    share = f"{100.0 * rate / total_rate:.1f}%" if total_rate > 0 else "-"
    credit = row.get("credit")
    lost = (row.get("dropped") or 0) + (row.get("shed") or 0) + (row.get("sampled_out") or 0)
    p99 = latency.get(str(row.get("name")), {}).get("p99_s")
    return [
        str(row.get("name"))[:20],
        fmt_rate(rate),
        share,
        "-" if credit is None else fmt_count(credit),
        fmt_count(lost),
        fmt_seconds(p99),
    ]


# -- the attendee's own view (bplab join) ------------------------------------------------------
def attendee_share(snap: Dict[str, Any], window: Any) -> Any:
    """Block mode: the part of the consumer's window this producer holds (messages waiting
    in the consumer's buffer, on the wire, and credit not yet used), as a fraction."""
    credit = snap.get("credit")
    if credit is None or not window:
        return None
    totals = snap.get("totals", {})
    held = totals.get("accepted", 0) - totals.get("processed", 0) + totals.get("in_flight", 0)
    return (max(0, held) + credit) / window


def attendee_lines(snap: Dict[str, Any], window: Any) -> List[Text]:
    """What an attendee sees of their own producer: latency, verdicts, credit, share."""
    totals = snap.get("totals", {})
    latency = snap.get("latency", {})
    rates = snap.get("rates", {})
    share = attendee_share(snap, window)
    up = snap.get("consumer_up")
    status = (
        ("connected", "green")
        if up
        else ("no answer from the instructor's consumer (yet): retrying", "red")
    )
    rows = [
        ["sent", fmt_rate(rates.get("produced")), f"target {fmt_rate(snap.get('target_mps'))}"],
        [
            "latency",
            f"p50 {fmt_seconds(latency.get('p50_s'))}",
            f"p99 {fmt_seconds(latency.get('p99_s'))}",
        ],
        ["accepted", fmt_count(totals.get("accepted")), fmt_rate(rates.get("accepted"))],
        ["dropped", fmt_count(totals.get("dropped")), fmt_rate(rates.get("dropped"))],
        ["shed", fmt_count(totals.get("shed")), fmt_rate(rates.get("shed"))],
        ["sampled out", fmt_count(totals.get("sampled_out")), fmt_rate(rates.get("sampled_out"))],
        [
            "credit",
            "-" if snap.get("credit") is None else fmt_count(snap["credit"]),
            "-" if share is None else f"share {100 * share:.0f}% of {fmt_count(window)}",
        ],
    ]
    mode = str(snap.get("consumer_mode") or "?").upper()
    title = line((f"{snap.get('name', '?')}", "bold"), f" · consumer mode {mode} · ", status)
    return [title] + grid(rows, "lrr")
