"""Module 17 end to end: more workers, a database's knee, a live knob and bulkheads.

Real processes on loopback with the module's defaults (a pool of workers at 100 msg/s
each, a buffer of 20,000, FIFO per workload). The pool is simulated exactly, so the counts
follow the model; tolerances only absorb when the producers start and stop.
"""

from __future__ import annotations

import signal
import time

import pytest

from lab.processes.control import send_command
from lab.processes.net import free_port_block
from tests.conftest import wait_consumer_up, wait_for

pytestmark = pytest.mark.integration


def model_rate(tap, most: float, window_s: float = 1.5) -> float:
    """Messages processed per second of the consumer's own clock between two of its snapshots
    taken while the pool was saturated throughout.

    The first snapshot holds a backlog the pool (``most`` msg/s at the very most) cannot finish
    before the second, so no worker idled in between whatever the producer did; the pool is
    simulated exactly in the consumer's clock (``uptime_s``), so the count between the two is
    the model's, within one message per worker, however loaded the machine is. Wall-clock
    rates are not used: a starved consumer reports its windows late."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        first = wait_for(lambda: _backlogged(tap, 900), 30, "a backlog")
        horizon = first["uptime_s"] + first["depth"] / most
        target = first["uptime_s"] + window_s
        second = wait_for(lambda f=first, t=target: _at_or_after(tap, f, t), 30, "a later snapshot")
        if second["uptime_s"] <= horizon:
            processed = second["totals"]["processed"] - first["totals"]["processed"]
            return processed / (second["uptime_s"] - first["uptime_s"])
    raise AssertionError("no two snapshots close enough together: the machine is too loaded")


def _backlogged(tap, depth: int):
    snap = tap.consumer()
    return snap if snap is not None and snap["depth"] >= depth else None


def _at_or_after(tap, first: dict, uptime_s: float):
    tap.sub.poll(100)  # the next snapshot, or 100 ms
    snap = tap.consumer()
    if snap is None or snap["session"] != first["session"]:
        return None
    return snap if snap["uptime_s"] >= uptime_s else None


def test_four_workers_do_four_times_one_and_eight_do_less_behind_a_database(procs, tap_factory):
    pools = (["--workers", "1"], ["--workers", "4"], ["--workers", "4", "--db-capacity", "250"],
             ["--workers", "8", "--db-capacity", "250"])  # fmt: skip
    taps = []
    for pool in pools:
        port = str(free_port_block())
        common = ["--module", "17", "--port", port, "--quiet", "--duration", "20"]
        procs.lab("consumer", *common, "--buffer", "1000", *pool)
        procs.lab("producer", *common, "--mps", "1000")
        taps.append(tap_factory(int(port)))
    one, four, db4, db8 = (model_rate(tap, most=400.0) for tap in taps)
    assert one == pytest.approx(100.0, rel=0.03) and four == pytest.approx(400.0, rel=0.03)
    assert db4 == pytest.approx(250.0, rel=0.08)  # the database holds four near its capacity
    assert db8 < 0.85 * db4  # past the knee eight do less than four (the model: 167 vs 250)


def test_the_pool_size_changes_live(procs, tap_factory):
    port = free_port_block()
    consumer = procs.lab("consumer", "--module", "17", "--port", str(port), "--quiet")
    tap = tap_factory(port)
    wait_for(tap.consumer, 30, "the consumer's first snapshot")
    for value, expected in (("more", 2), (5, 5), ("fewer", 4)):
        assert send_command("127.0.0.1", port, {"cmd": "workers", "value": value})["ok"]
        wait_for(
            lambda e=expected: (tap.consumer() or {}).get("worker", {}).get("workers") == e,
            10,
            f"{expected} workers",
        )
    assert consumer.running()


def test_a_bulkhead_keeps_likes_moving_through_an_analytics_flood(procs):
    consumers = []
    for pool in (["--workers", "6"], ["--bulkhead", "likes=2,analytics=4"]):
        port = free_port_block()
        common = ["--module", "17", "--port", str(port), "--json", "--quiet"]
        consumers.append((port, common, procs.lab("consumer", *common, *pool)))
    results = []
    for port, common, consumer in consumers:
        wait_consumer_up(port)  # the likes' p99 is the measure: no start-up burst
        likes = procs.lab(
            "producer", *common, "--name", "likes", "--workloads", "likes=1", "--mps", "100",
            "--duration", "5",
        )  # fmt: skip
        flood = procs.lab(
            "producer", *common, "--name", "analytics", "--workloads", "analytics=1",
            "--mps", "1200", "--duration", "5",
        )  # fmt: skip
        results.append((consumer, likes, flood))
    waits = []
    for consumer, likes, flood in results:
        assert likes.wait(60) == 0 and flood.wait(60) == 0
        consumer.signal(signal.SIGINT)
        assert consumer.wait(30) == 0, consumer.stderr
        classes = {row["class"]: row for row in consumer.json()["classes"]}
        waits.append(classes[0]["wait_p99_ms"])
    shared, bulkhead = waits
    assert shared > 1000  # likes queue behind ~3,000 analytics events a second too many
    assert bulkhead < 200  # two workers of their own, for 100 likes a second


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--workers", "0"], "--workers must be between 1 and 1000"),
        (["--autoscale", "5-2"], "--autoscale takes MIN-MAX"),
        (["--bulkhead", "photos=3"], "--bulkhead takes workload=workers"),
        (["--db-capacity", "0"], "--db-capacity must be a finite number > 0"),
    ],
)
def test_bad_pool_flags_exit_2_with_one_line(procs, flags, message):
    run = procs.lab("consumer", "--module", "17", "--port", str(free_port_block()), *flags)
    assert run.wait(30) == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], run.stderr
