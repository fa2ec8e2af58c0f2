"""The dashboards of Modules 13-15, rendered from snapshots the real cores produced.

Each scenario runs ConsumerCore and ProducerCore together in simulated time (``lab/tools/sim.py``)
to two moments one second apart; the two snapshots feed a DashboardState the way the
visualizer does, so the panels read exactly the schema the cores publish, and their
per-second rates come from a real pair of snapshots.
"""

from __future__ import annotations

import copy
import functools
import io
import re
from typing import Any, Dict, List, Tuple

import pytest
from rich.console import Console

from lab.core import telemetry
from lab.core.config import ConsumerConfig, ProducerConfig
from lab.core.modules import get_module
from lab.tools.sim import simulate
from lab.ui.dashboard import MODULE_PANELS, DashboardState, render
from lab.ui.keys import legend
from lab.ui.textgrid import Framed
from lab.ui.widgets import fmt_rate
from tests.screens import ansi, as_panel

Snapshots = Tuple[Dict[str, Any], Dict[str, Any]]


def snapshots_at(consumer: ConsumerConfig, producer: ProducerConfig, at: float) -> Snapshots:
    """The consumer's and the producer's snapshot at ``at`` s, as their shells publish them."""
    result = simulate(consumer, [producer], duration=at, drain=0.0, stop_times=[1e9], latency=0.001)
    snap = result.consumer_core.snapshot(at, rss_mb=40.0, cpu_pct=5.0)
    snap["id"] = f"consumer-{consumer.module}000"
    prod = result.producer_cores[0].snapshot(at, rss_mb=30.0, cpu_pct=3.0)
    prod["id"] = prod["name"]
    return telemetry.complete(snap), telemetry.complete(prod)


def dashboard(module: int, runs: List[Tuple[float, Snapshots]]) -> DashboardState:
    spec = get_module(module)
    state = DashboardState(module, spec.title, spec.port)
    for at, (snap, prod) in runs:
        state.update(snap, at)
        state.update(prod, at)
        render(state, at)  # the panels see every redraw, as in the visualizer
    return state


@functools.cache
def scenario(module: int, name: str) -> DashboardState:
    """A dashboard one second after an earlier snapshot, in the middle of the lesson."""
    if module == 13:
        consumer = ConsumerConfig(module=13, mode=name, capacity=50, process_rate=100.0)
        producer = ProducerConfig(
            module=13,
            messages_per_s=60.0,
            profile="spike",
            spike_at=1.0,
            spike_duration=5.0,
            spike_factor=10.0,
            priority_mix=(0.1, 0.6, 0.3),
        )
        times = (3.0, 4.0)
    elif module == 14:
        consumer = ConsumerConfig(
            module=14, mode="admit", capacity=50, process_rate=100.0, admit_rate=80, admit_burst=20
        )
        producer = ProducerConfig(
            module=14,
            messages_per_s=60.0,
            profile="spike",
            spike_at=1.0,
            spike_duration=3.0,
            spike_factor=4.0,
            retry="backoff",
            limiter=name,
            limiter_rate=75.0,
            limiter_burst=15,
        )
        times = (2.0, 3.0)
    else:
        retry, breaker = name.split("+") if "+" in name else (name, "")
        consumer = ConsumerConfig(
            module=15,
            mode="shed",
            capacity=100,
            process_rate=100.0,
            retry_after_ms=100,
            reject_cost=0.4,
        )
        producer = ProducerConfig(
            module=15,
            messages_per_s=50.0,
            profile="spike",
            spike_at=1.0,
            spike_duration=2.0,
            spike_factor=4.0,
            retry=retry,
            breaker=breaker == "breaker",
            max_attempts=4,
            timeout_s=1.0,
            deadline_s=3.0,
            backoff_base_s=0.5,
            backoff_cap_s=10.0,
        )
        times = (2.0, 4.0, 5.0)  # during the spike (1-3 s), then a second apart after it
    return dashboard(module, [(at, snapshots_at(consumer, producer, at)) for at in times])


