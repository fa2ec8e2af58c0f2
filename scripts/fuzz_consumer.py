"""Fuzz a running lab from another process: bad frames at every socket that receives.

Two targets::

    python scripts/fuzz_consumer.py consumer --port P [--frames 100000]
    python scripts/fuzz_consumer.py visualizer --port Q [--frames 100000]

``consumer`` attacks the consumer whose base port is P:

* **data port (P)**: ``--frames`` messages that are malformed by construction (random
  bytes, truncated and over-long DATA frames, DATA over the protocol's size limit, wrong
  magic, wrong versions, unknown and wrong-direction frame types, JSON that is not JSON or
  nested too deep, bad ordinals, messages of several parts), plus ``--mutants`` valid frames
  with random bytes flipped, which may or may not still be valid: an in-process
  :class:`~lab.core.consumer_core.ConsumerCore` fed the same bytes says how many the real one
  must count. The consumer must count exactly ``expected_malformed``.
* **telemetry relay (P+2)**: messages of the wrong shape (counted by the relay as
  ``telemetry_malformed``, exactly ``relay_wrong_shape``) and snapshots with garbage bodies
  (passed on, for visualizers to refuse).
* **control (P+3)**: requests that are not commands; each must get an error reply.
* **oversized messages** (above each socket's ``MAXMSGSIZE``): ZeroMQ drops those
  connections; nothing is counted, nothing may break.
* **raw TCP garbage** on all four ports (``--raw`` connections each): libzmq may take it
  for the old ZMTP 1.0 and cut it into messages, which the lab counts as malformed too, in a
  number nobody can predict; so ``expected_malformed`` holds exactly only with ``--raw 0``.

``visualizer`` binds an XPUB on Q+1 (where a visualizer started with ``--port Q`` listens),
waits for ``--subscribers`` visualizers, and sends ``--frames`` malformed telemetry messages
(wrong part counts and topics, non-JSON, too deep, too big, wrong field types) mixed with
``--valid`` well-formed snapshots with extreme values, the last one a consumer snapshot
with ``uptime_s`` = 9999 (a marker: once it is drawn, everything before it was read).

Each run prints one JSON object with what it sent and what the target must have counted.
Frames are generated from ``--seed``, so a failure can be replayed.
"""

from __future__ import annotations

import argparse
import json
import random
import socket
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Tuple

import zmq

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lab.core import protocol
from lab.core.config import ConsumerConfig  # noqa: E402
from lab.core.consumer_core import ConsumerCore  # noqa: E402
from lab.processes import net, security  # noqa: E402

MARKER_UPTIME = 9999.0
LINGER_MS = 30_000  # time allowed to deliver what is queued when the fuzzer closes


# -- data frames that are malformed by construction ---------------------------------------------
def _tail(rng: random.Random, most: int = 48) -> bytes:
    return rng.randbytes(rng.randrange(0, most))


def _header(rng: random.Random, kind: int) -> bytes:
    return protocol.HEADER.pack(protocol.MAGIC, protocol.VERSION, kind)


def _valid_data(rng: random.Random, count: int) -> bytes:
    now = time.time()
    records = [
        protocol.Record(rng.randrange(1 << 40), now, now, rng.randrange(3), 0, _tail(rng, 24))
        for _ in range(count)
    ]
    return protocol.encode_data(records, rng.randrange(1 << 40))


def short(rng):
    return [rng.randbytes(rng.randrange(0, protocol.HEADER.size))]


def bad_magic(rng):
    magic = rng.randbytes(2)
    while magic == protocol.MAGIC:
        magic = rng.randbytes(2)
    return [magic + rng.randbytes(2) + _tail(rng)]


def bad_version(rng):
    version = rng.choice([0, 1, *range(3, 256)])
    return [protocol.MAGIC + bytes([version, rng.randrange(256)]) + _tail(rng)]


def unknown_type(rng):
    kind = rng.choice([0, *range(7, 256)])
    return [protocol.MAGIC + bytes([protocol.VERSION, kind]) + _tail(rng)]


def wrong_direction(rng):
    kind = rng.choice([protocol.WELCOME, protocol.VERDICTS, protocol.CONTROL])
    return [_header(rng, kind) + _tail(rng)]


