"""Module 12 end to end: real consumer, producer and visualizer processes on loopback.

Rates are chosen so that the expected numbers follow from arithmetic, with tolerances that
hold on a busy two-core CI machine; tight timing figures live in ``bplab bench``.
"""

from __future__ import annotations

import signal

import pytest

from tests.conftest import wait_for

pytestmark = pytest.mark.integration

SCRIPTS = "workshop_materials/12_backpressure"


def run_pair(procs, base_port, consumer_args, producer_args, producer_seconds=4.0):
    """Consumer first, then a producer for ``producer_seconds``; returns both summaries."""
    consumer = procs.lab(
        "consumer",
        "--port",
        str(base_port),
        "--json",
        "--quiet",
        "--duration",
        str(producer_seconds + 4),
        *consumer_args,
    )
    producer = procs.lab(
        "producer",
        "--port",
        str(base_port),
        "--json",
        "--quiet",
        "--duration",
        str(producer_seconds),
        *producer_args,
    )
    assert producer.wait(30) == 0, producer.stderr
    consumer.signal(signal.SIGINT)
    assert consumer.wait(30) == 0, consumer.stderr
    return consumer.json(), producer.json()


def test_drop_mode_drops_the_excess(procs, base_port):
    # The buffer holds 2 s of work, so a process that a busy machine starves for a moment
    # does not idle the worker (which would add drops that are the machine's, not the lab's).
    lam, mu, capacity, seconds = 400.0, 200.0, 400, 4.0
    c, p = run_pair(
        procs,
        base_port,
        ["--mode", "drop", "--buffer", str(capacity), "--process-rate", str(mu)],
        ["--mps", str(lam)],
        seconds,
    )
    assert c["identity_errors"] == [] and p["identity_errors"] == []
    assert p["in_flight"] == 0
    assert c["received"] == p["produced"]
    assert (c["dropped"], c["accepted"]) == (p["dropped"], p["accepted"])
    # (lambda - mu) * t arrive more than the worker can take; the buffer keeps K of them.
    expected = (lam - mu) * p["duration_s"] - capacity
    # A busy machine can only add drops (a late handshake or a starved consumer costs worker
    # time, never adds any), so the bound above is looser than the one below.
    assert expected - 0.1 * mu <= c["dropped"] <= expected + 0.5 * mu
    assert c["max_depth"] == capacity
    assert p["achieved_mps"] == pytest.approx(lam, rel=0.02)


def test_block_mode_moves_the_wait_to_the_producer(procs, base_port):
    mu, capacity, seconds = 100.0, 100, 5.0
    c, p = run_pair(
        procs,
        base_port,
        ["--backpressure", "--buffer", str(capacity), "--process-rate", str(mu)],
        ["--mps", "400"],
        seconds,
    )
    assert c["mode"] == "block"
    assert c["dropped"] == 0 and p["dropped"] == 0 and c["over_credit"] == 0
    assert c["max_depth"] <= capacity
    assert c["identity_errors"] == [] and p["identity_errors"] == []
    assert p["lost"] == 0 and c["out_of_order"] == 0
    # The producer is slowed to the consumer's speed (plus the initial credit window) ...
    assert p["produced"] == pytest.approx(mu * p["duration_s"] + capacity, rel=0.12)
    assert (p["produced"] - capacity) / p["duration_s"] == pytest.approx(mu, rel=0.15)
    # ... and its latency climbs towards capacity / mu (its outbox is the consumer's size).
    assert 0.6 * capacity / mu <= p["latency_p99_ms"] / 1e3 <= 1.4 * capacity / mu
    assert p["skipped"] > 0


def test_sample_mode_keeps_one_in_n_above_the_watermark(procs, base_port):
    c, p = run_pair(
        procs,
        base_port,
        [
            "--mode",
            "sample",
            "--buffer",
            "100",
            "--process-rate",
            "100",
            "--sample-every",
            "5",
            "--sample-watermark",
            "0.5",
        ],
        ["--mps", "400"],
        4.0,
    )
    assert c["identity_errors"] == [] and p["sampled_out"] == c["sampled_out"]
    # Keeping 1 in 5 above the watermark keeps 80/s, less than the worker's 100/s, so the
    # depth hovers at the watermark (50) and, once there, the buffer takes exactly what the
    # worker does: everything else, about received - (mu * t + 50), is sampled out.
    kept = 100 * p["duration_s"] + 50
    assert c["sampled_out"] == pytest.approx(c["received"] - kept, rel=0.05)
    assert c["dropped"] == 0
    # On average the buffer sits at the watermark; a late loop turn on a busy machine can
    # let one batch overshoot it a little.
    assert 44 <= c["mean_depth"] <= 56
    assert 48 <= c["max_depth"] <= 75


