"""A test against a peer we did not write: a raw pyzmq producer built from docs/protocol.md.

Everything a peer does here (frame layouts, the handshake, credit, verdict runs, the
telemetry message) is written from the document alone, with ``struct``, ``json`` and
``zmq``; nothing is imported from ``lab``. The consumer is the real ``python -m lab
consumer`` process. If the consumer and the document drift apart, these tests fail.

Every wait has a deadline (a socket poll with a timeout, or ``wait_for``); nothing sleeps
and hopes.
"""

from __future__ import annotations

import json
import re
import signal
import struct
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import pytest
import zmq

from tests.conftest import REPO, wait_for

pytestmark = pytest.mark.integration

# -- the protocol, as docs/protocol.md states it ----------------------------------------------
MAGIC, VERSION = b"BP", 2
HELLO, WELCOME, DATA, VERDICTS, BYE, CONTROL = 1, 2, 3, 4, 5, 6
ACCEPTED, DROPPED, SAMPLED_OUT, SHED, EVICTED, PROCESSED = 1, 2, 3, 4, 5, 6
FIRST_VERDICTS = (ACCEPTED, DROPPED, SAMPLED_OUT, SHED)
HEADER = struct.Struct("<2sBB")
DATA_HEAD = struct.Struct("<IQI")  # record count, first_ordinal, deadline_ms (0: none)
RECORD = struct.Struct("<QddBBI")
VERDICTS_HEAD = struct.Struct("<QI")
RUN = struct.Struct("<BQII")
NO_CREDIT_LIMIT = 0xFFFF_FFFF_FFFF_FFFF
MAX_JSON_BYTES = 16 * 1024
TELEMETRY_TOPIC = b"bplab.v1"
HANDSHAKE_RETRY_S, HEARTBEAT_S = 0.05, 0.5

Record = Tuple[int, float, float, int, int, bytes]  # seq, due, sent, priority, attempt, payload


def frame(kind: int, body: bytes = b"", *, magic: bytes = MAGIC, version: int = VERSION):
    return HEADER.pack(magic, version, kind) + body


def json_frame(kind: int, body: Dict[str, Any]) -> bytes:
    return frame(kind, json.dumps(body).encode())


def make_records(first: int, count: int, payload: bytes = b"") -> List[Record]:
    now = time.time()
    return [(seq, now, now, 0, 0, payload) for seq in range(first, first + count)]


def data_body(records: Sequence[Record], first_ordinal: int, count: Optional[int] = None):
    parts = [DATA_HEAD.pack(len(records) if count is None else count, first_ordinal, 0)]
    for seq, due, sent, priority, attempt, payload in records:
        parts.append(RECORD.pack(seq, due, sent, priority, attempt, len(payload)) + payload)
    return b"".join(parts)


def data_frame(records: Sequence[Record], first_ordinal: int) -> bytes:
    return frame(DATA, data_body(records, first_ordinal))