def screen(state: DashboardState, now: float, width: int = 80, height: int = 24) -> str:
    console = Console(width=width, height=height, record=True, force_terminal=False)
    console.print(render(state, now, width, height))
    return console.export_text()


def test_the_three_modules_have_panels():
    assert {13, 14, 15} <= set(MODULE_PANELS)


# -- Module 13 -------------------------------------------------------------------------------
def test_flash_sale_in_drop_mode_loses_checkouts():
    text = screen(scenario(13, "drop"), 4.0)
    for label in ("0 checkout", "1 browse", "2 optional", "in/s", "queue p99", "verdict p99"):
        assert label in text
    assert "CHECKOUTS LOST" in text
    critical = scenario(13, "drop").consumer["classes"][0]
    if critical["received_per_s"] is None:  # a consumer core that does not send them yet
        assert re.search(r"0 checkout\s+-\s+-\s+-\s+\d", text)
    else:
        shown = rf"0 checkout\s+{fmt_rate(critical['received_per_s'])}"
        assert re.search(rf"{shown}\s+{fmt_rate(critical['processed_per_s'])}", text)


def test_per_class_rates_are_the_ones_the_core_sends():
    state = copy.deepcopy(scenario(13, "drop"))
    snap = copy.deepcopy(state.consumer)
    for row, rates in zip(snap["classes"], ((12.0, 7.5, 4.5), (30.0, 0.0, 30.0), (250.0, 0, 9))):
        row.update(zip(("received_per_s", "processed_per_s", "lost_per_s"), rates))
    state.update(snap, 4.0)
    text = screen(state, 4.0)
    assert re.search(r"0 checkout\s+12\.0/s\s+7\.5/s\s+4\.5/s\s", text)
    assert re.search(r"1 browse\s+30\.0/s\s+0\.0/s\s+30\.0/s\s+[\d,]+\s+n/a\s", text)
    assert re.search(r"2 optional\s+250/s\s+0\.0/s\s+9\.0/s\s", text)


def test_priority_shedding_keeps_every_checkout():
    state = scenario(13, "priority-shed")
    text = screen(state, 4.0)
    assert "checkouts safe: 0 lost" in text
    critical = next(row for row in state.consumer["classes"] if row["class"] == 0)
    optional = next(row for row in state.consumer["classes"] if row["class"] == 2)
    assert critical["dropped"] + critical["shed"] == 0 and optional["shed"] > 0


def test_degrade_mode_says_that_optional_features_are_off():
    text = screen(scenario(13, "degrade"), 4.0)
    assert "DEGRADED: optional features off" in text


# -- Module 14 -------------------------------------------------------------------------------
def test_rate_limiting_panel_shows_both_buckets_and_the_load():
    text = screen(scenario(14, "token-bucket"), 3.0)
    assert "limiter" in text and "token-bucket" in text and "/15 tokens +75.0/s" in text
    assert "admission" in text and "/20 tokens +80.0/s" in text and "limited" in text
    assert "offered" in text and "of 100/s capacity" in text
    assert "admitted" in text and "refused" in text


def test_rate_limiting_panel_without_a_producer_limiter():
    text = screen(scenario(14, "none"), 3.0)
    assert "none: the producer sends as it likes" in text
    state = scenario(14, "none")
    assert state.consumer["policy_state"]["limited"] > 0  # the spike met the 429s


# -- Module 15 -------------------------------------------------------------------------------
def test_retry_storm_panel_during_a_storm():
    text = screen(scenario(15, "immediate"), 5.0)
    assert "immediate" in text and "amplification" in text
    assert "none (--breaker adds one)" in text
    assert "timed out" in text and "late completions" in text and "(wasted work)" in text
    assert ("p99" in text or "none completed lately" in text) and "s after the spike" in text


