"""Bad network input, from another process (``scripts/fuzz_consumer.py``), at real lab
processes: nothing may crash, every bad frame that reaches the lab is counted as malformed,
exactly, and a legitimate producer running at the same time does not notice.

The fuzzer's frames are malformed by construction, or judged by an in-process consumer core
(the flipped-byte mutants), so the test knows the exact count to expect. Messages above a
socket's ``MAXMSGSIZE`` never reach the lab's code (ZeroMQ closes that connection): the
test checks that those, and raw TCP garbage, break nothing.
"""

from __future__ import annotations

import json
import re
import signal
import sys

import pytest
import zmq

from tests.conftest import wait_for

pytestmark = pytest.mark.integration

FUZZER = "scripts/fuzz_consumer.py"
FRAMES = 100_000


def _producer_row(tap, name):
    snapshot = tap.consumer() or {}
    return next((row for row in snapshot.get("producers", []) if row["name"] == name), None)


def test_consumer_counts_every_bad_frame_and_a_real_producer_is_unaffected(
    procs, base_port, tap_factory
):
    port = str(base_port)
    consumer = procs.lab(
        "consumer", "--port", port, "--mode", "drop", "--process-rate", "max", "--json", "--quiet"
    )
    tap = tap_factory(base_port)
    wait_for(tap.consumer, 15, "the consumer's first snapshot")
    producer = procs.lab(
        "producer",
        *("--port", port, "--mps", "500", "--name", "legit", "--duration", "8"),
        *("--json", "--quiet"),
    )
    wait_for(lambda: (_producer_row(tap, "legit") or {}).get("processed"), 15, "legit traffic")

    fuzzer = procs.script(FUZZER, "consumer", "--port", port, "--frames", str(FRAMES), "--raw", "0")
    assert fuzzer.wait(60) == 0, fuzzer.stderr
    report = fuzzer.json()
    expected = report["expected_malformed"]
    assert report["data_frames"] == FRAMES and expected >= FRAMES
    assert report["control_replies"] == report["control_errors"] == report["control_requests"]

    def counted():
        snapshot = tap.consumer() or {}
        return snapshot.get("malformed", 0), snapshot.get("telemetry_malformed", 0)

    wait_for(
        lambda: counted()[0] >= expected and counted()[1] >= report["relay_wrong_shape"],
        30,
        f"the consumer to count {expected:,} malformed frames",
    )
    assert counted() == (expected, report["relay_wrong_shape"])

    # Raw TCP garbage on every port; libzmq may make messages of some (counted, unpredictably).
    raw = procs.script(
        FUZZER,
        "consumer",
        "--port",
        port,
        "--frames",
        "0",
        "--mutants",
        "0",
        "--telemetry",
        "0",
        "--control",
        "0",
        "--raw",
        "25",
    )
    assert raw.wait(60) == 0, raw.stderr
    assert raw.json()["raw_connections"] == 100

    assert producer.wait(30) == 0, producer.stderr
    assert consumer.running(), "the consumer died under fuzzing"
    consumer.signal(signal.SIGINT)
    assert consumer.wait(30) == 0, consumer.stderr
    c, p = consumer.json(), producer.json()
    assert c["malformed"] >= expected
    assert c["telemetry_malformed"] >= report["relay_wrong_shape"]
    assert c["identity_errors"] == [] and p["identity_errors"] == []
    # The legitimate producer: every message answered, at its rate, and the consumer's
    # books for it agree with its own.
    assert p["malformed"] == 0 and p["in_flight"] == 0 and p["lost"] == 0
    assert p["achieved_mps"] == pytest.approx(500, rel=0.05)
    mine = c["producers"]["legit"]
    assert (mine["received"], mine["accepted"], mine["dropped"]) == (
        p["produced"],
        p["accepted"],
        p["dropped"],
    )
    assert p["dropped"] == 0
    assert p["latency_p99_ms"] < 1000


def test_visualizers_count_every_bad_snapshot_and_keep_drawing(procs, ptys, base_port):
    """One plain visualizer (a pipe) and one live dashboard (a terminal) get the same flood."""
    port = str(base_port)
    plain = procs.lab("visualize", "--port", port, "--plain", "--json", "--duration", "90")
    live = ptys(
        [sys.executable, "-m", "lab", "visualize", "--port", port, "--json", "--duration", "90"],
        rows=30,
        cols=100,
    )
    fuzzer = procs.script(
        FUZZER, "visualizer", "--port", port, "--frames", str(FRAMES), "--subscribers", "2"
    )
    # The fuzzer prints its report once all is sent, then stays until the visualizers leave.
    line = wait_for(lambda: fuzzer.peek().strip(), 60, "the fuzzer to send everything")
    report = json.loads(line.splitlines()[0])
    assert report["malformed"] == FRAMES
    # The marker is the last message: once it is on screen, everything before it was read.
    wait_for(lambda: "9999.0s]" in plain.peek(), 30, "the plain visualizer to draw the marker")
    wait_for(lambda: "up 9999 s" in live.text(), 30, "the dashboard to draw the marker")
    plain.signal(signal.SIGINT)
    live.signal(signal.SIGINT)
    assert plain.wait(15) == 0, plain.stderr
    assert live.wait(15) == 0, live.text()[-2000:]
    assert fuzzer.wait(15) == 0, fuzzer.stderr
    found = re.findall(r"\{\"consumer_sessions\".*?\}", live.text().replace("\n", ""))
    assert found, live.text()[-2000:]
    for summary in (plain.json(), json.loads(found[-1])):
        assert summary["malformed"] == report["malformed"]
        assert summary["snapshots"] == report["valid"]
        assert summary["refreshes"] > 0


def test_every_receiving_socket_has_a_maximum_message_size(base_port, monkeypatch):
    from lab.core.config import ConsumerConfig, ProducerConfig
    from lab.processes.consumer import ConsumerProcess, ConsumerRun
    from lab.processes.control import send_command
    from lab.processes.producer import ProducerProcess, ProducerRun
    from lab.processes.visualizer import Visualizer, VisualizerRun

    def limit(sock) -> int:
        return sock.getsockopt(zmq.MAXMSGSIZE)

    consumer = ConsumerProcess(ConsumerConfig(), ConsumerRun(port=base_port, quiet=True))
    try:
        assert len(consumer.sockets) == 4
        assert all(limit(sock) > 0 for sock in consumer.sockets)
    finally:
        consumer.close()
    producer = ProducerProcess(ProducerConfig(), ProducerRun(port=base_port, quiet=True))
    try:
        assert limit(producer.dealer) > 0 and limit(producer.pub) > 0
    finally:
        producer.close()
    visualizer = Visualizer(VisualizerRun(module=12, port=base_port))
    try:
        assert limit(visualizer.sub) > 0
    finally:
        visualizer.close()
    # bplab ctl's REQ socket, caught as it connects (nobody answers: a quick timeout).
    limits = []
    original = zmq.Socket.connect

    def connect(sock, address):
        limits.append(limit(sock))
        return original(sock, address)

    monkeypatch.setattr(zmq.Socket, "connect", connect)
    with pytest.raises(TimeoutError):
        send_command("127.0.0.1", base_port, {"cmd": "status"}, timeout=0.2)
    assert limits and all(value > 0 for value in limits)
