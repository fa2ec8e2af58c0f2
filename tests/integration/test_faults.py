"""Faults, with real processes: whatever is killed, whatever order things start in, nothing
hangs, nothing accepted is lost, and the books close in every telemetry snapshot.

Each test starts real ``python -m lab`` processes on free loopback ports, waits on
conditions with deadlines (never a bare sleep), and leaves nothing running (the ``procs``
and ``ptys`` fixtures tear down). Rates are low and tolerances wide enough for a busy
two-core machine; tight timing lives in ``bplab bench`` and ``scripts/soak.py``.
"""

from __future__ import annotations

import re
import signal
import sys
import time
from typing import Any, Dict, List, Optional

import psutil
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import wait_for

pytestmark = pytest.mark.integration

VERDICTS = ("accepted", "dropped", "sampled_out", "shed")


# -- helpers -------------------------------------------------------------------------------


class SnapshotLog:
    """Every telemetry snapshot seen on a module's port, kept in order (a ``TelemetryTap``
    keeps only the latest). It reconnects by itself when the consumer restarts."""

    def __init__(self, port: int) -> None:
        import zmq

        from lab.processes import net

        self._zmq = zmq
        self.ctx = zmq.Context()
        self.sub = net.telemetry_subscriber(self.ctx)
        self.sub.setsockopt(zmq.RCVHWM, 0)
        self.sub.setsockopt(zmq.RECONNECT_IVL, 50)
        self.sub.connect(net.endpoint("127.0.0.1", port + net.TELEMETRY_OUT_OFFSET))
        self.snapshots: List[Dict[str, Any]] = []

    def pump(self) -> SnapshotLog:
        from lab.processes import net

        self.snapshots.extend(s for s in net.waiting_snapshots(self.sub) if s is not None)
        return self

    def consumer(self) -> Optional[Dict[str, Any]]:
        self.pump()
        return next((s for s in reversed(self.snapshots) if s["role"] == "consumer"), None)

    def producer(self, name: str) -> Optional[Dict[str, Any]]:
        self.pump()
        return next(
            (s for s in reversed(self.snapshots) if s["role"] == "producer" and s["name"] == name),
            None,
        )

    def row(self, name: str) -> Dict[str, Any]:
        """The consumer's row for producer ``name`` in its latest snapshot ({} if none)."""
        snapshot = self.consumer() or {}
        return next((r for r in snapshot.get("producers", []) if r["name"] == name), {})

    def after(self, uptime: float) -> Optional[Dict[str, Any]]:
        """The latest consumer snapshot taken at or after ``uptime`` seconds."""
        snapshot = self.consumer()
        return snapshot if snapshot and snapshot["uptime_s"] >= uptime else None

    def check_identities(self) -> int:
        """Recompute the identities from the numbers of every snapshot seen; returns how many."""
        self.pump()
        for snap in self.snapshots:
            where = f"{snap['role']} {snap['id']} at {snap.get('uptime_s')} s"
            assert snap["identity_ok"] is True, where
            totals = snap["totals"]
            if snap["role"] == "producer":
                verdicts = sum(totals[k] for k in VERDICTS)
                assert totals["produced"] == verdicts + totals["in_flight"], (where, totals)
                continue
            assert totals["depth"] == snap["depth"], where
            rows = snap["producers"]
            for counts in [totals] + rows:
                assert counts["received"] == sum(counts[k] for k in VERDICTS), (where, counts)
                assert counts["accepted"] == counts["processed"] + counts["depth"], (where, counts)
            for field in ("received", "accepted", "processed", "dropped", "depth"):
                assert sum(r[field] for r in rows) == totals[field], (where, field)
        return len(self.snapshots)

    def close(self) -> None:
        self.sub.close(linger=0)
        self.ctx.term()


@pytest.fixture
def log_factory():
    logs: List[SnapshotLog] = []

    def make(port: int) -> SnapshotLog:
        log = SnapshotLog(port)
        logs.append(log)
        return log

    try:
        yield make
    finally:
        for log in logs:
            log.close()