def test_retry_storm_panel_shows_the_breaker_state_in_words():
    state = copy.deepcopy(scenario(15, "backoff+breaker"))
    text = screen(state, 5.0)
    assert "backoff" in text
    producer = next(iter(state.producers.values()))
    assert producer["breaker"] in ("closed", "open", "half-open")
    assert producer["breaker"].upper() in text
    for phase in ("open", "half-open", "closed"):
        shown = dict(producer, breaker=phase)
        state.update(shown, 5.0)
        assert phase.upper() in screen(state, 5.0)


def test_recovery_is_reported_with_its_time():
    state = copy.deepcopy(scenario(15, "backoff+breaker"))
    producer = next(iter(state.producers.values()))
    recovered = dict(producer, recovery={"state": "recovered", "recovery_s": 4.2})
    state.update(recovered, 5.0)
    assert "recovered 4.2 s after the spike" in screen(state, 5.0)


# -- every module ----------------------------------------------------------------------------
CASES = [(13, "priority-shed", 4.0), (14, "token-bucket", 3.0), (15, "immediate", 5.0)]


@pytest.mark.parametrize("module, name, now", CASES)
def test_the_whole_dashboard_fits_80_by_24(module, name, now):
    state = copy.deepcopy(scenario(module, name))
    state.key_legend = legend(get_module(module).live_modes)  # as in the demo
    lines = screen(state, now).splitlines()
    assert len(lines) <= 24
    assert all(len(line) <= 80 for line in lines)
    assert f"Module {module}" in lines[0] and f"port {module}000" in lines[0]
    assert lines[-1].startswith("╰")  # nothing cropped: the insight line is drawn


@pytest.mark.parametrize("module, name, now", CASES)
def test_a_big_terminal_shows_the_panel_and_the_events(module, name, now):
    small, big = screen(scenario(module, name), now), screen(scenario(module, name), now, 120, 40)
    label = {13: "0 checkout", 14: "admission", 15: "breaker"}[module]
    assert label in small and label in big
    assert "· consumer up" in big and "· consumer up" not in small  # events need the room


@pytest.mark.parametrize("module, name, now", CASES)
def test_no_color_means_no_colour_codes(monkeypatch, module, name, now):
    monkeypatch.setenv("NO_COLOR", "1")
    out = io.StringIO()
    console = Console(file=out, width=80, height=24, force_terminal=True, color_system="truecolor")
    console.print(render(scenario(module, name), now))
    codes = re.findall(r"\x1b\[([0-9;]*)m", out.getvalue())
    assert codes  # bold and reverse stay: the terminal is still styled ...
    colours = [c for c in codes if re.search(r"(^|;)(3[0-9]|4[0-9]|9[0-7]|10[0-7])(;|$)", c)]
    assert colours == []  # ... but without a single colour


def test_a_dashboard_started_after_the_spike_does_not_claim_when_it_ended():
    state = copy.deepcopy(scenario(15, "immediate"))
    producer = next(iter(state.producers.values()))
    late = DashboardState(15, "Retry storms", 15000)
    late.update(state.consumer, 5.0)
    late.update(dict(producer, recovery={"state": "recovering"}), 5.0)
    assert "recovering, 0 s (at least)" in screen(late, 5.0)


@pytest.mark.parametrize("module", [13, 14, 15])
def test_missing_fields_show_dashes_not_errors(module):
    state = DashboardState(module, get_module(module).title, module * 1000)
    consumer = {"role": "consumer", "id": "c", "module": module, "mode": "shed"}
    state.update(telemetry.complete(dict(consumer, uptime_s=1.0)), 1.0)
    state.update(telemetry.complete({"role": "producer", "id": "p", "name": "p"}), 1.0)
    state.update(telemetry.complete(dict(consumer, uptime_s=2.0)), 2.0)
    text = screen(state, 2.0)
    assert f"Module {module}" in text
    old = dict(consumer, uptime_s=3.0, classes=[{"class": 0, "received": 5}])  # fewer fields
    state.update(telemetry.complete(old), 3.0)
    producer = {"role": "producer", "id": "p", "limiter": {}, "recovery": {}}
    state.update(telemetry.complete(producer), 3.0)
    assert f"Module {module}" in screen(state, 3.0)


