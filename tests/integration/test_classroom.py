"""Classroom mode on loopback: CURVE on every socket, join codes, refusals counted, the
non-loopback bind rule, and forty producers sharing one consumer's credit exactly."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest
import zmq

from lab.processes import classroom, net, security
from lab.processes.control import send_command
from tests.conftest import wait_for

pytestmark = pytest.mark.integration


class CurveTap:
    """A telemetry subscriber that is a CURVE client (any client key may read telemetry)."""

    def __init__(self, port: int, keys: security.ClientKeys) -> None:
        self.ctx = zmq.Context()
        self.sub = net.telemetry_subscriber(self.ctx)
        security.secure_client(self.sub, keys)
        self.sub.connect(net.endpoint("127.0.0.1", port + net.TELEMETRY_OUT_OFFSET))
        self.latest: Optional[Dict[str, Any]] = None
        self.seen: List[Dict[str, Any]] = []

    def consumer(self) -> Optional[Dict[str, Any]]:
        for snapshot in net.waiting_snapshots(self.sub):
            if snapshot is not None and snapshot.get("role") == "consumer":
                self.latest = snapshot
                self.seen.append(snapshot)
        return self.latest

    def close(self) -> None:
        self.sub.close(linger=0)
        self.ctx.term()


def wait_up(tap: CurveTap, consumer) -> None:
    """The consumer's first snapshot; a busy 2-core machine may take a while to start it."""
    try:
        wait_for(tap.consumer, 40, "the classroom consumer's first snapshot")
    except AssertionError:
        alive = "running" if consumer.running() else f"exited {consumer.popen.returncode}"
        raise AssertionError(f"no snapshot; consumer {alive}: {consumer.peek('stderr')}") from None


@pytest.fixture
def room(tmp_path, procs, base_port):
    """A classroom consumer (drop mode, fast worker) and what a test needs to talk to it."""
    key_file = tmp_path / "keys.json"
    keys = security.load_or_create(key_file)
    consumer = procs.lab(
        *("consumer", "--classroom", "--key-file", str(key_file), "--port", str(base_port)),
        *("--process-rate", "max", "--json", "--quiet"),
    )
    tap = CurveTap(base_port, security.ClientKeys.fresh(keys.server_public))
    try:
        wait_up(tap, consumer)
        yield {"keys": keys, "port": base_port, "consumer": consumer, "tap": tap}
    finally:
        tap.close()


def _refused(tap: CurveTap, domain: str, reason: str) -> int:
    snapshot = tap.consumer() or {}
    return snapshot.get("security", {}).get("refused", {}).get(domain, {}).get(reason, 0)


def test_a_producer_with_the_join_code_joins_over_curve(room, procs):
    code = classroom.make_join_code(room["keys"], "127.0.0.1", room["port"])
    producer = procs.lab("join", code, "--mps", "200", "--name", "alice", "--duration", "2")
    assert producer.wait(30) == 0, producer.stderr
    tap = room["tap"]

    def alice_processed():
        rows = (tap.consumer() or {}).get("producers", [])
        return next((r["processed"] for r in rows if r["name"] == "alice"), 0) >= 300

    wait_for(alice_processed, 15, "alice's messages processed by the classroom consumer")
    assert (tap.consumer() or {})["security"]["refused_total"] == 0


def test_a_producer_with_a_wrong_server_key_cannot_connect_and_is_counted(room, procs):
    wrong = zmq.curve_keypair()[0].decode()
    producer = procs.lab(
        *("producer", "--port", str(room["port"]), "--server-key", wrong),
        *("--mps", "100", "--name", "mallory", "--duration", "1.5", "--json", "--quiet"),
    )
    assert producer.wait(30) == 0, producer.stderr
    summary = producer.json()
    assert summary["accepted"] == 0 and summary["identity_errors"] == []
    wait_for(lambda: _refused(room["tap"], "data", "wrong_key") >= 1, 10, "a wrong_key refusal")
    names = [r["name"] for r in (room["tap"].consumer() or {}).get("producers", [])]
    assert "mallory" not in names


