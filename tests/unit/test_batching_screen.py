"""Module 16's dashboard, drawn from snapshots the real cores made in simulated time."""

from __future__ import annotations

import re

import pytest

from lab.core.config import ConsumerConfig, ProducerConfig
from lab.core.modules import get_module
from lab.tools.sim import simulate
from lab.ui.dashboard import DashboardState, render
from tests.screens import ansi

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def module16(batch_size: int, offered: float, at: float = 4.0) -> DashboardState:
    spec = get_module(16)
    consumer = ConsumerConfig(module=16, **{k: v for k, v in spec.consumer.items()})
    consumer.batch_size = batch_size
    producer = ProducerConfig(module=16, messages_per_s=offered)
    result = simulate(consumer, [producer], duration=at, drain=0.0, stop_times=[1e9])
    state = DashboardState(16, spec.title, spec.port)
    snap = result.consumer_core.snapshot(at, rss_mb=40.0, cpu_pct=5.0)
    snap["id"] = "consumer-16000"
    prod = result.producer_cores[0].snapshot(at, rss_mb=30.0, cpu_pct=3.0)
    prod["id"] = prod["name"]
    state.update(snap, at)
    state.update(prod, at)
    return state


def text(state: DashboardState, width: int, height: int) -> str:
    return ANSI.sub("", ansi(render(state, 4.0, width, height), width, height))


@pytest.mark.parametrize("width, height", [(80, 24), (160, 48)])
def test_the_batching_panel_shows_size_cost_rate_and_latency(width, height):
    screen = text(module16(batch_size=10, offered=300.0), width, height)
    lines = screen.rstrip("\n").split("\n")
    assert len(lines) <= height and max(len(line) for line in lines) <= width
    assert "last 10 of up to 10" in screen or "of up to 10" in screen
    assert "28 ms a batch (8 ms + 2 ms each)" in screen or "a batch (8 ms + 2 ms each)" in screen
    assert "of 357/s at this batch size" in screen
    assert "message latency (arrival -> processed)" in screen


def test_one_at_a_time_is_overwhelmed_and_says_so():
    screen = text(module16(batch_size=1, offered=300.0), 80, 24)
    assert "of 100/s at this batch size" in screen
    assert "DROPPING" in screen
