"""Panel 20's latency row, rendered from a stream consumer's snapshot (no broker needed)."""

from __future__ import annotations

import re

from lab.core import telemetry
from lab.ui.dashboard import DashboardState
from lab.ui.panels import broker_panel
from tests.screens import ansi


def _panel(figures: dict) -> str:
    state = DashboardState(20, "test", 0)
    snap = {"v": 1, "role": "consumer", "id": "c", "session": "s", "module": 20, "port": 0,
            "mode": "unbounded", "t": 0.0, "uptime_s": 1.0, "broker": figures}  # fmt: skip
    state.update(telemetry.complete(snap), 10.0)
    return re.sub(r"\x1b\[[0-9;]*m", "", ansi(broker_panel(state, 10.0), 80, 24))


def test_the_latency_row_shows_the_last_seconds_p50_and_p99():
    text = _panel({"latency_p50_ms": 2531.3, "latency_p99_ms": 4964.4, "used_memory": 1})
    assert "p50 2,531 ms · p99 4,964 ms · add -> processed, last 5 s" in text, text


def test_the_latency_row_says_so_when_nothing_was_processed_lately():
    text = _panel({"latency_p50_ms": None, "latency_p99_ms": None, "used_memory": 1})
    assert "none processed in the last 5 s" in text, text