class RawProducer:
    """A producer written from the document: DEALER, HELLO/WELCOME, DATA, VERDICTS, BYE.

    It is strict about what the consumer sends: any frame that does not follow the document
    fails the test. Verdicts are kept per sequence number, in arrival order.
    """

    def __init__(self, ctx: zmq.Context, port: int, name: str) -> None:
        self.name = name
        self.sock = ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.ROUTING_ID, name.encode())
        self.sock.setsockopt(zmq.IMMEDIATE, 1)
        self.sock.connect(f"tcp://127.0.0.1:{port}")
        self.welcome: Optional[Dict[str, Any]] = None
        self.welcomes = 0
        self.credit_limit: Optional[int] = None  # None: no credit in use
        self.credit_limits_seen: List[int] = []
        self.sent = 0  # our ordinal: records put on the wire so far
        self.by_seq: Dict[int, List[int]] = {}
        self.counts = dict.fromkeys(range(1, 7), 0)
        self.control: List[Dict[str, Any]] = []
        self._next_hello = 0.0

    # -- sending ------------------------------------------------------------------------------
    def send(self, message: bytes) -> None:
        self.sock.send(message, zmq.NOBLOCK)

    def send_data(self, records: Sequence[Record]) -> None:
        """One DATA frame; its first_ordinal is the number of records sent before it."""
        self.send(data_frame(records, self.sent))
        self.sent += len(records)

    def credit_left(self) -> Optional[int]:
        return None if self.credit_limit is None else self.credit_limit - self.sent

    def bye(self) -> None:
        self.send(json_frame(BYE, {"producer": self.name}))

    def close(self) -> None:
        self.sock.close(linger=0)

    # -- receiving ----------------------------------------------------------------------------
    def handshake(self, timeout: float = 15.0) -> Dict[str, Any]:
        """HELLO every 50 ms until a WELCOME arrives (the consumer may still be starting)."""
        deadline = time.monotonic() + timeout
        while self.welcome is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"no WELCOME within {timeout:g} s")
            self.pump(0.02)
        return self.welcome

    def hello(self) -> None:
        """Send a HELLO now; the next one follows after 50 ms (no WELCOME yet) or 0.5 s."""
        try:
            self.send(json_frame(HELLO, {"producer": self.name, "pid": 0, "sent": self.sent}))
        except zmq.Again:
            pass  # IMMEDIATE: not connected yet
        interval = HEARTBEAT_S if self.welcome is not None else HANDSHAKE_RETRY_S
        self._next_hello = time.monotonic() + interval

    def pump(self, timeout: float = 0.0) -> None:
        """Heartbeat if due, then read everything that arrives within ``timeout`` seconds."""
        if time.monotonic() >= self._next_hello:
            self.hello()
        wait_ms = int(timeout * 1000)
        while self.sock.poll(wait_ms):
            self._on_frame(self.sock.recv())
            wait_ms = 0

    def wait(self, condition: Callable[[], Any], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
            self.pump(0.02)

    def _on_frame(self, message: bytes) -> None:
        assert len(message) >= HEADER.size, f"frame of {len(message)} bytes from the consumer"
        magic, version, kind = HEADER.unpack_from(message)
        assert (magic, version) == (MAGIC, VERSION), message[:4]
        if kind == WELCOME:
            body = message[HEADER.size :]
            assert len(body) <= MAX_JSON_BYTES
            welcome = json.loads(body)
            assert isinstance(welcome, dict) and isinstance(welcome["session"], str)
            if self.welcome is not None:
                assert welcome["session"] == self.welcome["session"], "consumer restarted?"
            else:
                self.credit_limit = welcome["credit_limit"]
            self.welcome = welcome
            self.welcomes += 1
        elif kind == VERDICTS:
            self._on_verdicts(message)
        elif kind == CONTROL:
            self.control.append(json.loads(message[HEADER.size :]))
        else:
            raise AssertionError(f"the consumer sent frame type {kind}")

    def _on_verdicts(self, message: bytes) -> None:
        limit, runs = VERDICTS_HEAD.unpack_from(message, HEADER.size)
        assert len(message) == HEADER.size + VERDICTS_HEAD.size + runs * RUN.size
        self.credit_limit = None if limit == NO_CREDIT_LIMIT else limit
        self.credit_limits_seen.append(limit)
        offset = HEADER.size + VERDICTS_HEAD.size
        for _ in range(runs):
            kind, first, count, retry_after_ms = RUN.unpack_from(message, offset)
            offset += RUN.size
            assert kind in self.counts, f"unknown verdict kind {kind}"
            assert count >= 1
            assert retry_after_ms == 0 or kind == SHED
            self.counts[kind] += count
            for seq in range(first, first + count):
                self.by_seq.setdefault(seq, []).append(kind)

    # -- what the verdicts say ----------------------------------------------------------------
    def first_verdicts(self) -> int:
        return sum(self.counts[kind] for kind in FIRST_VERDICTS)

    def check_verdict_rules(self) -> None:
        """Each seq: exactly one first verdict, and follow-ups only after ACCEPTED."""
        for seq, kinds in self.by_seq.items():
            assert kinds[0] in FIRST_VERDICTS, (seq, kinds)
            assert sum(kind in FIRST_VERDICTS for kind in kinds) == 1, (seq, kinds)
            if len(kinds) > 1:
                assert kinds[0] == ACCEPTED and len(kinds) == 2, (seq, kinds)
                assert kinds[1] in (EVICTED, PROCESSED), (seq, kinds)


class RawTelemetryReader:
    """A visualizer's SUB on P+1, decoding snapshots as the document says (and skipping
    anything else, since the consumer relays P+2 unchecked)."""

    def __init__(self, ctx: zmq.Context, port: int) -> None:
        self.sock = ctx.socket(zmq.SUB)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.SUBSCRIBE, TELEMETRY_TOPIC)
        self.sock.connect(f"tcp://127.0.0.1:{port + 1}")
        self.latest: Dict[str, Dict[str, Any]] = {}
        self.skipped = 0

    @staticmethod
    def decode(parts: List[bytes]) -> Optional[Dict[str, Any]]:
        if len(parts) != 2 or parts[0] != TELEMETRY_TOPIC or len(parts[1]) > 256 * 1024:
            return None
        try:
            snapshot = json.loads(parts[1])
        except ValueError:
            return None
        if not isinstance(snapshot, dict) or snapshot.get("role") not in ("consumer", "producer"):
            return None
        return snapshot if isinstance(snapshot.get("id"), str) else None

    def pump(self, timeout: float = 0.0) -> None:
        wait_ms = int(timeout * 1000)
        while self.sock.poll(wait_ms):
            snapshot = self.decode(self.sock.recv_multipart())
            if snapshot is None:
                self.skipped += 1
            else:
                self.latest[snapshot["id"]] = snapshot
            wait_ms = 0

    def wait_for(self, predicate: Callable[[Dict[str, Any]], bool], timeout: float, what: str):
        """The first snapshot (newest per id) that satisfies ``predicate``."""
        deadline = time.monotonic() + timeout
        while True:
            self.pump(0.05)
            for snapshot in self.latest.values():
                if predicate(snapshot):
                    return snapshot
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")

    def close(self) -> None:
        self.sock.close(linger=0)


