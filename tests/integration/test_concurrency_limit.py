"""A producer under an adaptive concurrency limit against a real consumer: it never has more
outstanding than its limit, and the mean limit settles near Little's λ·W. Both algorithms
run at once, each against its own consumer."""

from __future__ import annotations

import pytest

from lab.processes.net import free_port_block

ALGORITHMS = ("aimd", "gradient")


def test_limit_never_passed_and_near_little(procs):
    producers = {}
    for algorithm in ALGORITHMS:
        port = ["--module", "13", "--port", str(free_port_block())]
        procs.lab("consumer", *port, "--duration", "7", "--quiet")
        producers[algorithm] = procs.lab(
            "producer",
            *port,
            *("--mps", "200", "--profile", "steady", "--limit-algorithm", algorithm),
            *("--limit-timeout-ms", "200", "--duration", "5", "--json", "--quiet"),
        )
    for algorithm, producer in producers.items():
        assert producer.wait(timeout=20) == 0
        state = producer.json()["concurrency"]
        assert state["algorithm"] == algorithm
        assert state["over_limit"] == 0 and state["answers"] > 100
        elapsed = state["elapsed_s"]
        mean_limit = state["limit_area"] / elapsed
        little = state["answers"] / elapsed * (state["rtt_sum_s"] / state["answers"])
        # the whole run, its start included: CI-friendly; the lesson's windows are tighter
        assert little == pytest.approx(mean_limit, rel=0.25), algorithm
        assert state["max_outstanding"] <= 40