def _processed_over(log: SnapshotLog, name: str, seconds: float) -> int:
    """How many messages of producer ``name`` the consumer finished in ``seconds``."""
    start = wait_for(log.consumer, 10, "a consumer snapshot")
    first = next(r for r in start["producers"] if r["name"] == name)["processed"]
    end = wait_for(lambda: log.after(start["uptime_s"] + seconds), seconds + 10, "time to pass")
    return next(r for r in end["producers"] if r["name"] == name)["processed"] - first


# -- the consumer dies ---------------------------------------------------------------------
def test_consumer_killed_and_restarted_loses_nothing(procs, base_port, log_factory):
    """Block mode: SIGKILL the consumer mid-run. The producer and the dashboard say
    "consumer down" within 2 s, nothing hangs, and once a new consumer is up the producer
    resends what was accepted but not confirmed: lost 0, everything processed once."""
    port = str(base_port)
    consumer_args = ("consumer", "--port", port, "--mode", "block", "--buffer", "100")
    consumer_args += ("--process-rate", "400", "--quiet")
    visualizer = procs.lab("visualize", "--port", port, "--plain", "--duration", "60")
    first = procs.lab(*consumer_args)
    log = log_factory(base_port)
    producer = procs.lab("producer", "--port", port, "--mps", "800", "--name", "p", "--json")
    wait_for(lambda: log.row("p").get("processed", 0) >= 300, 20, "the first messages")
    assert log.row("p")["depth"] > 0  # backpressure: the buffer holds unconfirmed messages

    first.popen.kill()
    killed_at = time.monotonic()
    wait_for(lambda: "consumer down" in producer.peek("stderr"), 2.0, "the producer to notice")
    wait_for(lambda: "consumer down" in visualizer.peek(), 2.0 - (time.monotonic() - killed_at),
             "the dashboard to say so")  # fmt: skip
    assert producer.running()

    second = procs.lab(*consumer_args, "--json")
    wait_for(lambda: "consumer is back" in producer.peek("stderr"), 15, "the reconnect")
    wait_for(lambda: log.row("p").get("processed", 0) >= 300, 20, "the new consumer to work")
    shown = len(visualizer.peek())
    wait_for(lambda: "mode=block" in visualizer.peek()[shown:], 10, "the dashboard to recover")
    producer.signal(signal.SIGINT)
    assert producer.wait(20) == 0, producer.stderr
    second.signal(signal.SIGINT)
    assert second.wait(20) == 0, second.stderr
    p, c = producer.json(), second.json()

    assert p["consumer_sessions"] == 2 and p["resent"] > 0
    assert p["lost"] == 0 and p["duplicates"] == 0
    assert p["in_flight"] == 0 and p["unconfirmed"] == 0
    # Every message was confirmed processed (by one consumer or the other) ...
    assert p["processed"] == p["produced"] == p["accepted"]
    assert p["identity_errors"] == [] and c["identity_errors"] == []
    # ... and the new consumer took the resent ones and the rest in order, none dropped.
    assert c["out_of_order"] == 0 and c["dropped"] == 0 and c["over_credit"] == 0
    assert log.check_identities() > 20


