"""Module 18 end to end: over a slow link the window, not the consumer, sets the pace.

Real processes on loopback with the module's defaults (block mode, a window of 10, a
1,000 msg/s consumer, a producer as fast as credit allows), once with --link-delay-ms 50
on both ends and once without. The bound W / (2D + s) can never be beaten, so the upper
checks are tight; the lower ones leave room for a busy two-core machine. The lesson's
figures (within 5%) come from scripts/validate's full plan, not from here.
"""

from __future__ import annotations

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