SCENARIOS = [
    (13, "drop", 4.0),
    (13, "priority-shed", 4.0),
    (13, "degrade", 4.0),
    (14, "none", 3.0),
    (14, "token-bucket", 3.0),
    (15, "immediate", 5.0),
    (15, "backoff+breaker", 5.0),
]


@pytest.mark.parametrize("module, name, now", SCENARIOS)
def test_every_panel_is_framed_exactly_as_rich_panel_would_frame_it(module, name, now):
    for width, height in ((80, 24), (120, 40), (60, 30)):
        framed = render(scenario(module, name), now, width, height)
        assert isinstance(framed, Framed)
        assert ansi(framed, width, height) == ansi(as_panel(framed), width, height)


# -- screens a newcomer can read -------------------------------------------------------------
LEGEND_SIZES = [(80, 24), (160, 48)]


@pytest.mark.parametrize("module, name, now", SCENARIOS)
@pytest.mark.parametrize("width, height", LEGEND_SIZES)
def test_every_screen_fits_with_the_key_legend(module, name, now, width, height):
    state = copy.deepcopy(scenario(module, name))
    state.key_legend = legend(get_module(module).live_modes)  # as in the demo
    lines = screen(state, now, width, height).splitlines()
    assert len(lines) <= height
    assert all(len(text) <= width for text in lines)
    assert lines[-1].startswith("╰")  # the bottom edge is on screen
    assert any("k spike" in text for text in lines)  # a key and its word stay together
    assert "…" not in "\n".join(lines)  # no line was cut


def test_the_degrade_verdict_says_one_switch_in_the_singular():
    state = copy.deepcopy(scenario(13, "degrade"))
    snap = copy.deepcopy(state.consumer)
    snap["policy_state"] = dict(snap["policy_state"], degraded=True, switches=1)
    state.update(snap, 4.0)
    text = screen(state, 4.0)
    assert "(1 switch)" in text and "(1 switches)" not in text


def _advanced(snap, seconds: float, mode: str, received: int, lost: int):
    """The consumer ``seconds`` later in ``mode``: class 0 got ``received`` more, ``lost`` of
    them dropped."""
    later = copy.deepcopy(snap)
    later["mode"], later["uptime_s"] = mode, snap["uptime_s"] + seconds
    critical = later["classes"][0]
    critical["received"] += received
    critical["dropped"] += lost
    return later


def test_after_a_live_switch_the_checkout_verdict_judges_the_new_mode_only():
    state = copy.deepcopy(scenario(13, "drop"))
    before = state.consumer
    lost_before = sum(before["classes"][0][key] for key in ("dropped", "shed", "sampled_out"))
    assert lost_before > 0 and "CHECKOUTS LOST" in screen(state, 4.0)
    switched = _advanced(before, 0.1, "priority-shed", received=0, lost=0)
    state.update(switched, 4.1)
    later = _advanced(switched, 1.0, "priority-shed", received=40, lost=0)
    state.update(later, 5.1)
    text = screen(state, 5.1)
    assert "since switch: checkouts safe: 0 lost of 40" in text
    assert "CHECKOUTS LOST" not in text
    total = later["classes"][0]["received"]
    assert f"run {lost_before:,} of {total:,}" in text  # the run's totals stay cumulative
    worse = _advanced(later, 1.0, "priority-shed", received=10, lost=3)
    state.update(worse, 6.1)
    assert "since switch: CHECKOUTS LOST: 3 of 50" in screen(state, 6.1)


def test_the_limited_count_stays_cumulative_across_switches():
    state = copy.deepcopy(scenario(14, "token-bucket"))
    first = copy.deepcopy(state.consumer)
    first["policy_state"] = dict(first["policy_state"], limited=2351)
    state.update(first, 3.0)
    away = copy.deepcopy(first)
    away["mode"], away["uptime_s"], away["policy_state"] = "drop", first["uptime_s"] + 1, {}
    state.update(away, 4.0)
    back = copy.deepcopy(first)
    back["uptime_s"] = first["uptime_s"] + 2
    back["policy_state"] = dict(first["policy_state"], limited=739)
    state.update(back, 5.0)
    assert "limited 3,090 total, 739 since switch" in screen(state, 5.0)