# -- producers die, and share ----------------------------------------------------------------
def test_two_producers_share_and_a_killed_one_gives_its_credit_back(
    procs, ptys, base_port, log_factory
):
    port = str(base_port)
    consumer = procs.lab(
        *("consumer", "--port", port, "--mode", "block", "--buffer", "100"),
        *("--process-rate", "400", "--json", "--quiet"),
    )
    log = log_factory(base_port)
    alpha = procs.lab("producer", "--port", port, "--mps", "400", "--name", "alpha", "--quiet")
    beta = procs.lab(
        "producer", "--port", port, "--mps", "400", "--name", "beta", "--json", "--quiet"
    )
    dashboard = ptys([sys.executable, "-m", "lab", "visualize", "--port", port], rows=30, cols=100)
    wait_for(lambda: log.row("alpha").get("processed") and log.row("beta").get("processed"),
             20, "both producers served")  # fmt: skip
    # Each gets its share of a worker of 400 msg/s: about 200 msg/s.
    share = {name: _processed_over(log, name, 1.5) for name in ("alpha", "beta")}
    assert min(share.values()) >= 0.6 * max(share.values()), share
    assert sum(share.values()) == pytest.approx(400 * 1.5, rel=0.35), share
    # The dashboard shows one row per producer.
    wait_for(lambda: "alpha" in dashboard.text() and "beta" in dashboard.text(), 15,
             "per-producer rows on the dashboard")  # fmt: skip

    alpha.popen.kill()
    wait_for(lambda: log.row("alpha").get("active") is False, 6, "alpha's credit to be reclaimed")
    assert log.row("alpha")["credit"] == 0
    wait_for(lambda: log.consumer()["credit_outstanding"] <= 100, 5, "credit within the buffer")
    # beta keeps going and now gets the whole worker (about twice its share).
    assert _processed_over(log, "beta", 1.5) >= 1.5 * share["beta"], share
    beta.signal(signal.SIGINT)
    assert beta.wait(20) == 0, beta.stderr
    consumer.signal(signal.SIGINT)
    assert consumer.wait(20) == 0, consumer.stderr
    b, c = beta.json(), consumer.json()
    assert b["lost"] == 0 and b["duplicates"] == 0 and b["identity_errors"] == []
    # beta's messages were each processed exactly once, in order.
    assert b["processed"] == b["produced"] == c["producers"]["beta"]["processed"]
    assert c["out_of_order"] == 0 and c["dropped"] == 0
    assert c["identity_errors"] == []
    assert log.check_identities() > 20


# -- visualizers die, and start first ----------------------------------------------------------
def test_visualizers_killed_and_restarted_leave_the_data_path_alone(procs, base_port):
    """SIGKILL a dashboard again and again while data flows: the producer keeps its pace and
    every message gets through, as fast as before (the consumer takes them as they come,
    so the numbers do not depend on how busy the machine is)."""
    lam = 400.0
    port = str(base_port)
    consumer = procs.lab(
        "consumer", "--port", port, "--mode", "drop", "--process-rate", "max", "--json", "--quiet"
    )
    producer = procs.lab(
        "producer", "--port", port, "--mps", str(lam), "--duration", "5", "--json", "--quiet"
    )
    restarts = 0
    while producer.running() and restarts < 5:
        visualizer = procs.lab("visualize", "--port", port, "--plain")
        wait_for(lambda v=visualizer: "mode=drop" in v.peek(), 15, "the dashboard's first line")
        visualizer.popen.kill()
        visualizer.wait(10)
        restarts += 1
    assert restarts >= 2
    assert producer.wait(20) == 0, producer.stderr
    consumer.signal(signal.SIGINT)
    assert consumer.wait(20) == 0, consumer.stderr
    c, p = consumer.json(), producer.json()
    assert c["identity_errors"] == [] and p["identity_errors"] == []
    assert p["in_flight"] == 0 and p["lost"] == 0
    assert p["achieved_mps"] == pytest.approx(lam, rel=0.03)
    assert c["received"] == c["processed"] == p["produced"] == p["accepted"]
    assert p["latency_p99_ms"] < 1000


def test_visualizer_first_then_producer_then_consumer(procs, base_port):
    """The worst start order: the producer says the consumer is unreachable and keeps
    trying; when the consumer comes, everything it made is delivered."""
    port = str(base_port)
    visualizer = procs.lab("visualize", "--port", port, "--plain", "--duration", "60")
    wait_for(lambda: "waiting for the consumer" in visualizer.peek(), 15, "the waiting line")
    producer = procs.lab("producer", "--port", port, "--mps", "100", "--json")
    line = wait_for(lambda: "consumer down" in producer.peek("stderr"), 8, "the producer")
    assert line and producer.running()
    assert f"127.0.0.1:{port}" in producer.stderr and "still trying" in producer.stderr
    consumer = procs.lab("consumer", "--port", port, "--process-rate", "max", "--json", "--quiet")
    wait_for(lambda: "consumer is back" in producer.peek("stderr"), 15, "the connection")
    wait_for(lambda: "healthy" in visualizer.peek(), 15, "the dashboard to show the flow")
    producer.signal(signal.SIGINT)
    assert producer.wait(20) == 0, producer.stderr
    consumer.signal(signal.SIGINT)
    assert consumer.wait(20) == 0, consumer.stderr
    c, p = consumer.json(), producer.json()
    assert p["lost"] == 0 and p["in_flight"] == 0 and p["identity_errors"] == []
    assert c["received"] == p["produced"] > 200  # made while waiting, delivered later
    assert c["processed"] == c["received"] and c["identity_errors"] == []


