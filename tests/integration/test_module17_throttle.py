"""Module 17's ``--throttle-on-lag`` end to end: the producer falls to the consumer's rate
and comes back up when the consumer gets faster, with nothing dropped.

One consumer (module defaults: one worker at 100 msg/s, buffer 20,000) and one producer
asking for 300 msg/s, real processes on loopback, watched through the telemetry socket.
"""

from __future__ import annotations

import pytest

from lab.processes.control import send_command
from lab.processes.net import free_port_block
from tests.conftest import wait_for

pytestmark = pytest.mark.integration


def test_the_producer_follows_the_lag_down_to_the_consumers_rate_and_back_up(procs, tap_factory):
    port = free_port_block()
    common = ["--module", "17", "--port", str(port), "--quiet"]
    consumer = procs.lab("consumer", *common)
    tap = tap_factory(port)
    procs.lab("producer", *common, "--throttle-on-lag")

    def producer():
        found = tap.producers()
        return found[0] if found else None

    def throttled_to_the_consumer():
        snap = producer()
        # the 1 s rate it actually sends at, settled after the first cut (about 2 s in)
        return (
            snap
            if snap and snap["uptime_s"] > 2.0 and 85 <= snap["rates"]["produced"] <= 115
            else None
        )

    slowed = wait_for(throttled_to_the_consumer, 20, "the producer at about 100 msg/s")
    assert slowed["throttle"]["target_lag_s"] == 0.5
    assert slowed["throttle"]["rate_mps"] < 150
    assert (tap.consumer()["oldest_age_s"]) < 0.5 and tap.consumer()["depth"] < 100
    assert send_command("127.0.0.1", port, {"cmd": "workers", "value": 4})["ok"] is True
    wait_for(lambda: (producer() or {}).get("target_mps") == 300.0, 10, "back to 300 msg/s")
    wait_for(lambda: (producer() or {}).get("rates", {}).get("produced", 0) >= 280, 10, "300/s")
    final = tap.consumer()
    assert final["totals"]["dropped"] == 0 and final["max_depth"] < 200
    assert any("slowing to" in text for _, text in producer()["events"])
    assert consumer.running()