# -- harness ----------------------------------------------------------------------------------
@pytest.fixture
def zctx():
    """A ZeroMQ context; every socket opened through ``raw`` is closed before it ends."""
    ctx = zmq.Context()
    try:
        yield ctx
    finally:
        ctx.destroy(linger=0)


@pytest.fixture
def raw(zctx, base_port):
    """Make raw peers on the consumer at ``base_port``; all are closed at the end."""
    made: List[Any] = []

    class Factory:
        @staticmethod
        def producer(name: str) -> RawProducer:
            made.append(RawProducer(zctx, base_port, name))
            return made[-1]

        @staticmethod
        def reader() -> RawTelemetryReader:
            made.append(RawTelemetryReader(zctx, base_port))
            return made[-1]

        @staticmethod
        def socket(kind: int) -> zmq.Socket:
            sock = zctx.socket(kind)
            sock.setsockopt(zmq.LINGER, 0)
            made.append(sock)
            return sock

    try:
        yield Factory
    finally:
        for thing in made:
            thing.close()


def start_consumer(procs, port: int, *args: str):
    return procs.lab(
        "consumer", "--port", str(port), "--json", "--quiet", "--duration", "30", *args
    )


def stop_consumer(consumer) -> Dict[str, Any]:
    """SIGINT, wait for a clean exit, return the --json summary."""
    consumer.signal(signal.SIGINT)
    assert consumer.wait(15) == 0, consumer.stderr
    return consumer.json()


