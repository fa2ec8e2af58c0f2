"""The instructor's producers table: forty producers from the real cores, at 160x48."""

from __future__ import annotations

import functools
from typing import Tuple

from rich.console import Console

from lab.core.config import ConsumerConfig, ProducerConfig
from lab.core.modules import get_module
from lab.tools.sim import simulate
from lab.ui import classroom_panel
from lab.ui.dashboard import DashboardState, render

REFUSED = {
    "data": {"unauthorised": 0, "wrong_key": 3, "plaintext": 1, "other": 0},
    "telemetry": {"unauthorised": 0, "wrong_key": 0, "plaintext": 0, "other": 0},
    "control": {"unauthorised": 2, "wrong_key": 0, "plaintext": 0, "other": 0},
}


@functools.cache
def room(producers: int = 40) -> Tuple[DashboardState, float]:
    """Forty producers at 2..80 msg/s into one block-mode consumer, 6 s in (simulated)."""
    consumer = ConsumerConfig(module=12, mode="block", capacity=80, process_rate=200.0)
    configs = [ProducerConfig(module=12, rate=2.0 * (i + 1)) for i in range(40)]
    state = DashboardState(12, get_module(12).title, 12000)
    at = 6.0
    result = simulate(consumer, configs, duration=at, drain=0.0, stop_times=[1e9] * 40)
    snap = result.consumer_core.snapshot(at, rss_mb=40.0, cpu_pct=5.0)
    snap.update(id="consumer-12000", security={"refused": REFUSED, "refused_total": 6})
    state.update(snap, at)
    for core in result.producer_cores:
        prod = core.snapshot(at, rss_mb=30.0, cpu_pct=3.0)
        prod["id"] = prod["name"]
        state.update(prod, at)
    return state, at


def screen(state, now, width, height) -> str:
    console = Console(width=width, height=height, record=True, force_terminal=False)
    console.print(render(state, now, width, height))
    return console.export_text()


def test_room_counts_come_from_the_consumer_snapshot():
    state, _ = room()
    counts = classroom_panel.room_counts(state.consumer)
    assert (counts["joined"], counts["left"], counts["refused"]) == (40, 0, 6)
    assert counts["refused_wrong_key"] == 3 and counts["refused_unauthorised"] == 2


def test_forty_producers_fit_a_projector_at_160x48_with_the_top_by_rate():
    state, now = room()
    text = screen(state, now, 160, 48)
    lines = text.splitlines()
    assert len(lines) <= 48
    assert all(len(line) <= 160 for line in lines)
    assert "40 joined · 0 left · 6 refused (wrong key 3, not allowed 2, no CURVE 1)" in text
    shown = max(classroom_panel.MIN_ROWS, min(classroom_panel.MAX_ROWS, 48 - 30))
    assert f"… and {40 - shown} more (top {shown} by rate shown)" in text
    # sorted by rate: the fastest producer's row comes before the slowest shown
    rows = [line for line in lines if line.startswith("│ sim-")]
    assert len(rows) == shown
    names = [row.split()[1] for row in rows]
    rates = {r["name"]: r["in_per_s"] for r in state.consumer["producers"]}
    assert [rates[n] for n in names] == sorted((rates[n] for n in names), reverse=True)


def test_shares_add_up_to_the_whole_intake():
    state, now = room()
    rows = [r for r in state.consumer["producers"] if r["active"]]
    total = sum(r["in_per_s"] for r in rows)
    latency = {p["name"]: p["latency"] for p in state.live_producers(now)}
    shares = [float(classroom_panel._cells(r, total, latency)[2].rstrip("%")) for r in rows]
    assert abs(sum(shares) - 100.0) < 0.1 * len(rows)


def test_a_plain_consumer_keeps_the_ordinary_table():
    state, now = room()
    plain = DashboardState(12, "x", 12000)
    snap = dict(state.consumer)
    snap.pop("security")
    plain.update(snap, now)
    for prod in state.live_producers(now):
        plain.update(prod, now)
    assert "joined ·" not in screen(plain, now, 160, 48)


def test_the_attendee_sees_latency_verdicts_credit_and_share():
    snap = {
        "name": "ada",
        "consumer_up": True,
        "consumer_mode": "block",
        "credit": 3,
        "target_mps": 20.0,
        "rates": {"produced": 20.0, "accepted": 20.0},
        "latency": {"p50_s": 0.002, "p99_s": 0.5},
        "totals": {"accepted": 100, "processed": 96, "in_flight": 1, "dropped": 0, "shed": 0},
    }
    # holds 4 in the buffer, 1 on the wire and 3 of credit: 8 of a window of 80
    assert classroom_panel.attendee_share(snap, 80) == 0.1
    text = "\n".join(t.plain for t in classroom_panel.attendee_lines(snap, 80))
    assert "ada · consumer mode BLOCK · connected" in text
    assert "p99 500 ms" in text and "share 10% of 80" in text
    snap["credit"] = None  # not block mode: no credit, no share
    assert classroom_panel.attendee_share(snap, 80) is None
