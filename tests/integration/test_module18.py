"""Module 18 end to end: over a slow link the window, not the consumer, sets the pace.

Real processes on loopback with the module's defaults (block mode, a window of 10, a
1,000 msg/s consumer, a producer as fast as credit allows), once with --link-delay-ms 50
on both ends and once without. The bound W / (2D + s) can never be beaten, so the upper
checks are tight; the lower ones leave room for a busy two-core machine. The lesson's
figures (within 5%) come from scripts/validate's full plan, not from here.
"""

from __future__ import annotations

import json
import statistics

import pytest

from lab.processes.net import free_port_block
from tests.integration.test_modules_13_15 import run_pairs

pytestmark = pytest.mark.integration

SECONDS = 3.0
DELAY = ["--link-delay-ms", "50"]


def test_a_window_of_ten_over_a_100_ms_round_trip_caps_throughput_near_100_per_s(procs):
    (slow, slow_producer), (fast, _) = run_pairs(
        procs, 18, [(DELAY, DELAY), ([], [])], seconds=SECONDS
    )
    # At most 10 per round trip of 101 ms (2 x 50 ms + 1 ms service), plus the window.
    bound = 10 / 0.101 * SECONDS + 10
    assert slow["processed"] == slow_producer["processed"] <= bound
    assert slow["processed"] >= 0.6 * bound
    assert slow["dropped"] == 0 and slow["max_depth"] <= 10
    # The same window with no delay: the consumer's 1,000 msg/s is the limit instead.
    assert fast["processed"] > 4 * slow["processed"]


def test_a_bad_link_delay_exits_2_with_one_line(procs):
    run = procs.lab(
        "producer", "--module", "18", "--port", str(free_port_block()), "--link-delay-ms", "-5"
    )
    assert run.wait(30) == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "--link-delay-ms must be between 0 and 10000" in lines[0], run.stderr


def test_the_link_delay_changes_midway_and_the_consumer_measures_both_round_trips(procs, tmp_path):
    # 10 ms each way, then 60 ms from 2 s after each process starts; a window of 50.
    change = [
        "--link-delay-ms",
        "10",
        "--link-delay-change-at",
        "2",
        "--link-delay-change-ms",
        "60",
    ]
    record = tmp_path / "consumer.jsonl"
    consumer_args = ["--buffer", "50", "--record", str(record), *change]
    ((consumer, producer),) = run_pairs(procs, 18, [(consumer_args, change)], seconds=5.0)
    assert consumer["dropped"] == 0 and consumer["processed"] == producer["processed"]
    snaps = [json.loads(line) for line in record.read_text(encoding="utf-8").splitlines()]
    snaps = [s for s in snaps if s.get("role") == "consumer"]
    assert {s["link_delay_ms"] for s in snaps} == {10.0, 60.0}
    changed = min(s["uptime_s"] for s in snaps if s["link_delay_ms"] == 60.0)
    before = [s["round_trip_s"] for s in snaps if 1.0 <= s["uptime_s"] < changed]
    after = [s["round_trip_s"] for s in snaps if s["uptime_s"] >= changed + 1.0]
    assert before and after and None not in before + after
    # At least the link both ways (each process holds a frame for its delay; a frame read
    # just after the loop read its clock is stamped a few microseconds early), plus the
    # loops' turns: a loaded two-core machine may add tens of ms, so the typical sample is
    # judged, and the least of them.
    assert min(before) >= 0.0199 and min(after) >= 0.1199, (before, after)
    assert statistics.median(before) < 0.040, before
    assert statistics.median(after) < 0.160, after
    assert all(s["in_flight"] <= 50 for s in snaps)
    assert max(s["in_flight"] for s in snaps) == 50  # the producer keeps the window full


@pytest.mark.parametrize(
    "flags, words",
    [
        (["--link-delay-change-at", "3"], "--link-delay-change-at and --link-delay-change-ms go"),
        (["--link-delay-change-at", "3", "--link-delay-change-ms", "60"], "needs --link-delay-ms"),
    ],
)
def test_a_bad_link_change_exits_2_with_one_line(procs, flags, words):
    for role in ("consumer", "producer"):
        run = procs.lab(role, "--module", "18", "--port", str(free_port_block()), *flags)
        assert run.wait(30) == 2
        lines = run.stderr.strip().splitlines()
        assert len(lines) == 1 and words in lines[0], run.stderr