def test_only_the_instructor_can_change_the_mode(room):
    keys, port = room["keys"], room["port"]
    attendee = security.ClientKeys.fresh(keys.server_public)
    with pytest.raises(TimeoutError):
        send_command("127.0.0.1", port, {"cmd": "mode", "value": "block"}, 1.0, keys=attendee)
    wait_for(lambda: _refused(room["tap"], "control", "unauthorised") >= 1, 10, "the refusal")
    instructor = security.ClientKeys.instructor(keys)
    reply = send_command("127.0.0.1", port, {"cmd": "status"}, 5.0, keys=instructor)
    assert reply["ok"] and reply["mode"] == "drop"
    reply = send_command("127.0.0.1", port, {"cmd": "mode", "value": "block"}, 5.0, keys=instructor)
    assert reply["ok"] and reply["mode"] == "block"


def test_plain_text_frames_to_a_curve_socket_are_refused(room):
    """libzmq reports most such handshakes as a mechanism mismatch, and some (the peer
    closed mid-greeting) with no detail: both are refusals of the data socket."""

    def refused():
        return _refused(room["tap"], "data", "plaintext") + _refused(room["tap"], "data", "other")

    ctx = zmq.Context()
    dealer = ctx.socket(zmq.DEALER)
    dealer.linger = 0
    try:
        dealer.connect(net.endpoint("127.0.0.1", room["port"]))
        for _ in range(10):
            dealer.send(b"\x01not a frame", zmq.NOBLOCK)
        wait_for(refused, 10, "the plain-text client's refusal")
    finally:
        dealer.close(linger=0)
        ctx.term()
    snapshot = room["tap"].consumer()
    assert snapshot["malformed"] == 0 and snapshot["totals"]["received"] == 0


def test_raw_tcp_garbage_at_every_curve_socket_breaks_nothing(room):
    import socket

    for offset in range(net.PORTS_PER_MODULE):
        with socket.create_connection(("127.0.0.1", room["port"] + offset), timeout=5) as raw:
            raw.sendall(b"\xff" + b"\x00" * 8 + b"\x7f" + b"garbage" * 100)
    code = classroom.make_join_code(room["keys"], "127.0.0.1", room["port"])
    host, port, keys = classroom.join_target(code)
    reply = send_command(
        host, port, {"cmd": "status"}, 5.0, security.ClientKeys.instructor(room["keys"])
    )
    assert reply["ok"] and room["consumer"].running()
    assert keys.server_public == room["keys"].server_public


def test_a_non_loopback_bind_needs_classroom_or_insecure(procs, base_port):
    refused = procs.lab("consumer", "--bind", "0.0.0.0", "--port", str(base_port))
    assert refused.wait(20) == 2
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and "--classroom" in lines[0] and "--insecure" in lines[0]
    allowed = procs.lab(
        *("consumer", "--bind", "0.0.0.0", "--insecure", "--port", str(base_port)),
        *("--duration", "0.5", "--json", "--quiet"),
    )
    assert allowed.wait(20) == 0, allowed.stderr
    assert allowed.json()["role"] == "consumer"


@pytest.mark.parametrize("damage", [lambda c: c[:-6], lambda c: c.replace(c[3], "U", 1)])
def test_a_malformed_join_code_is_one_line_and_exit_2(procs, damage):
    keys = security.RoomKeys(*(zmq.curve_keypair() + zmq.curve_keypair()))
    code = classroom.make_join_code(keys, "192.168.1.5", 12000)
    joined = procs.lab("join", damage(code))
    assert joined.wait(20) == 2
    lines = joined.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bplab join: error: join code"), lines


