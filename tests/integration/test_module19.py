"""Module 19 end to end: deadlines on the wire, goodput under overload, an old producer.

Real processes on loopback: 200 msg/s into a simulated worker of 100 msg/s, a 500 ms
deadline, a buffer of 100 (one second of work, so the overload's steady state comes within
the short run). The worker's time is simulated exactly; the bounds leave room for when the
processes start and stop on a loaded machine.
"""

from __future__ import annotations

import json

import pytest
import zmq

from lab.core import protocol
from lab.processes.control import send_command
from lab.processes.net import free_port_block
from tests.integration.test_modules_13_15 import run_pairs

pytestmark = pytest.mark.integration


def test_fifo_wastes_its_work_and_deadline_drop_and_codel_keep_goodput(procs):
    runs = [
        (["--buffer", "100", "--discipline", name], [])
        for name in ("fifo", "deadline-drop", "codel")
    ]
    (fifo, _), (drop, _), (codel, _) = run_pairs(procs, 19, runs, seconds=4.0)
    for summary in (fifo, drop, codel):
        assert summary["processed"] == summary["goodput"] + summary["wasted"]
        assert summary["processed"] >= 250  # the worker was busy: 100 msg/s for ~4 s
    assert fifo["dequeue_dropped"] == 0
    assert fifo["goodput"] < 0.4 * fifo["processed"]  # only the first half second or so
    assert drop["goodput"] > 0.9 * drop["processed"] and drop["dequeue_dropped"] > 0
    assert codel["goodput"] > 0.6 * codel["processed"] and codel["dequeue_dropped"] > 0


def test_a_version_1_producer_is_told_why_instead_of_waiting(procs):
    port = free_port_block()
    procs.lab("consumer", "--module", "19", "--port", str(port), "--quiet")
    sock = zmq.Context.instance().socket(zmq.DEALER)
    try:
        sock.setsockopt(zmq.ROUTING_ID, b"old-producer")
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(f"tcp://127.0.0.1:{port}")
        reply = None
        for _ in range(100):  # a HELLO every 100 ms until the consumer is up: 10 s at most
            sock.send(b"BP\x01\x01" + json.dumps({"producer": "old", "sent": 0}).encode())
            if sock.poll(100):
                reply = sock.recv()
                break
        assert reply is not None, "no answer to a version-1 HELLO"
        assert reply[:4] == b"BP\x01\x02"  # a WELCOME in the old version's own header
        assert "protocol version 2" in json.loads(reply[4:])["error"]
        assert protocol.welcome_error(reply)
    finally:
        sock.close()
    # the demo's keys switch the discipline live through the control socket
    assert send_command("127.0.0.1", port, {"cmd": "discipline", "value": "codel"})["ok"]
    refused = send_command("127.0.0.1", port, {"cmd": "discipline", "value": "random"})
    assert refused["ok"] is False and "codel" in refused["error"]