def bad_json(rng):
    kind = rng.choice([protocol.HELLO, protocol.BYE])
    body = rng.choice(
        [
            lambda: b"\xff" + _tail(rng),  # not UTF-8
            lambda: rng.choice([b"[1,2]", b"42", b'"text"', b"null", b"true", b"[]"]),
            lambda: b'{"producer": "fuzz"' + _tail(rng, 8).replace(b"}", b""),  # unterminated
            lambda: b"[" * rng.randrange(2_000, 16_000),  # nested too deep
            lambda: b'{"sent": NaN}',
            lambda: json.dumps({"x": "y" * (protocol.MAX_JSON_BYTES + 10)}).encode(),
            lambda: rng.choice(
                [b'{"sent": -1}', b'{"sent": 1.5}', b'{"sent": "7"}', b'{"sent": [1]}']
            ),
            lambda: json.dumps({"sent": rng.randrange(1 << 63, 1 << 80)}).encode(),
        ]
    )()
    if kind == protocol.BYE and body.startswith(b'{"sent"'):
        body = b"\xfe" + body  # BYE does not read "sent": make it invalid some other way
    return [_header(rng, kind) + body]


def data_truncated(rng):
    frame = _valid_data(rng, rng.randrange(1, 20))
    return [frame[: rng.randrange(protocol.HEADER.size, len(frame))]]


def data_trailing(rng):
    return [_valid_data(rng, rng.randrange(0, 10)) + rng.randbytes(rng.randrange(1, 17))]


def data_count_too_big(rng):
    count = rng.randrange(protocol.MAX_RECORDS_PER_FRAME + 1, 1 << 32)
    return [_header(rng, protocol.DATA) + protocol.DATA_HEAD.pack(count, 0, 0) + _tail(rng)]


def data_ordinal_overflow(rng):
    ordinal = rng.randrange(protocol.MAX_ORDINAL, 1 << 64)
    frame = _valid_data(rng, 1)
    return [
        frame[:4] + protocol.DATA_HEAD.pack(1, ordinal, 0) + frame[4 + protocol.DATA_HEAD.size :]
    ]


def several_parts(rng):
    return [rng.randbytes(rng.randrange(0, 32)) for _ in range(rng.randrange(2, 4))]


def data_oversized(rng):
    """Bigger than the protocol allows, small enough for the socket: reaches the code."""
    size = protocol.MAX_DATA_FRAME_BYTES + rng.randrange(1, net.MAX_DATA_MESSAGE - (4 << 20))
    head = _header(rng, protocol.DATA) + protocol.DATA_HEAD.pack(1, 0, 0)
    return [head + bytes(size - len(head))]


DATA_KINDS: List[Tuple[Callable[[random.Random], List[bytes]], int]] = [
    (short, 10),
    (bad_magic, 20),
    (bad_version, 15),
    (unknown_type, 10),
    (wrong_direction, 10),
    (bad_json, 10),
    (data_truncated, 15),
    (data_trailing, 5),
    (data_count_too_big, 3),
    (data_ordinal_overflow, 2),
    (several_parts, 5),
]
OVERSIZED_DATA_FRAMES = 8  # 4 MiB each: a few are enough


def mutant(rng: random.Random) -> bytes:
    """A valid frame with a few random bytes changed, cut or added: maybe still valid."""
    base = rng.choice(
        [
            lambda: _valid_data(rng, rng.randrange(1, 5)),
            lambda: protocol.encode_json(protocol.HELLO, {"producer": "fuzz-mutant", "sent": 0}),
            lambda: protocol.encode_json(protocol.BYE, {"producer": "fuzz-mutant"}),
        ]
    )()
    frame = bytearray(base)
    for _ in range(rng.randrange(1, 5)):
        where = rng.randrange(len(frame))
        action = rng.randrange(3)
        if action == 0:
            frame[where] = rng.randrange(256)
        elif action == 1:
            del frame[where:]
            if not frame:
                break
        else:
            frame[where:where] = rng.randbytes(rng.randrange(1, 4))
    return bytes(frame)


def _weighted(rng: random.Random, kinds) -> Iterator[Tuple[str, List[bytes]]]:
    makers = [k for k, _ in kinds]
    weights = [w for _, w in kinds]
    while True:
        maker = rng.choices(makers, weights)[0]
        yield maker.__name__, maker(rng)