def test_shed_mode_rejects_with_retry_after_and_producer_backs_off(procs, base_port):
    c, p = run_pair(
        procs,
        base_port,
        ["--mode", "shed", "--buffer", "50", "--process-rate", "100", "--retry-after-ms", "300"],
        ["--mps", "300", "--retry", "backoff", "--max-attempts", "3"],
        4.0,
    )
    assert c["identity_errors"] == [] and p["identity_errors"] == []
    assert c["shed"] == p["shed"] > 0
    assert p["retried"] > 0
    assert c["dropped"] == 0
    assert p["produced"] == p["unique"] + p["retried"]


def test_memory_guard_stops_the_unbounded_consumer(procs, base_port):
    consumer = procs.lab(
        "consumer",
        "--port",
        str(base_port),
        "--mode",
        "unbounded",
        "--process-rate",
        "100",
        "--max-memory-mb",
        "150",
        "--json",
        "--duration",
        "60",
    )
    producer = procs.lab(
        "producer",
        "--port",
        str(base_port),
        "--mps",
        "20000",
        "--payload-bytes",
        "4096",
        "--quiet",
        "--duration",
        "60",
    )
    assert consumer.wait(60) == 3
    summary = consumer.json()
    assert summary["stopped_by"] == "memory_guard"
    assert summary["rss_mb_max"] > 150
    assert summary["depth"] > 10_000
    assert "OOM-killed" in consumer.stderr
    producer.signal(signal.SIGTERM)
    assert producer.wait(15) == 0


def test_seed_commands_verbatim_show_drops_then_backpressure(procs):
    """The seed's three commands, exactly, plus --duration/--json so the test can end."""
    from lab.processes.net import _is_free

    if not all(_is_free("127.0.0.1", 12000 + i) for i in range(4)):
        pytest.skip("ports 12000-12003 are busy on this machine")
    consumer = procs.script(
        f"{SCRIPTS}/consumer.py", "--port", "12000", "--duration", "9", "--json"
    )
    visualizer = procs.script(f"{SCRIPTS}/visualize_backpressure.py", "--duration", "8")
    producer = procs.script(f"{SCRIPTS}/producer.py", "--rate", "0.05", "--duration", "7", "--json")
    assert producer.wait(30) == 0, producer.stderr
    assert consumer.wait(30) == 0, consumer.stderr
    assert visualizer.wait(30) == 0, visualizer.stderr
    c, p = consumer.json(), producer.json()
    assert c["mode"] == "drop" and c["capacity"] == 50 and c["process_rate"] == 10
    assert p["achieved_mps"] == pytest.approx(20, rel=0.05)
    assert c["max_depth"] == 50 and c["dropped"] > 0  # the buffer fills up, messages dropped
    assert "DROPPING" in visualizer.stdout

    consumer = procs.script(
        f"{SCRIPTS}/consumer.py", "--port", "12000", "--backpressure", "--duration", "9", "--json"
    )
    producer = procs.script(f"{SCRIPTS}/producer.py", "--rate", "0.05", "--duration", "7", "--json")
    assert producer.wait(30) == 0, producer.stderr
    assert consumer.wait(30) == 0, consumer.stderr
    c, p = consumer.json(), producer.json()
    assert c["mode"] == "block" and c["dropped"] == 0 and p["dropped"] == 0
    assert c["max_depth"] <= 50
    # throughput slows to the consumer's speed once the first window of credit is used
    assert p["produced"] <= 10 * p["duration_s"] + 50 + 5
    assert p["latency_max_ms"] > 1000  # and the producer pays in latency


def test_consumer_stops_cleanly_on_sigint_and_sigterm(procs, tap_factory):
    from lab.processes.net import free_port_block

    for signum in (signal.SIGINT, signal.SIGTERM):
        port = free_port_block()
        consumer = procs.lab("consumer", "--port", str(port), "--json")
        tap = tap_factory(port)
        wait_for(tap.consumer, 15, "the consumer's first snapshot")
        consumer.signal(signum)
        assert consumer.wait(15) == 0
        assert consumer.json()["stop_reason"] == signal.Signals(signum).name
        assert "consumer summary" in consumer.stderr