def test_forty_producers_share_the_credit_exactly(tmp_path, procs, base_port):
    """Block mode, buffer 80, a share cap of 2 (2.5%): every one of 40 producers holds at most
    2 slots of buffer and credit in every snapshot (exact, not timing), all 40 join, and
    every producer's accounting closes on both sides. Four processes of ten producers."""
    key_file = tmp_path / "keys.json"
    keys = security.load_or_create(key_file)
    port = str(base_port)
    consumer = procs.lab(
        *("consumer", "--classroom", "--key-file", str(key_file), "--port", port),
        *("--mode", "block", "--buffer", "80", "--process-rate", "40"),
        *("--per-producer-limit", "0.025", "--json", "--quiet"),
    )
    tap = CurveTap(base_port, security.ClientKeys.fresh(keys.server_public))
    try:
        wait_up(tap, consumer)
        swarms = [
            procs.start(
                [sys.executable, "-m", "lab.tools.swarm", "--count", "10", "--mps", "4"]
                + ["--port", port, "--server-key", keys.server_public.decode()]
                + ["--duration", "8", "--prefix", f"s{i}"]
            )
            for i in range(4)
        ]
        joined = set()  # producers the consumer has accepted from, in any snapshot

        def everyone_joined():
            # On a busy machine the four swarms start seconds apart, so the first may be
            # leaving while the last joins: count each producer once it has been served.
            for row in (tap.consumer() or {}).get("producers", []):
                if row["accepted"] > 0:
                    joined.add(row["name"])
            return len(joined) == 40

        wait_for(everyone_joined, 60, "all 40 producers accepted at least once")
        for swarm in swarms:
            assert swarm.wait(60) == 0, swarm.stderr
        tap.consumer()
    finally:
        tap.close()
    consumer.signal(signal.SIGTERM)
    assert consumer.wait(30) == 0, consumer.stderr
    summary = consumer.json()
    footprints = [
        row["depth"] + (row["credit"] or 0)
        for snapshot in tap.seen
        for row in snapshot["producers"]
        if row["active"]
    ]
    assert footprints and max(footprints) <= 2
    assert summary["identity_errors"] == [] and summary["over_credit"] == 0
    assert len(summary["producers"]) == 40
    for swarm in swarms:
        for name, producer in json.loads(swarm.stdout.strip().splitlines()[-1]).items():
            assert producer["identity_errors"] == [], name
            assert producer["accepted"] >= 1, name


def test_the_key_file_is_private_and_reused(tmp_path):
    path = Path(tmp_path) / "dir" / "keys.json"
    first = security.load_or_create(path)
    assert (path.stat().st_mode & 0o777) == 0o600
    assert security.load_or_create(path) == first
    path.chmod(0o644)
    with pytest.raises(security.KeyFileError, match="other users may read it"):
        security.load(path)
    path.chmod(0o600)
    path.write_text("{}")
    with pytest.raises(security.KeyFileError, match="not a classroom key file"):
        security.load(path)