# -- telemetry messages ---------------------------------------------------------------------
def telemetry_wrong_shape(rng: random.Random) -> List[bytes]:
    """Not a two-part message on the lab's topic: the relay refuses it, a visualizer too."""
    choice = rng.randrange(3)
    if choice == 0:
        return [protocol.TELEMETRY_TOPIC]
    if choice == 1:
        return [protocol.TELEMETRY_TOPIC, b"{}", _tail(rng)]
    topic = rng.choice([b"bplab.v2", b"", b"bplab", rng.randbytes(8)])
    return [topic, _tail(rng)]


def telemetry_bad_body(rng: random.Random) -> List[bytes]:
    """Two parts on the right topic, a body no visualizer may accept."""
    role = rng.choice(["consumer", "producer"])
    good = {"v": 1, "role": role, "id": f"fuzz-{role}", "module": 12}
    wrong_types = [
        {"depth": "deep"},
        {"uptime_s": [1]},
        {"capacity": {"a": 1}},
        {"rates": [1, 2]},
        {"rates": {"received": "fast"}},
        {"totals": {"dropped": None, "received": "x"}},
        {"events": "not a list"},
        {"events": [[1, 2, 3]]},
        {"events": [["t", "text"]]},
        {"producers": [1]},
        {"producers": [{"name": ["x"]}]},
        {"latency": {"p99_s": "slow"}},
        {"queue_wait": 5},
        {"mode": 7},
        {"rss_mb": True},
        {"depth": 1 << 70},
    ]
    body = rng.choice(
        [
            lambda: b"\xff" + _tail(rng),
            lambda: b"[" * rng.randrange(2_000, 16_000),
            lambda: rng.choice([b"[]", b"1", b"null", b'"x"']),
            lambda: json.dumps({"role": "stranger", "id": "x"}).encode(),
            lambda: json.dumps({"role": role}).encode(),
            lambda: json.dumps({"role": role, "id": 5}).encode(),
            lambda: json.dumps({**good, **rng.choice(wrong_types)}).encode(),
            lambda: json.dumps({**good, "depth": 1.0}).encode().replace(b"1.0", b"NaN"),
            lambda: json.dumps({**good, "depth": 1.0}).encode().replace(b"1.0", b"Infinity"),
        ]
    )()
    if rng.random() < 0.002:  # a few only: each is 256 KiB on the wire
        body = _too_big(good)
    return [protocol.TELEMETRY_TOPIC, body]


def _too_big(snapshot: Dict[str, Any]) -> bytes:
    """Over the snapshot limit, under the socket's MAXMSGSIZE (which would cut the line)."""
    body = json.dumps({**snapshot, "pad": ""}).encode()
    return body[:-2] + b"x" * (protocol.MAX_SNAPSHOT_BYTES + 16 - len(body)) + body[-2:]


def valid_snapshot(rng: random.Random, uptime: float) -> List[bytes]:
    """Well-formed, with values a dashboard must still draw without failing."""
    extreme = rng.choice([0, -1, 1 << 62, 3, 10**12, 1e300, -2.5e300, 0.001])
    text = rng.choice(["", "é" * 200, "\x1b[31mred", "💥" * 50, "x" * 5000])
    if rng.random() < 0.5:
        snap: Dict[str, Any] = {
            "v": 1,
            "role": "consumer",
            "id": "fuzz-consumer",
            "module": 12,
            "session": text[:12],
            "mode": rng.choice(["drop", "block", "unbounded", "sample", "shed", text]),
            "uptime_s": uptime,
            "depth": extreme,
            "capacity": rng.choice([None, 0, 1, 50, extreme]),
            "limit": rng.choice([None, extreme]),
            "oldest_age_s": abs(extreme) / 7,
            "rates": {"received": extreme, "processed": 0.5, "dropped": extreme},
            "totals": {"received": extreme, "dropped": extreme},
            "malformed": extreme,
            "queue_wait": {"p50_s": 0.0, "p99_s": extreme, "max_s": 0},
            "producers": [{"name": text, "active": True, "credit": extreme}],
            "credit_outstanding": extreme,
            "rss_mb": abs(extreme),
            "max_memory_mb": rng.choice([None, 0, 512]),
            "stopped_by": rng.choice([None, "memory_guard", text]),
            "events": [[extreme, text], [0, ""]],
        }
    else:
        snap = {
            "v": 1,
            "role": "producer",
            "id": f"fuzz-producer-{rng.randrange(3)}",
            "name": text,
            "target_mps": rng.choice([None, extreme]),
            "rates": {"produced": extreme},
            "totals": {"produced": extreme, "accepted": extreme},
            "latency": {"p50_s": extreme, "p99_s": abs(extreme) / 3},
            "pending": extreme,
            "credit": rng.choice([None, 0, extreme]),
            "rss_mb": 1,
            "events": [[0, text]],
        }
    return protocol.encode_snapshot(snap)