# -- drop mode --------------------------------------------------------------------------------
def test_drop_mode_verdicts_add_up_and_match_the_consumer_summary(procs, base_port, raw):
    consumer = start_consumer(
        procs, base_port, "--mode", "drop", "--buffer", "20", "--process-rate", "50"
    )
    peer = raw.producer("raw-drop")
    welcome = peer.handshake()
    assert welcome["mode"] == "drop" and welcome["protocol"] == 2
    assert welcome["capacity"] == 20 and welcome["window"] == 20
    assert welcome["credit_limit"] is None
    assert re.fullmatch(r"[0-9a-f]{12}", welcome["session"])

    total = 0
    for _ in range(3):  # 300 records at once into a buffer of 20: most are dropped
        peer.send_data(make_records(total, 100, payload=b"p" * 16))
        total += 100
    peer.wait(lambda: peer.first_verdicts() == total, 10, "a first verdict for every record")
    peer.bye()
    summary = stop_consumer(consumer)

    peer.check_verdict_rules()
    assert sorted(peer.by_seq) == list(range(total))
    accepted, dropped = peer.counts[ACCEPTED], peer.counts[DROPPED]
    assert accepted + dropped == total
    assert accepted >= 20 and dropped > 0
    assert peer.counts[SAMPLED_OUT] == peer.counts[SHED] == peer.counts[PROCESSED] == 0
    assert set(peer.credit_limits_seen) == {NO_CREDIT_LIMIT}

    mine = summary["producers"]["raw-drop"]
    assert mine["received"] == total
    assert (mine["accepted"], mine["dropped"], mine["sampled_out"], mine["shed"]) == (
        accepted,
        dropped,
        0,
        0,
    )
    assert mine["over_credit"] == 0
    assert summary["malformed"] == 0 and summary["identity_errors"] == []


# -- block mode -------------------------------------------------------------------------------
def test_block_mode_raw_peer_honours_credit_and_nothing_is_lost(procs, base_port, raw):
    total, capacity = 150, 20
    consumer = start_consumer(
        procs, base_port, "--mode", "block", "--buffer", str(capacity), "--process-rate", "300"
    )
    peer = raw.producer("raw-block")
    welcome = peer.handshake()
    assert welcome["mode"] == "block" and welcome["window"] == capacity
    assert welcome["credit_limit"] == capacity  # alone, with an empty buffer: all of it

    deadline = time.monotonic() + 15
    while peer.counts[PROCESSED] < total:
        assert time.monotonic() < deadline, f"only {peer.counts[PROCESSED]} processed"
        peer.pump(0.02)
        allowed = min(total - peer.sent, peer.credit_left())
        if allowed > 0:
            assert peer.sent + allowed <= peer.credit_limit
            peer.send_data(make_records(peer.sent, allowed))
    peer.bye()
    summary = stop_consumer(consumer)

    peer.check_verdict_rules()
    assert peer.sent == total
    assert peer.counts[ACCEPTED] == peer.counts[PROCESSED] == total
    assert peer.counts[DROPPED] == 0
    assert all(kinds == [ACCEPTED, PROCESSED] for kinds in peer.by_seq.values())
    assert NO_CREDIT_LIMIT not in peer.credit_limits_seen
    assert peer.credit_limit >= total  # credit is cumulative: it grew past the capacity

    mine = summary["producers"]["raw-block"]
    assert mine["received"] == mine["accepted"] == mine["processed"] == total
    assert mine["dropped"] == 0 and mine["over_credit"] == 0
    assert summary["dropped"] == 0 and summary["over_credit"] == 0
    assert summary["identity_errors"] == []


def test_block_mode_peer_that_ignores_credit_gets_the_excess_dropped(procs, base_port, raw):
    consumer = start_consumer(
        procs, base_port, "--mode", "block", "--buffer", "10", "--process-rate", "5"
    )
    peer = raw.producer("raw-greedy")
    assert peer.handshake()["credit_limit"] == 10

    peer.send_data(make_records(0, 50))  # 40 more than the credit allows, in one frame
    peer.wait(lambda: peer.first_verdicts() == 50, 10, "a first verdict for all 50 records")
    peer.bye()
    summary = stop_consumer(consumer)

    peer.check_verdict_rules()
    first = {seq: kinds[0] for seq, kinds in peer.by_seq.items()}
    assert [seq for seq in range(50) if first[seq] == ACCEPTED] == list(range(10))
    assert [seq for seq in range(50) if first[seq] == DROPPED] == list(range(10, 50))
    mine = summary["producers"]["raw-greedy"]
    assert (mine["received"], mine["accepted"], mine["dropped"]) == (50, 10, 40)
    assert mine["over_credit"] == 40
    assert summary["over_credit"] == 40 and summary["identity_errors"] == []


