"""Modules 13-15 end to end: each lesson's core claim, with real processes on loopback.

Every test runs two consumer/producer pairs side by side (the lesson's "before" and
"after"), with each module's defaults (``--module N``) and a spike moved earlier and made
shorter, so the whole file takes well under a minute. Tolerances are for a busy two-core
CI machine; the lessons' own numbers are in workshop_materials/NN_*/README.md.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest

from lab.processes.net import free_port_block

pytestmark = pytest.mark.integration

Summaries = Tuple[Dict[str, Any], Dict[str, Any]]


class Pair:
    """A consumer and a producer of one module on their own ports."""

    def __init__(self, procs, module: int, consumer_args, producer_args, seconds: float):
        port = str(free_port_block())
        common = ["--module", str(module), "--port", port, "--json", "--quiet"]
        self.consumer = procs.lab(
            "consumer", *common, "--duration", str(seconds + 6), *consumer_args
        )
        self.producer = procs.lab("producer", *common, "--duration", str(seconds), *producer_args)

    def finish(self) -> Summaries:
        assert self.producer.wait(60) == 0, self.producer.stderr
        self.consumer.signal(signal.SIGINT)
        assert self.consumer.wait(30) == 0, self.consumer.stderr
        consumer, producer = self.consumer.json(), self.producer.json()
        assert consumer["identity_errors"] == [] and producer["identity_errors"] == []
        return consumer, producer


def run_pairs(procs, module: int, runs, seconds: float) -> List[Summaries]:
    """Start every (consumer args, producer args) pair at once, then collect them all."""
    pairs = [Pair(procs, module, c, p, seconds) for c, p in runs]
    return [pair.finish() for pair in pairs]


def by_class(consumer: Dict[str, Any]) -> Dict[int, Dict[str, Any]]:
    return {row["class"]: row for row in consumer["classes"]}


# -- Module 13: the flash sale ----------------------------------------------------------------
SPIKE_13 = ["--spike-at", "1", "--spike-duration", "3"]  # x10 (600/s) against 100/s


def test_priority_shedding_keeps_checkouts_that_fifo_drops(procs):
    (fifo, _), (shed, _) = run_pairs(
        procs,
        13,
        [(["--mode", "drop"], SPIKE_13), (["--mode", "priority-shed"], SPIKE_13)],
        seconds=5.0,
    )
    fifo_critical = by_class(fifo)[0]
    # FIFO with tail drop: a checkout is as likely to be dropped as anything else, and at
    # 6x the capacity most are: (600 - 100) / 600 of the spike's 3 x 60 checkouts.
    assert fifo_critical["dropped"] > 0.4 * 180
    classes = by_class(shed)
    critical, normal, optional = classes[0], classes[1], classes[2]
    assert critical["dropped"] + critical["shed"] == 0
    assert optional["shed"] > 0.6 * optional["received"]  # nearly all of the spike's share
    assert normal["shed"] > 0
    # Checkouts jump the queue; optional work accepted before the spike starves behind it.
    assert critical["wait_p99_ms"] < 0.25 * optional["wait_p99_ms"]
    assert critical["wait_p99_ms"] < 0.5 * fifo_critical["wait_p99_ms"]


# -- Module 14: rate limiting -----------------------------------------------------------------
SPIKE_14 = ["--spike-at", "1", "--spike-duration", "3"]  # x4 (240/s) against 80/s admitted


def consumer_windows(path: Path) -> List[Dict[str, float]]:
    """The consumer's sliding one-second rates, from every snapshot it recorded."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return [row["rates"] for row in rows if row.get("role") == "consumer"]


def test_admission_control_bounds_every_second_and_a_client_bucket_avoids_429s(procs, tmp_path):
    recording = tmp_path / "admit.jsonl"
    (admit, greedy), (_, limited) = run_pairs(
        procs,
        14,
        [
            (["--record", str(recording)], SPIKE_14),
            ([], [*SPIKE_14, "--limit", "token-bucket"]),
        ],
        seconds=6.0,
    )
    rate, burst = 80, 20  # the module's --admit-rate and --admit-burst
    windows = consumer_windows(recording)
    assert len(windows) > 40  # ten snapshots a second
    # In any one-second window the bucket lets through at most its rate plus its burst,
    # however much is offered: the spike offered 240/s (more, with the retries).
    assert max(w["accepted"] for w in windows) <= rate + burst + 1
    assert max(w["received"] for w in windows) > 2 * (rate + burst)
    assert admit["shed"] > 200 and greedy["retried"] > 0
    # The producer's own bucket (75/s, burst 15, inside the consumer's 80/s and 20) sends
    # the spike late instead of early: nearly no 429s. (A consumer paused for a moment by a
    # busy machine receives a few messages at once; that is the tolerance.)
    assert limited["shed"] <= 3
    assert limited["rate_delayed"] > 100


# -- Module 15: retry storms ------------------------------------------------------------------
SPIKE_15 = ["--spike-at", "2", "--spike-duration", "3"]  # x4 (200/s) against 100/s


def test_immediate_retries_keep_it_down_backoff_with_a_breaker_recovers(procs):
    (_, storm), (_, calm) = run_pairs(
        procs,
        15,
        [
            ([], [*SPIKE_15, "--retry", "immediate"]),
            ([], [*SPIKE_15, "--retry", "backoff", "--breaker"]),
        ],
        seconds=20.0,
    )
    assert storm["retry_amplification"] > 2.0
    assert calm["retry_amplification"] < 1.3
    assert calm["breaker_rejected"] > 0  # the open breaker failed requests fast
    assert calm["recovery_s"] is not None and calm["recovery_s"] < 12
    assert storm["recovery_s"] is None or storm["recovery_s"] > calm["recovery_s"] + 3