def test_the_verdict_names_the_queue_in_the_producers_limiter():
    state = scenario(14, "token-bucket")
    waiting = next(iter(state.producers.values()))["pending"]
    assert waiting > 0  # the limiter holds the spike back
    text = screen(state, 3.0)
    assert f"UPSTREAM: {waiting:,} wait in the producer's limiter" in text
    assert "healthy" not in text


def test_latencies_say_what_they_measure_and_nothing_measured_is_not_zero():
    state = copy.deepcopy(scenario(14, "token-bucket"))
    snap = copy.deepcopy(state.consumer)
    snap["queue_wait"] = {"p50_s": 0.0, "p99_s": 0.0, "max_s": 0.0}  # nothing finished lately
    state.update(snap, 3.0)
    producer = copy.deepcopy(next(iter(state.producers.values())))
    producer["latency"] = {"p50_s": 0.0, "p95_s": 0.0, "p99_s": 0.0, "max_s": 0.0}
    state.update(producer, 3.0)
    text = screen(state, 3.0)
    assert "time to verdict" in text and re.search(r"wait in queue p99\s+n/a", text)
    assert re.search(r"p99\s+n/a", text) and not re.search(r"p\d\d\s+0 µs", text)


# -- Module 18 -------------------------------------------------------------------------------
def flow_state(consumer: Dict[str, Any], producer: Dict[str, Any]) -> DashboardState:
    state = DashboardState(18, get_module(18).title, 18000)
    base = {"role": "consumer", "id": "consumer-18000", "module": 18, "limit": 10}
    base.update(service_rate=1000.0, link_delay_ms=50.0, on_link=3, depth=1)
    state.update(telemetry.complete({**base, "rates": {"processed": 96.0}, **consumer}), 1.0)
    state.update(telemetry.complete({"role": "producer", "id": "p", **producer}), 1.0)
    return state


def panel_lines(state: DashboardState) -> List[str]:
    console = Console(width=80, record=True, force_terminal=False)
    console.print(MODULE_PANELS[18](state, 1.0))
    return [line.rstrip() for line in console.export_text().splitlines()]


def _bar(done: float, bound: float) -> str:
    filled = round(22 * done / bound)
    return "█" * filled + "░" * (22 - filled)


def test_pull_mode_shows_the_demand_each_end_holds_and_the_bound():
    state = flow_state(
        {"mode": "pull", "demand_outstanding": 7}, {"demand": 2, "link_delay_ms": 50.0}
    )
    assert panel_lines(state) == [
        "link      50 ms each way, round trip 100 ms",
        "in flight window 10 · demand out 7 · frames on the link 3 · buffered 1",
        "demand    the producer holds 2 of it (asked for, not yet sent)",
        f"done      {_bar(96, 99.0)} 96.0/s of the bound 99.0/s (μ 1,000/s)",
    ]


def test_block_mode_shows_the_credit_out_and_no_demand_row():
    state = flow_state({"mode": "block", "credit_outstanding": 6}, {"link_delay_ms": 50.0})
    assert panel_lines(state)[1:3] == [
        "in flight window 10 · credit out 6 · frames on the link 3 · buffered 1",
        f"done      {_bar(96, 99.0)} 96.0/s of the bound 99.0/s (μ 1,000/s)",
    ]


