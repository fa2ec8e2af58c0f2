"""Module 18's ``--mode transport`` end to end: with no application flow control, a fast
producer fills ZeroMQ's pipes and the kernel's TCP buffers until a send is refused, while
the consumer's application holds nothing but the message in service.

Real processes on loopback: a consumer with ``--hwm 10`` at 20 msg/s, a producer at full
speed with 64 KiB messages (so the kernel's buffers hold dozens, not thousands), watched
through the telemetry socket; both stopped with SIGTERM and their summaries read.
"""

from __future__ import annotations

import signal
import sys

import pytest

from lab.processes.net import free_port_block
from tests.conftest import wait_for

pytestmark = pytest.mark.integration


def test_messages_hide_in_transport_buffers_until_the_producer_blocks(procs, tap_factory):
    port = free_port_block()
    common = ["--mode", "transport", "--port", str(port), "--hwm", "10", "--json", "--quiet"]
    consumer = procs.lab("consumer", *common, "--process-rate", "20", "--duration", "20")
    tap = tap_factory(port)
    wait_for(tap.consumer, 5, "the consumer's first snapshot")
    producer = procs.lab("producer", *common, "--mps", "max", "--payload-bytes", "65536")

    def blocked():
        snap = tap.consumer()
        figures = snap["transport"] if snap else None
        if not figures or figures["hidden_at_block"] is None or not figures["producer_blocked"]:
            return None
        # the consumer reads the kernel's queues twice a second: wait for a reading
        if sys.platform.startswith("linux") and figures["send_q"] is None:
            return None
        return snap

    snap = wait_for(blocked, 5, "the producer blocked, the hidden figure known")
    figures = snap["transport"]
    assert figures["hidden_at_block"] > 0 and figures["hidden"] > 0
    assert figures["sent"] >= figures["sent_at_block"] >= figures["hidden_at_block"]
    assert snap["depth"] == 0 and figures["in_service"] <= 1  # the application sees nothing
    assert figures["lost_if_killed"] >= figures["hidden"]
    if sys.platform.startswith("linux"):
        assert figures["send_q"] + figures["recv_q"] > 0
    producer.signal(signal.SIGTERM)
    assert producer.wait(10) == 0
    sent = producer.json()
    consumer.signal(signal.SIGTERM)
    assert consumer.wait(10) == 0
    summary = consumer.json()
    assert sent["transport"]["sent_at_block"] >= figures["sent_at_block"]
    assert sent["transport"]["sent_at_first_block"] <= figures["sent_at_block"]
    assert summary["transport"]["hidden_at_block"] > 0
    assert summary["received"] < sent["produced"]  # the rest were still in the buffers