# -- the books close in every snapshot, whatever the mode -------------------------------------
def test_identities_hold_in_every_snapshot_across_live_mode_switches(procs, base_port, log_factory):
    from lab.core.modes import MODES
    from lab.processes.control import send_command

    port = str(base_port)
    consumer = procs.lab(
        *("consumer", "--port", port, "--buffer", "50", "--process-rate", "300"),
        *("--json", "--quiet"),
    )
    log = log_factory(base_port)
    fast = procs.lab(
        *("producer", "--port", port, "--mps", "400", "--name", "fast"),
        *("--retry", "backoff", "--json", "--quiet"),
    )
    slow = procs.lab("producer", "--port", port, "--mps", "150", "--name", "slow", "--json")
    wait_for(lambda: log.row("fast") and log.row("slow"), 20, "both producers")
    for mode in list(MODES) + ["block", "drop"]:
        reply = send_command("127.0.0.1", base_port, {"cmd": "mode", "value": mode}, timeout=5)
        assert reply["ok"], reply
        switched = wait_for(lambda m=mode: (log.consumer() or {}).get("mode") == m and
                            log.consumer(), 10, f"mode {mode}")  # fmt: skip
        wait_for(lambda s=switched: log.after(s["uptime_s"] + 0.3), 10, "traffic in this mode")
    for producer in (fast, slow):
        producer.signal(signal.SIGINT)
        assert producer.wait(20) == 0, producer.stderr
    consumer.signal(signal.SIGINT)
    assert consumer.wait(20) == 0, consumer.stderr
    c = consumer.json()
    assert c["identity_errors"] == []
    for producer in (fast, slow):
        p = producer.json()
        theirs = c["producers"][p["name"]]
        assert p["identity_errors"] == [] and p["in_flight"] == 0
        assert p["lost"] == 0 and p["duplicates"] == 0
        assert p["produced"] == theirs["received"]
        assert [p[k] for k in VERDICTS] == [theirs[k] for k in VERDICTS]
    assert log.check_identities() > 50


# -- fault switches for demos -----------------------------------------------------------------
def test_timed_slowdown_and_stall(procs, base_port, log_factory):
    port = str(base_port)
    procs.lab(
        *("consumer", "--port", port, "--mode", "drop", "--buffer", "50"),
        *("--process-rate", "200", "--slowdown-at", "1", "--slowdown-factor", "4"),
        *("--slowdown-for", "1.5", "--stall-at", "3", "--stall-for", "1.5", "--quiet"),
    )
    log = log_factory(base_port)
    procs.lab("producer", "--port", port, "--mps", "300", "--quiet")
    slowed = wait_for(lambda: (log.consumer() or {}).get("slowdown") == 4 and log.consumer(),
                      10, "the slowdown")  # fmt: skip
    assert slowed["service_rate"] == pytest.approx(50)
    wait_for(lambda: log.consumer()["slowdown"] == 1 and log.consumer()["uptime_s"] > 2.4, 10,
             "full speed again")  # fmt: skip

    def stall_time():
        events = (log.consumer() or {}).get("events", [])
        return next((t for t, text in events if "worker stalled for 1.5 s" in text), None)

    stalled_at = wait_for(stall_time, 10, "the stall")
    wait_for(lambda: log.after(stalled_at + 1.6), 10, "the stall to end")
    during = [
        s["totals"]["processed"]
        for s in log.snapshots
        if s["role"] == "consumer" and stalled_at + 0.1 <= s["uptime_s"] <= stalled_at + 1.4
    ]
    assert len(during) >= 5 and max(during) - min(during) <= 1, during
    assert log.check_identities() > 10


