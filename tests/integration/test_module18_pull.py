"""Module 18's pull mode end to end: the consumer sends REQUEST(n), the producer sends only
against that demand, over a slow link (real processes on loopback).

The consumer never requests more than its buffer of 10, so any record sent past demand would
show as a drop or a depth above 10. The bound W / (2D + s) caps what gets through; the lower
check leaves room for a busy two-core machine.
"""

from __future__ import annotations

import pytest

from lab.processes.net import free_port_block
from tests.integration.test_modules_13_15 import run_pairs

pytestmark = pytest.mark.integration

SECONDS = 2.0
DELAY = ["--link-delay-ms", "20"]


def test_pull_over_a_slow_link_never_has_more_in_flight_than_requested(procs):
    ((consumer, producer),) = run_pairs(
        procs, 18, [(["--mode", "pull", "--request-n", "5", *DELAY], DELAY)], seconds=SECONDS
    )
    assert consumer["processed"] > 0
    assert consumer["dropped"] == 0 and consumer["max_depth"] <= 10
    assert producer["dropped"] == 0 and consumer["received"] <= producer["produced"]
    # at most 10 per round trip of 41 ms (2 x 20 ms + 1 ms service), plus the window
    assert consumer["processed"] <= 10 / 0.041 * SECONDS + 10


def test_request_n_zero_exits_2_with_one_line(procs):
    run = procs.lab(
        "consumer",
        "--module",
        "18",
        "--port",
        str(free_port_block()),
        "--mode",
        "pull",
        "--request-n",
        "0",
    )
    assert run.wait(30) == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "--request-n must be between 1 and --buffer" in lines[0], run.stderr