def test_fuzzing_a_curve_consumer_counts_every_bad_frame_and_a_producer_is_unaffected(
    tmp_path, procs, base_port
):
    """``test_fuzz.py``'s first test, against a classroom consumer: the fuzzer holds the
    instructor's keys, so its frames pass CURVE and must be counted exactly, while an
    attendee's producer (its own key) runs beside it; then raw TCP garbage on every port."""
    key_file = tmp_path / "keys.json"
    keys = security.load_or_create(key_file)
    port = str(base_port)
    consumer = procs.lab(
        *("consumer", "--classroom", "--key-file", str(key_file), "--port", port),
        *("--mode", "drop", "--process-rate", "max", "--json", "--quiet"),
    )
    tap = CurveTap(base_port, security.ClientKeys.fresh(keys.server_public))
    try:
        wait_up(tap, consumer)
        producer = procs.lab(
            *("producer", "--port", port, "--server-key", keys.server_public.decode()),
            *("--mps", "300", "--name", "legit", "--duration", "6", "--json", "--quiet"),
        )
        fuzzer = procs.script(
            "scripts/fuzz_consumer.py",
            *("consumer", "--port", port, "--key-file", str(key_file)),
            *("--frames", "20000", "--mutants", "2000", "--raw", "0"),
        )
        assert fuzzer.wait(90) == 0, fuzzer.stderr
        report = fuzzer.json()
        expected = report["expected_malformed"]
        assert report["control_replies"] == report["control_errors"] == report["control_requests"]

        def counted():
            snapshot = tap.consumer() or {}
            return snapshot.get("malformed", 0), snapshot.get("telemetry_malformed", 0)

        wrong_shape = report["relay_wrong_shape"]
        wait_for(
            lambda: counted()[0] >= expected and counted()[1] >= wrong_shape,
            30,
            f"{expected:,} malformed frames and {wrong_shape:,} relayed snapshots counted",
        )  # the relay is read apart from the data, and may still be catching up
        assert counted() == (expected, report["relay_wrong_shape"])
        raw = procs.script(
            "scripts/fuzz_consumer.py",
            *("consumer", "--port", port, "--frames", "0", "--mutants", "0"),
            *("--telemetry", "0", "--control", "0", "--raw", "10"),
        )
        assert raw.wait(60) == 0, raw.stderr
        assert producer.wait(30) == 0, producer.stderr
        wait_for(lambda: (tap.consumer() or {})["security"]["refused_total"] >= 1, 10, "refusals")
    finally:
        tap.close()
    assert consumer.running(), "the consumer died under fuzzing"
    consumer.signal(signal.SIGINT)
    assert consumer.wait(30) == 0, consumer.stderr
    c, p = consumer.json(), producer.json()
    assert c["identity_errors"] == [] and p["identity_errors"] == []
    assert p["malformed"] == 0 and p["in_flight"] == 0 and p["lost"] == 0
    mine = c["producers"]["legit"]
    assert (mine["received"], mine["accepted"]) == (p["produced"], p["accepted"])
    # Garbage without CURVE never reaches the lab: the count is the authenticated fuzzer's.
    assert c["malformed"] == expected


def test_an_attendee_on_a_terminal_sees_their_own_dashboard(room, ptys):
    code = classroom.make_join_code(room["keys"], "127.0.0.1", room["port"])
    attendee = ptys(
        [sys.executable, "-m", "lab", "join", code, "--name", "ada", "--duration", "3"], 24, 80
    )
    wait_for(lambda: "ada · consumer mode DROP · connected" in attendee.text(), 20, "the view")
    wait_for(lambda: not attendee.running(), 30, "the attendee's producer to stop")
    text = attendee.text()
    assert "latency" in text and "accepted" in text and "producer summary:" in text


@pytest.mark.parametrize(
    "args, words",
    [
        (("consumer", "--per-producer-limit", "0.5"), "add --classroom"),
        (("consumer", "--classroom", "--per-producer-limit", "2"), "at most 1"),
        (("producer", "--server-key", "abc"), "40-character z85"),
        (("ctl", "status", "--classroom"), "no classroom key file"),
    ],
)
def test_bad_classroom_flags_are_one_line_and_exit_2(tmp_path, procs, args, words):
    env = {"XDG_CONFIG_HOME": str(tmp_path)}  # no key file there, and none is left behind
    bad = procs.lab(*args, env=env)
    assert bad.wait(20) == 2
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], lines
    assert not (tmp_path / "bplab").exists()


def test_two_attendees_with_the_same_name_are_two_producers(room, procs):
    code = classroom.make_join_code(room["keys"], "127.0.0.1", room["port"])
    twins = [
        procs.lab("join", code, "--name", "ada", "--mps", "100", "--duration", "2", "--json")
        for _ in range(2)
    ]
    summaries = []
    for twin in twins:
        assert twin.wait(30) == 0, twin.stderr
        summaries.append(twin.json())
    assert all(s["accepted"] > 0 and s["identity_errors"] == [] for s in summaries)
    room["consumer"].signal(signal.SIGTERM)
    assert room["consumer"].wait(30) == 0
    books = room["consumer"].json()["producers"]
    assert set(books) == {"ada", "ada#2"}
    assert sorted(b["received"] for b in books.values()) == sorted(s["produced"] for s in summaries)