def test_the_bound_follows_the_live_delay_and_window():
    # the demo's keys: a 10 ms link each way, then a window of 20
    faster = flow_state({"mode": "block", "link_delay_ms": 10.0}, {"link_delay_ms": 10.0})
    lines = panel_lines(faster)
    assert lines[0] == "link      10 ms each way, round trip 20 ms"
    assert lines[-1].endswith(" 96.0/s of the bound 476/s (μ 1,000/s)")  # 10 / 21 ms
    wider = flow_state({"mode": "block", "limit": 20, "link_delay_ms": 10.0}, {"link_delay_ms": 10})
    assert panel_lines(wider)[-1].endswith(" of the bound 952/s (μ 1,000/s)")  # 20 / 21 ms
    loopback = flow_state({"mode": "block", "link_delay_ms": 0.0}, {"link_delay_ms": 0.0})
    assert panel_lines(loopback)[0] == "link      no delay either way (loopback)"
    assert panel_lines(loopback)[-1].endswith(" of the bound 1,000/s (μ 1,000/s)")
    # each end its own delay: the round trip is the sum, whichever end changed
    uneven = flow_state({"mode": "block"}, {"link_delay_ms": 0.0})
    assert panel_lines(uneven)[0] == "link      50 ms there, 0 µs back, round trip 50 ms"
    assert panel_lines(uneven)[-1].endswith(" of the bound 196/s (μ 1,000/s)")  # 10 / 51 ms


def test_large_figures_drop_the_last_piece_instead_of_wrapping():
    state = flow_state(
        {"mode": "pull", "limit": 100_000, "demand_outstanding": 99_999, "on_link": 12_345},
        {"demand": 50_000},
    )
    flight = panel_lines(state)[1]
    assert flight == "in flight window 100,000 · demand out 99,999 · frames on the link 12,345"
    assert len(flight) <= 76


def test_pull_mode_on_the_whole_screen_from_the_real_cores():
    consumer = ConsumerConfig(module=18, mode="pull", capacity=10, process_rate=1000.0)
    producer = ProducerConfig(module=18, messages_per_s=2000.0)
    result = simulate(consumer, [producer], duration=3.0, drain=0.0, stop_times=[1e9], latency=0.05)
    snap = result.consumer_core.snapshot(3.0)
    snap.update(id="consumer-18000", link_delay_ms=50.0, on_link=0)
    prod = result.producer_cores[0].snapshot(3.0)
    prod.update(id=prod["name"], link_delay_ms=50.0)
    state = dashboard(18, [(3.0, (telemetry.complete(snap), telemetry.complete(prod)))])
    state.key_legend = legend(get_module(18).live_modes, get_module(18).knob)
    demand, held = snap["demand_outstanding"], prod["demand"]
    assert 0 <= held <= demand <= 10  # what the producer holds is part of what is out
    text = screen(state, 3.0, 160, 48)
    assert f"demand out {demand} · frames on the link 0 · buffered {snap['depth']}" in text
    assert f"the producer holds {held} of it (asked for, not yet sent)" in text
    assert "[/] window  </> delay  k spike" in text


@pytest.mark.parametrize("mode", ["block", "pull"])
def test_module_18_fits_80_by_24_with_its_keys(mode):
    consumer = ConsumerConfig(module=18, mode=mode, capacity=10, process_rate=1000.0)
    producer = ProducerConfig(module=18, messages_per_s=2000.0)
    runs = []
    for at in (2.0, 3.0):
        result = simulate(
            consumer, [producer], duration=at, drain=0.0, stop_times=[1e9], latency=0.05
        )
        snap = result.consumer_core.snapshot(at)
        snap.update(id="consumer-18000", link_delay_ms=50.0, on_link=2)
        prod = result.producer_cores[0].snapshot(at)
        prod.update(id=prod["name"], link_delay_ms=50.0)
        runs.append((at, (telemetry.complete(snap), telemetry.complete(prod))))
    state = dashboard(18, runs)
    state.key_legend = legend(get_module(18).live_modes, get_module(18).knob)
    lines = screen(state, 3.0).splitlines()
    assert len(lines) <= 24 and all(len(text) <= 80 for text in lines)
    assert lines[-1].startswith("╰")
    text = "\n".join(lines)
    assert "[/] window" in text and "</> delay" in text and "…" not in text
    assert ("demand out" in text) == (mode == "pull")
