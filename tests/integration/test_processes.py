"""Process behaviour a person relies on: clean stops, nothing left running, one-line errors,
start order that does not matter."""

from __future__ import annotations

import signal
import sys

import psutil
import pytest

from tests.conftest import wait_for

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_demo_stops_everything_and_leaves_no_process(procs, base_port, signum):
    demo = procs.lab(
        "demo", "12", "--port", str(base_port), "--plain", "--json", "--duration", "60"
    )
    parent = psutil.Process(demo.pid)

    def children_up():
        kids = parent.children(recursive=True)
        roles = {" ".join(k.cmdline()[3:4]) for k in kids if k.is_running()}
        return kids if {"consumer", "producer"} <= roles else None

    kids = wait_for(children_up, 20, "the demo's consumer and producer")
    wait_for(lambda: "DROPPING" in demo.peek(), 20, "the dashboard to show drops")
    demo.signal(signum)
    assert demo.wait(30) == 0, demo.stderr
    gone, alive = psutil.wait_procs(kids, timeout=10)
    assert alive == [], f"left running: {alive}"
    summary = demo.json()
    assert summary["consumer"]["dropped"] > 0
    assert summary["producer"]["produced"] > 0
    assert "demo of module 12" in demo.stderr


def test_demo_children_exit_when_the_demo_is_killed(procs, base_port):
    demo = procs.lab("demo", "12", "--port", str(base_port), "--plain", "--duration", "60")
    parent = psutil.Process(demo.pid)
    kids = wait_for(lambda: len(parent.children()) >= 2 and parent.children(), 20, "children")
    demo.popen.kill()
    demo.wait(10)
    gone, alive = psutil.wait_procs(kids, timeout=10)
    assert alive == [], "children outlived a killed demo"


def test_port_in_use_names_the_port_and_the_flag(procs, base_port, tap_factory):
    first = procs.lab("consumer", "--port", str(base_port), "--quiet")
    wait_for(tap_factory(base_port).consumer, 15, "the first consumer")
    second = procs.lab("consumer", "--port", str(base_port))
    assert second.wait(15) == 2
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1, second.stderr
    assert f"port {base_port}" in lines[0] and "--port" in lines[0]
    assert first.running()


@pytest.mark.parametrize(
    "argv, words",
    [
        (["consumer", "--mode", "turbo"], ["--mode", "block", "drop"]),
        (["consumer", "--buffer", "0"], ["--buffer", "at least 1"]),
        (["consumer", "--port", "70000"], ["--port", "1..65532"]),
        (["consumer", "--process-rate", "-5"], ["--process-rate", "> 0"]),
        (["consumer", "--backpressure", "--mode", "drop"], ["--backpressure", "block"]),
        (["producer", "--rate", "-0.1"], ["--rate", "> 0"]),
        (["producer", "--rate", "0.1", "--mps", "5"], ["--rate", "--mps"]),
        (["producer", "--mps", "fast"], ["--mps", "max"]),
        (["producer", "--retry", "forever"], ["--retry", "backoff"]),
        (["producer", "--profile", "wave"], ["--profile", "spike"]),
        (["visualize", "--port", "0"], ["--port"]),
        (["demo", "99"], ["module 99"]),
        (["consumer", "--no-such-flag"], ["--no-such-flag"]),
    ],
)
def test_bad_flags_exit_2_with_one_clear_line(procs, argv, words):
    process = procs.lab(*argv)
    assert process.wait(20) == 2
    lines = process.stderr.strip().splitlines()
    assert len(lines) == 1, process.stderr
    for word in words:
        assert word in lines[0]


def test_visualizer_waits_for_the_consumer_then_shows_it(procs, base_port):
    visualizer = procs.lab("visualize", "--port", str(base_port), "--duration", "30")
    wait_for(lambda: "waiting for the consumer on port" in visualizer.peek(), 15, "waiting line")
    procs.lab("consumer", "--port", str(base_port), "--quiet")
    procs.lab("producer", "--port", str(base_port), "--mps", "50", "--quiet")
    wait_for(lambda: "DROPPING" in visualizer.peek(), 20, "the dashboard to see drops")
    second = procs.lab("visualize", "--port", str(base_port), "--duration", "30")
    wait_for(lambda: "DROPPING" in second.peek(), 20, "a second dashboard at the same time")
    visualizer.signal(signal.SIGINT)
    assert visualizer.wait(15) == 0


def test_python_dash_m_lab_and_module_listing(procs):
    process = procs.start([sys.executable, "-m", "lab", "modules"])
    assert process.wait(20) == 0
    assert "12_backpressure" in process.stdout and "12000" in process.stdout