# -- targets --------------------------------------------------------------------------------
def fuzz_consumer(args: argparse.Namespace) -> Dict[str, Any]:
    rng = random.Random(args.seed)
    ctx = zmq.Context()
    host, port = args.host, args.port
    report: Dict[str, Any] = {"target": "consumer", "port": port, "seed": args.seed}
    started = time.monotonic()
    # A classroom consumer: the fuzzer holds the instructor's keys, so its frames pass CURVE
    # and ZAP and reach the lab's code, which must count them exactly as without CURVE.
    keys = security.ClientKeys.instructor(security.load(args.key_file)) if args.key_file else None

    # Data port: counted frames, then mutants judged by an in-process oracle.
    data = ctx.socket(zmq.DEALER)
    data.setsockopt(zmq.LINGER, LINGER_MS)
    data.setsockopt(zmq.SNDHWM, 0)
    data.setsockopt(zmq.ROUTING_ID, b"fuzz-data")
    security.secure_client(data, keys)
    data.connect(net.endpoint(host, port + net.DATA_OFFSET))
    by_kind: Dict[str, int] = {}
    generator = _weighted(rng, DATA_KINDS)
    oversized_data = OVERSIZED_DATA_FRAMES if args.frames else 0
    for _ in range(args.frames - oversized_data):
        name, parts = next(generator)
        by_kind[name] = by_kind.get(name, 0) + 1
        data.send_multipart(parts)
    for _ in range(oversized_data):
        data.send_multipart(data_oversized(rng))
    by_kind["data_oversized"] = oversized_data
    oracle = ConsumerCore(ConsumerConfig(mode="drop"), 0.0)
    mutants = ctx.socket(zmq.DEALER)
    mutants.setsockopt(zmq.LINGER, LINGER_MS)
    mutants.setsockopt(zmq.SNDHWM, 0)
    mutants.setsockopt(zmq.ROUTING_ID, b"fuzz-mutant")
    security.secure_client(mutants, keys)
    mutants.connect(net.endpoint(host, port + net.DATA_OFFSET))
    for _ in range(args.mutants):
        frame = mutant(rng)
        oracle.on_frame(b"fuzz-mutant", frame, 0.0)
        mutants.send(frame)
    report["data_frames"] = args.frames
    report["mutants"] = args.mutants
    report["mutants_malformed"] = oracle.malformed
    report["expected_malformed"] = args.frames + oracle.malformed
    report["by_kind"] = by_kind

    # Telemetry relay (P+2): wait until the consumer's SUB has subscribed, or all is dropped.
    relay = ctx.socket(zmq.XPUB)
    relay.setsockopt(zmq.LINGER, LINGER_MS)
    relay.setsockopt(zmq.SNDHWM, 0)
    security.secure_client(relay, keys)
    relay.connect(net.endpoint(host, port + net.TELEMETRY_IN_OFFSET))
    if args.telemetry:
        if not relay.poll(10_000):
            raise SystemExit("fuzz: the consumer's telemetry SUB never subscribed")
        relay.recv()
    wrong_shape = 0
    for _ in range(args.telemetry):
        if rng.random() < 0.5:
            relay.send_multipart(telemetry_wrong_shape(rng))
            wrong_shape += 1
        else:
            relay.send_multipart(telemetry_bad_body(rng))
    report["relay_messages"] = args.telemetry
    report["relay_wrong_shape"] = wrong_shape

    # Control (P+3): every request gets an error reply.
    control = ctx.socket(zmq.DEALER)
    control.setsockopt(zmq.LINGER, 0)
    security.secure_client(control, keys)
    control.connect(net.endpoint(host, port + net.CONTROL_OFFSET))
    bodies = [
        lambda: b"\xff" + _tail(rng),
        lambda: b"[" * rng.randrange(2_000, 16_000),
        lambda: rng.choice([b"[]", b"7", b"null", b'"status"']),
        lambda: json.dumps({"cmd": rng.choice(["launch", "", "STATUS", 5, None])}).encode(),
        lambda: json.dumps({"cmd": "mode", "value": rng.choice(["turbo", 3, None, ["drop"]])}),
        lambda: json.dumps({"cmd": "slow", "value": rng.choice([-1, 0, "x", [2]])}).encode(),
        lambda: json.dumps({"cmd": "stall", "value": rng.choice([-3, "long"])}).encode(),
        lambda: b'{"cmd": "slow", "value": NaN}',
        lambda: b'{"cmd": "rate", "value": Infinity}',
    ]
    replies = errors = 0
    for _ in range(args.control):
        body = rng.choice(bodies)()
        control.send_multipart([b"", body if isinstance(body, bytes) else body.encode()])
    deadline = time.monotonic() + 20
    while replies < args.control and time.monotonic() < deadline:
        if control.poll(1000):
            reply = json.loads(control.recv_multipart()[-1])
            replies += 1
            errors += reply.get("ok") is False
    report["control_requests"] = args.control
    report["control_replies"] = replies
    report["control_errors"] = errors

    # Oversized messages, each on a connection of its own (ZeroMQ closes it).
    oversized = 0
    for kind, offset, size in (
        (zmq.DEALER, net.DATA_OFFSET, net.MAX_DATA_MESSAGE + 1),
        (zmq.DEALER, net.CONTROL_OFFSET, net.MAX_CONTROL_MESSAGE + 1),
        (zmq.XPUB, net.TELEMETRY_IN_OFFSET, net.MAX_TELEMETRY_MESSAGE + 1),
        (zmq.XSUB, net.TELEMETRY_OUT_OFFSET, net.MAX_SUBSCRIPTION_MESSAGE + 1),
    ):
        for _ in range(2):
            sock = ctx.socket(kind)
            sock.setsockopt(zmq.LINGER, 2000)
            # A send must never wait for ever: against a CURVE consumer without its keys no
            # connection completes, and a DEALER whose pending pipe was dropped would block.
            sock.setsockopt(zmq.SNDTIMEO, 2000)
            security.secure_client(sock, keys)
            sock.connect(net.endpoint(host, port + offset))
            payload = b"\x01" + bytes(size)  # (an XSUB sends it as a subscription)
            if kind == zmq.XPUB and sock.poll(5000):  # the SUB's subscription: without
                sock.recv()  # it a PUB sends nothing
            try:
                if kind == zmq.XPUB:
                    sock.send_multipart([protocol.TELEMETRY_TOPIC, payload])
                else:
                    sock.send(payload)
                oversized += 1
            except zmq.Again:
                pass  # no connection took it within SNDTIMEO: nothing reached the consumer
            sock.close()
    report["oversized_messages"] = oversized

    # Raw TCP garbage: not even ZeroMQ's handshake. Bytes that do not start like a ZMTP 3
    # greeting are taken by libzmq for the unversioned ZMTP 1.0 and may be cut into
    # messages: those reach the lab and are counted as malformed, in a number nobody can
    # predict. So this comes last, and its effect on the counts is not part of the report.
    raw = 0
    for _ in range(args.raw):
        for offset in range(net.PORTS_PER_MODULE):
            with socket.create_connection((host, port + offset), timeout=2) as conn:
                greeting = rng.choice([b"", b"\xff" + bytes(8) + b"\x7f"])  # ZMTP-ish start
                try:
                    conn.sendall(greeting + rng.randbytes(rng.randrange(1, 4096)))
                except OSError:
                    pass  # the peer hung up first: exactly what should happen
            raw += 1
    report["raw_connections"] = raw

    for sock in (data, mutants, relay, control):
        sock.close()
    ctx.term()  # waits (up to LINGER_MS) until everything queued has been delivered
    report["seconds"] = round(time.monotonic() - started, 2)
    return report


