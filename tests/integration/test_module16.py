"""Module 16 end to end: batches keep up where one at a time drops, and the knob is live.

Real processes on loopback with the module's defaults (batches of 8 ms + 2 ms per message,
buffer 500, a 300 msg/s producer). The worker is simulated exactly, so the counts follow
the arithmetic; tolerances only absorb when the producer starts and stops.
"""

from __future__ import annotations

import pytest

from lab.processes.control import send_command
from lab.processes.net import free_port_block
from tests.conftest import wait_for
from tests.integration.test_modules_13_15 import run_pairs

pytestmark = pytest.mark.integration


def test_batches_of_ten_keep_up_where_one_at_a_time_drops_two_thirds(procs):
    (single, single_producer), (batched, batched_producer) = run_pairs(
        procs, 16, [([], []), (["--batch-size", "10"], [])], seconds=4.0
    )
    # one at a time: 100/s for ~4 s plus the 500 of the buffer, out of ~1,200 offered
    assert single["accepted"] <= 100 * 5 + 500 and single["dropped"] > 0
    assert single["worker"]["mean_batch"] == 1.0
    # batches: 357/s of capacity for 300/s offered, nothing dropped, batches of about 6
    assert batched["dropped"] == 0 and batched_producer["dropped"] == 0
    assert batched["processed"] == batched_producer["produced"]
    assert 4.0 <= batched["worker"]["mean_batch"] <= 10.0
    assert batched["worker"]["latency_p99_ms"] < 500.0
    assert single_producer["produced"] == pytest.approx(batched_producer["produced"], rel=0.05)


def test_the_batch_size_changes_live_from_another_terminal(procs, tap_factory):
    port = free_port_block()
    common = ["--module", "16", "--port", str(port), "--quiet"]
    consumer = procs.lab("consumer", *common)
    tap = tap_factory(port)
    wait_for(tap.consumer, 30, "the consumer's first snapshot")
    for value, expected in (("double", 2), (20, 20), ("half", 10)):
        assert send_command("127.0.0.1", port, {"cmd": "batch", "value": value})["ok"] is True
        wait_for(
            lambda e=expected: (tap.consumer() or {}).get("worker", {}).get("batch_limit") == e,
            10,
            f"batch limit {expected}",
        )
    wrong = send_command("127.0.0.1", port, {"cmd": "batch", "value": "huge"})
    assert wrong["ok"] is False and "batch takes a size" in wrong["error"]
    assert consumer.running()


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--batch-size", "0"], "--batch-size must be between 1 and 100000"),
        (["--batch", "greedy"], "--batch 'greedy' is not allowed"),
        (["--batch-min", "5", "--batch-max", "2"], "need 1 <= --batch-min <= --batch-max"),
        (["--item-ms", "-1"], "--item-ms must be between 0 and 60000 ms"),
    ],
)
def test_bad_batching_flags_exit_2_with_one_line(procs, flags, message):
    run = procs.lab("consumer", "--module", "16", "--port", str(free_port_block()), *flags)
    assert run.wait(30) == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], run.stderr
