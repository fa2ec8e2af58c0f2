"""A consumer's --record holds the producer snapshots it relays, and reads back through the
telemetry schema: one consumer recording is enough for the producer-latency panel."""

from __future__ import annotations

import json
import signal

import pytest

from lab.core import telemetry
from lab.processes.net import free_port_block
from lab.ui.plotting import load_recording

pytestmark = pytest.mark.integration


def test_a_consumer_recording_holds_the_relayed_producer_snapshots(procs, tmp_path):
    path = tmp_path / "drop.jsonl"
    port = str(free_port_block())
    common = ["--module", "13", "--port", port, "--json"]
    consumer = procs.lab("consumer", *common, "--duration", "12", "--record", str(path))
    producer = procs.lab("producer", *common, "--duration", "3", "--quiet")
    assert producer.wait(60) == 0, producer.stderr
    consumer.signal(signal.SIGINT)
    assert consumer.wait(30) == 0, consumer.stderr
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    roles = {line["role"] for line in lines}
    assert roles == {"consumer", "producer"}
    for line in lines:  # every line is a snapshot the schema accepts
        telemetry.complete(line)
    recording = load_recording(str(path))
    assert recording.consumer is not None and len(recording.producers) == 1
    assert any(value == value for value in recording.producers[0].p99_ms)  # a measured p99
    # Module 13's producer never hears "processed", and recovery is Module 15's lesson.
    summary = producer.json()
    assert summary["processed"] is None and summary["recovery_s"] is None
    assert "by class (drop): checkout lost" in consumer.stderr