def fuzz_visualizer(args: argparse.Namespace, emit: Callable[[Dict[str, Any]], None]) -> None:
    rng = random.Random(args.seed)
    ctx = zmq.Context()
    pub = ctx.socket(zmq.XPUB)
    pub.setsockopt(zmq.LINGER, LINGER_MS)
    pub.setsockopt(zmq.SNDHWM, 0)  # never drop: every message must be counted
    pub.setsockopt(zmq.XPUB_VERBOSE, 1)  # see every visualizer's subscription
    pub.setsockopt(zmq.XPUB_VERBOSER, 1)  # ... and every unsubscription (when one leaves)
    pub.bind(net.endpoint(args.host, args.port + net.TELEMETRY_OUT_OFFSET))
    started = time.monotonic()
    subscribed = 0
    deadline = time.monotonic() + 30
    while subscribed < args.subscribers:
        if time.monotonic() > deadline:
            raise SystemExit(f"fuzz: {subscribed} of {args.subscribers} visualizers subscribed")
        if pub.poll(500) and pub.recv()[:1] == b"\x01":
            subscribed += 1
    valid_every = max(1, args.frames // max(args.valid - 1, 1))
    malformed = valid = 0
    by_kind = {"wrong_shape": 0, "bad_body": 0}
    for index in range(args.frames):
        if index % valid_every == 0 and valid < args.valid - 1:
            pub.send_multipart(valid_snapshot(rng, uptime=float(index % 5000)))
            valid += 1
        if rng.random() < 0.3:
            pub.send_multipart(telemetry_wrong_shape(rng))
            by_kind["wrong_shape"] += 1
        else:
            pub.send_multipart(telemetry_bad_body(rng))
            by_kind["bad_body"] += 1
        malformed += 1
    marker = {
        "v": 1,
        "role": "consumer",
        "id": "fuzz-consumer",
        "module": 12,
        "mode": "drop",
        "session": "fuzz",
        "uptime_s": MARKER_UPTIME,
        "depth": 0,
        "capacity": 50,
    }
    pub.send_multipart(protocol.encode_snapshot(marker))
    valid += 1
    emit(
        {
            "target": "visualizer",
            "port": args.port,
            "seed": args.seed,
            "malformed": malformed,
            "valid": valid,
            "by_kind": by_kind,
            "marker_uptime": MARKER_UPTIME,
            "seconds": round(time.monotonic() - started, 2),
        }
    )
    # Stay connected until the visualizers leave (or --hold runs out): a closed connection
    # would make them show "consumer down" before they have drawn the marker.
    left, deadline = 0, time.monotonic() + args.hold
    while left < subscribed and time.monotonic() < deadline:
        if pub.poll(200) and pub.recv()[:1] == b"\x00":
            left += 1
    pub.close()
    ctx.term()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("target", choices=("consumer", "visualizer"))
    parser.add_argument("--port", type=int, required=True, help="the module's base port")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--frames", type=int, default=100_000, help="malformed messages")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--mutants", type=int, default=5_000, help="consumer: flipped frames")
    parser.add_argument("--telemetry", type=int, default=5_000, help="consumer: to the relay")
    parser.add_argument("--control", type=int, default=500, help="consumer: bad requests")
    parser.add_argument("--raw", type=int, default=10, help="consumer: raw TCP per port")
    parser.add_argument("--valid", type=int, default=50, help="visualizer: good snapshots")
    parser.add_argument("--subscribers", type=int, default=1, help="visualizer: how many")
    parser.add_argument(
        "--key-file", default=None, help="consumer: a classroom's keys (CURVE, as instructor)"
    )
    parser.add_argument(
        "--hold", type=float, default=60.0, help="visualizer: seconds to wait for them to leave"
    )
    args = parser.parse_args(argv)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        parser.error("the fuzzer only targets this machine (--host 127.0.0.1)")
    if 0 < args.frames < OVERSIZED_DATA_FRAMES:
        parser.error(f"--frames must be 0 or at least {OVERSIZED_DATA_FRAMES}")

    def emit(report: Dict[str, Any]) -> None:
        print(json.dumps(report), flush=True)

    if args.target == "consumer":
        emit(fuzz_consumer(args))
    else:
        fuzz_visualizer(args, emit)
    return 0


if __name__ == "__main__":
    sys.exit(main())
