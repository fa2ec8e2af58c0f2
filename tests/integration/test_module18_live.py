"""Module 18's live knobs on real processes: ``bplab ctl delay`` and ``window`` move the bound.

A block-mode consumer (window 10, 1,000 msg/s) and an unpaced producer start on a fast
link (no ``--link-delay-ms``: neither end has a delay line yet). ``bplab ctl delay 50``
then slows both ends, so the throughput falls to about W / (2D + s) = 99 msg/s;
``bplab ctl window 100`` raises the bound to 990 msg/s. Every step waits on the
consumer's published rate (over its last second) with a deadline; the thresholds are loose
so that a busy two-core machine passes, and each is far from the other side's figure.
"""

from __future__ import annotations

import pytest

from lab.processes.net import free_port_block
from tests.conftest import wait_for

pytestmark = pytest.mark.integration

DEADLINE_S = 20.0


def test_the_delay_and_the_window_change_live_and_the_throughput_follows(procs, tap_factory):
    port = str(free_port_block())
    common = ("--module", "18", "--port", port, "--quiet")
    procs.lab("consumer", *common, "--duration", "90")
    tap = tap_factory(int(port))

    def ctl(*args: str) -> str:
        run = procs.lab("ctl", *args, "--port", port)
        assert run.wait(30) == 0, run.stderr
        return run.stdout

    wait_for(lambda: tap.consumer() is not None, DEADLINE_S, "the consumer's first snapshot")
    procs.lab("producer", *common, "--duration", "80")

    def processed_per_s() -> float:
        snap = tap.consumer()
        return snap["rates"]["processed"] if snap else 0.0

    # a fast link: the consumer's own 1,000 msg/s is the limit (250: a very busy machine)
    wait_for(lambda: processed_per_s() >= 250, DEADLINE_S, "a fast link's throughput")

    told = ctl("delay", "50")
    assert "took delay (link delay 50 ms each way, 1 producer(s) told)" in told

    def both_ends_at(delay_ms: float) -> bool:
        snap, producers = tap.consumer(), tap.producers()
        return (
            snap is not None
            and snap["link_delay_ms"] == delay_ms
            and [p.get("link_delay_ms") for p in producers] == [delay_ms]
        )

    wait_for(lambda: both_ends_at(50.0), DEADLINE_S, "both ends at 50 ms")
    # 10 per round trip of 101 ms: 99 msg/s at most (130: a second's rate window's slack)
    wait_for(lambda: 0 < processed_per_s() <= 130, DEADLINE_S, "the window-bound throughput")

    assert "took window (window set to 100)" in ctl("window", "100")
    # the bound is 990 msg/s now; 300 is three times the old bound, far from it either way
    wait_for(lambda: processed_per_s() >= 300, DEADLINE_S, "a wider window's throughput")
    snap = tap.consumer()
    assert snap["limit"] == 100 and snap["totals"]["dropped"] == 0