# -- malformed frames -------------------------------------------------------------------------
def _malformed_cases() -> List[Tuple[str, List[bytes]]]:
    one = make_records(1000, 1)
    body = data_body(one, 0)
    return [
        ("bad magic", [frame(DATA, body, magic=b"XX")]),
        ("bad version", [frame(DATA, body, version=3)]),
        ("truncated DATA", [frame(DATA, data_body(one, 0, count=2))]),
        ("trailing bytes", [frame(DATA, body + b"\x00")]),
        ("unknown type", [frame(9, body)]),
        ("3-part message", [data_frame(one, 0), data_frame(one, 0), data_frame(one, 0)]),
        ("empty delimiter (REQ style)", [b"", data_frame(one, 0)]),
        ("empty frame", [b""]),
        ("short header", [b"BP\x02"]),
        ("DATA without first_ordinal", [frame(DATA, struct.pack("<I", 0))]),
        ("count over 65536", [frame(DATA, DATA_HEAD.pack(65_537, 0, 0))]),
        ("VERDICTS from a producer", [frame(VERDICTS, VERDICTS_HEAD.pack(0, 0))]),
        ("HELLO with a JSON array", [frame(HELLO, b"[1, 2]")]),
        ("HELLO that is not JSON", [frame(HELLO, b"\xff{not json")]),
    ]


def test_malformed_frames_are_counted_and_a_correct_frame_still_works(procs, base_port, raw):
    consumer = start_consumer(procs, base_port, "--mode", "drop", "--buffer", "20")
    peer = raw.producer("raw-bad")
    peer.handshake()
    reader = raw.reader()
    stranger = raw.producer("raw-garbage-only")  # only ever sends garbage

    def consumer_malformed(count: int):
        return reader.wait_for(
            lambda s: s["role"] == "consumer" and s["malformed"] == count,
            5,
            f"the consumer to report malformed == {count}",
        )

    cases = _malformed_cases()
    for index, (what, parts) in enumerate(cases, start=1):
        peer.sock.send_multipart(parts, zmq.NOBLOCK)
        # A HELLO right behind it on the same connection: frames arrive in order, so its
        # WELCOME proves the bad message was read (and did not hurt the connection).
        welcomes = peer.welcomes
        peer.hello()
        peer.wait(lambda w=welcomes: peer.welcomes > w, 5, f"a WELCOME after {what}")
        snapshot = consumer_malformed(index)
        assert snapshot["totals"]["received"] == 0, what

    wait_for(lambda: _try_send(stranger, frame(DATA, b"\x05")), 5, "the stranger's connection")
    consumer_malformed(len(cases) + 1)

    peer.send_data(make_records(0, 3))  # a correct frame after all that
    peer.wait(lambda: peer.first_verdicts() == 3, 5, "verdicts for the correct frame")
    assert peer.counts[ACCEPTED] == 3
    summary = stop_consumer(consumer)
    assert summary["malformed"] == len(cases) + 1
    assert summary["received"] == 3 and summary["producers"]["raw-bad"]["received"] == 3
    assert "raw-garbage-only" not in summary["producers"]  # garbage creates no producer
    assert summary["identity_errors"] == []


def _try_send(peer: RawProducer, message: bytes) -> bool:
    try:
        peer.send(message)
    except zmq.Again:
        return False  # IMMEDIATE: not connected yet
    return True


# -- telemetry --------------------------------------------------------------------------------
CONSUMER_FIELDS = {
    "v", "role", "id", "port", "t", "session", "module", "mode", "uptime_s", "depth",
    "capacity", "limit", "max_depth", "oldest_age_s", "waiting_by_class", "rates", "totals",
    "malformed", "queue_wait", "service_rate", "slowdown", "producers", "credit_outstanding",
    "rss_mb", "max_memory_mb", "cpu_pct", "stopped_by", "events", "identity_ok",
}  # fmt: skip
COUNT_FIELDS = {
    "received", "accepted", "processed", "dropped", "sampled_out", "shed", "depth", "evicted",
    "over_credit", "goodput", "wasted", "dequeue_dropped",
}  # fmt: skip