def test_demo_keys_in_a_tiny_terminal(ptys, base_port, log_factory):
    """``bplab demo`` on a 40x12 terminal: s slows the consumer, r restores, x stalls, q
    quits, and no child is left behind."""
    demo = ptys(
        [sys.executable, "-m", "lab", "demo", "12", "--port", str(base_port)]
        + ["--slowdown-factor", "3", "--stall-for", "2", "--duration", "60"],
        rows=12,
        cols=40,
    )
    log = log_factory(base_port)
    wait_for(lambda: log.consumer() and demo.text(), 20, "the demo's consumer and dashboard")
    kids = psutil.Process(demo.pid).children(recursive=True)
    demo.type("s")
    wait_for(lambda: log.consumer()["slowdown"] == 3, 10, "s to slow the worker down")
    demo.type("r")
    wait_for(lambda: log.consumer()["slowdown"] == 1, 10, "r to restore it")
    demo.type("x")
    wait_for(lambda: any("stalled for 2 s" in e[1] for e in log.consumer()["events"]), 10,
             "x to stall it")  # fmt: skip
    demo.type("q")
    assert demo.wait(30) == 0, demo.text()[-3000:]
    assert "stopped: q pressed" in demo.text()
    gone, alive = psutil.wait_procs(kids, timeout=10)
    assert alive == [], f"left running: {alive}"


# -- safe defaults and clean stops -------------------------------------------------------------
def test_every_socket_listens_on_loopback_only(procs, base_port, tap_factory, capsys):
    consumer = procs.lab("consumer", "--port", str(base_port), "--quiet")
    process = psutil.Process(consumer.pid)

    def listening():
        found = [c for c in process.net_connections(kind="inet") if c.status == "LISTEN"]
        return found if len(found) == 4 else None

    sockets = wait_for(listening, 15, "the consumer's four sockets")
    assert sorted(c.laddr.port for c in sockets) == [base_port + i for i in range(4)]
    assert {c.laddr.ip for c in sockets} == {"127.0.0.1"}
    from lab.ui.cli import main

    with pytest.raises(SystemExit):
        main(["consumer", "--help"])
    help_text = " ".join(re.sub(r"[│╭╮╰╯─]", " ", capsys.readouterr().out).split())
    assert "127.0.0.1" in help_text and "0.0.0.0 exposes" in help_text


@pytest.mark.parametrize("first, second", [(signal.SIGINT, signal.SIGTERM)])
def test_producers_and_visualizers_stop_cleanly_on_sigint_and_sigterm(
    procs, base_port, log_factory, first, second
):
    port = str(base_port)
    procs.lab("consumer", "--port", port, "--quiet")
    log = log_factory(base_port)
    producers = [
        procs.lab("producer", "--port", port, "--name", name, "--json") for name in ("one", "two")
    ]
    visualizers = [procs.lab("visualize", "--port", port, "--plain", "--json") for _ in "ab"]
    wait_for(lambda: log.row("one") and log.row("two"), 20, "both producers")
    for process in visualizers:
        wait_for(lambda v=process: "mode=" in v.peek(), 15, "a dashboard line")
    for process, signum in zip(producers + visualizers, (first, second) * 2):
        process.signal(signum)
    for process, signum in zip(producers + visualizers, (first, second) * 2):
        assert process.wait(15) == 0, process.stderr
        assert process.json()["stop_reason"] == signal.Signals(signum).name
    assert all("producer summary" in p.stderr for p in producers)