def test_raw_telemetry_reader_decodes_snapshots_and_the_relay(procs, base_port, raw):
    consumer = start_consumer(
        procs, base_port, "--mode", "drop", "--buffer", "20", "--process-rate", "100"
    )
    reader = raw.reader()
    peer = raw.producer("raw-tele")
    peer.handshake()
    peer.send_data(make_records(0, 30))
    peer.wait(lambda: peer.first_verdicts() == 30, 5, "verdicts for 30 records")

    def has_raw_tele(s: Dict[str, Any]) -> bool:
        rows = [r for r in s.get("producers", []) if r["name"] == "raw-tele"]
        return s["role"] == "consumer" and bool(rows) and rows[0]["received"] == 30

    snapshot = reader.wait_for(has_raw_tele, 5, "a consumer snapshot that has seen raw-tele")
    assert set(snapshot) >= CONSUMER_FIELDS, CONSUMER_FIELDS - set(snapshot)
    assert snapshot["v"] == 1 and snapshot["id"] == f"consumer-{base_port}"
    assert snapshot["port"] == base_port and abs(snapshot["t"] - time.time()) < 60
    assert snapshot["session"] == peer.welcome["session"] and snapshot["mode"] == "drop"
    totals = snapshot["totals"]
    assert set(totals) == COUNT_FIELDS
    assert totals["received"] == sum(totals[k] for k in ("accepted", "dropped", "sampled_out",
                                                          "shed"))  # fmt: skip
    assert totals["accepted"] == totals["processed"] + totals["depth"]
    assert totals["depth"] == snapshot["depth"] <= snapshot["capacity"] == 20
    row = next(r for r in snapshot["producers"] if r["name"] == "raw-tele")
    assert row["active"] is True and row["credit"] is None
    assert set(row) >= COUNT_FIELDS
    assert set(snapshot["rates"]) == {
        "received", "accepted", "processed", "dropped", "sampled_out", "shed", "goodput", "wasted",
    }  # fmt: skip
    assert set(snapshot["queue_wait"]) == {"p50_s", "p99_s", "max_s"}
    assert snapshot["credit_outstanding"] is None and snapshot["identity_ok"] is True

    # The relay: what a producer publishes on P+2 comes out on P+1 unchanged, and garbage
    # is relayed too, so the reader must skip it.
    pub = raw.socket(zmq.PUB)
    pub.connect(f"tcp://127.0.0.1:{base_port + 2}")
    mine = {"v": 1, "role": "producer", "id": "raw-pub", "name": "raw-pub", "totals": {}}
    body = json.dumps(mine).encode()
    deadline = time.monotonic() + 10
    while "raw-pub" not in reader.latest or reader.skipped == 0:  # PUB/SUB: late joiners miss
        assert time.monotonic() < deadline, "the relay did not forward our snapshot"
        pub.send_multipart([TELEMETRY_TOPIC, b"{not json"])
        pub.send_multipart([TELEMETRY_TOPIC, body])
        reader.pump(0.05)
    assert reader.latest["raw-pub"] == mine
    stop_consumer(consumer)


# -- the document's own example -----------------------------------------------------------
def _doc_example() -> str:
    text = (REPO / "docs" / "protocol.md").read_text(encoding="utf-8")
    match = re.search(r"<!-- example: raw-producer.*?-->\s*```python\n(.*?)```", text, re.S)
    assert match, "docs/protocol.md lost its raw producer example"
    return match.group(1)


@pytest.mark.parametrize("mode", ["drop", "block"])
def test_the_documented_example_producer_works(procs, base_port, tmp_path, mode):
    script = tmp_path / "raw_producer.py"
    script.write_text(_doc_example(), encoding="utf-8")
    consumer = start_consumer(
        procs, base_port, "--mode", mode, "--buffer", "20", "--process-rate", "400"
    )
    example = procs.start([sys.executable, str(script), str(base_port), "200"])
    assert example.wait(20) == 0, example.stderr
    got = json.loads(example.stdout.strip().splitlines()[-1])
    summary = stop_consumer(consumer)

    mine = summary["producers"]["raw-example"]
    assert got["sent"] == mine["received"] == 200
    for name in ("accepted", "dropped", "sampled_out", "shed"):
        assert got[name] == mine[name], name
    assert summary["malformed"] == 0 and summary["identity_errors"] == []
    if mode == "block":
        assert got["dropped"] == 0 and mine["over_credit"] == 0 and got["accepted"] == 200
    else:
        assert got["dropped"] > 0 and got["accepted"] + got["dropped"] == 200