@pytest.mark.parametrize(
    "argv, words",
    [
        (["consumer", "--buffer", "2000000000"], ["--buffer", "1,000,000,000", "unbounded"]),
        (["consumer", "--buffer", "abc"], ["--buffer", "integer"]),
        (["consumer", "--retry-after-ms", "4000000"], ["--retry-after-ms", "3600000"]),
        (["consumer", "--bind", "nowhere.invalid"], ["--bind", "not an address"]),
        (["consumer", "--record", "{dir}"], ["--record", "cannot be written"]),
        (["producer", "--max-attempts", "256"], ["--max-attempts", "255"]),
        (["producer", "--spike-factor", "1e12"], ["--spike-factor", "--mps max"]),
        (["producer", "--record", "{dir}"], ["--record", "cannot be written"]),
        (["producer", "--priority-mix", "1e308,1e308"], ["--priority-mix", "finite"]),
        (["visualize", "--record", "{dir}"], ["--record", "cannot be written"]),
        (["demo", "--slowdown-factor", "0"], ["--slowdown-factor", "> 0"]),
        (["demo", "--stall-at", "-1"], ["--stall-at", ">= 0"]),
        (["ctl", "mode", "turbo"], ["mode", "block", "drop"]),
        (["ctl", "slow", "inf"], ["slow", "finite"]),
        (["ctl", "spike", "--factor", "-2"], ["--factor", "> 0"]),
    ],
)
def test_more_bad_flags_exit_2_with_one_clear_line(argv, words, base_port, tmp_path, capsys):
    from lab.ui.cli import main

    argv = [arg.replace("{dir}", str(tmp_path)) for arg in argv]
    if argv[0] in ("consumer", "producer", "visualize", "demo"):
        argv += ["--port", str(base_port)]
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    for word in words:
        assert word in lines[0]


def test_a_retry_after_too_long_for_the_wire_is_clamped_not_fatal():
    """A token bucket at 1e-300 tokens/s asks for a retry-after of ~1e300 s: the consumer
    (it used to die on struct.error) sends the longest the wire can carry."""
    from lab.core import protocol
    from lab.core.config import ConsumerConfig
    from lab.core.consumer_core import ConsumerCore

    core = ConsumerCore(ConsumerConfig(mode="admit", admit_rate=1e-300, admit_burst=1), 0.0)
    records = [protocol.Record(seq, 0.0, 0.0) for seq in range(5)]
    core.on_frame(b"p", protocol.encode_data(records), 0.0)
    core.advance(0.0)
    frames = [frame for _, frame in core.take_outgoing()]
    runs = [run for frame in frames for run in protocol.decode_verdicts(frame).runs]
    shed = [run for run in runs if run.kind == protocol.SHED]
    assert shed and all(run.retry_after_ms == protocol.MAX_RETRY_MS for run in shed), runs


# -- the same, in simulated time: random restarts ---------------------------------------------
@settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    mode=st.sampled_from(["block", "drop", "drop-oldest", "sample", "shed"]),
    capacity=st.integers(1, 30),
    rate=st.floats(5.0, 80.0),
    gaps=st.lists(st.tuples(st.floats(0.05, 1.5), st.floats(0.0, 1.0)), max_size=3),
    latency=st.sampled_from([0.0, 0.003]),
)
def test_random_consumer_restarts_keep_the_books_and_lose_nothing(
    mode, capacity, rate, gaps, latency
):
    """The cores through ``lab.tools.sim`` with consumers killed and restarted at random times:
    every identity holds at every step, and in block mode every message is processed."""
    from unittest import mock

    from lab.core.config import ConsumerConfig, ProducerConfig
    from lab.tools import sim

    original = sim._next_time

    def checking_next_time(now, consumer, producers, *rest):
        if consumer is not None:
            assert consumer.identity_errors() == [], now
        for producer in producers:
            assert producer.counts.identity_errors() == [], (producer.name, now)
        return original(now, consumer, producers, *rest)

    kills, at = [], 0.0
    for gap, down in gaps:  # (time alive, time down): one kill after the other
        kills.append((at + gap, down))
        at += gap + down
    retry = "backoff" if mode == "shed" else "none"
    with mock.patch.object(sim, "_next_time", checking_next_time):
        result = sim.simulate(
            ConsumerConfig(mode=mode, capacity=capacity, process_rate=20.0),
            [
                ProducerConfig(messages_per_s=rate, retry=retry),
                ProducerConfig(messages_per_s=rate / 3),
            ],
            duration=4.0,
            drain=8.0,
            latency=latency,
            consumer_restarts=kills,
        )
    assert len(result.dead_consumers) == len(kills)
    for summary in [result.consumer, *result.dead_consumers, *result.producers]:
        assert summary["identity_errors"] == []
    for p in result.producers:
        assert p["lost"] == 0 and p["in_flight"] == 0 and p["duplicates"] == 0
        if mode == "block":
            assert p["processed"] == p["produced"] == p["accepted"], p
            assert p["unconfirmed"] == 0
