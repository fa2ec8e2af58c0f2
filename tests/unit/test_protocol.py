"""The wire protocol: byte layouts, round trips, and a ProtocolError for every malformed frame."""

from __future__ import annotations

import json
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lab.core import protocol, telemetry
from lab.core.protocol import ProtocolError, Record, RunBuilder

RECORDS = [
    Record(0, 1700000000.0, 1700000000.5),
    Record(1, 1700000000.1, 1700000000.5, priority=2, attempt=3, payload=b"hello"),
    Record(2**64 - 1, -1.5, 0.0, priority=255, attempt=255, payload=b"\x00" * 1000),
]


def data_frame(records=RECORDS, first_ordinal: int = 0) -> bytes:
    return protocol.encode_data(records, first_ordinal)


# -- frame and verdict kinds ------------------------------------------------------------------
def test_kinds_are_int_enums_with_the_wire_values():
    assert [int(k) for k in protocol.FrameType] == [1, 2, 3, 4, 5, 6, 7]
    assert [int(k) for k in protocol.VerdictKind] == [1, 2, 3, 4, 5, 6]
    # The module-level names are the members themselves, so callers and the wire agree.
    assert protocol.DATA is protocol.FrameType.DATA and protocol.DATA == 3
    assert protocol.SHED is protocol.VerdictKind.SHED and protocol.SHED == 4
    assert protocol.FRAME_NAMES[3] == "DATA"
    assert protocol.VERDICT_NAMES[protocol.SAMPLED_OUT] == "sampled_out"


def test_frame_type_returns_the_member():
    kind = protocol.frame_type(protocol.encode_json(protocol.BYE, {}))
    assert kind is protocol.FrameType.BYE
    with pytest.raises(ProtocolError, match="unknown frame type 99"):
        protocol.frame_type(b"BP\x02\x63")


def test_runs_carry_verdict_members_that_pack_as_bytes():
    builder = RunBuilder()
    builder.add(protocol.SHED, 5, 200)
    frame = protocol.encode_verdicts(9, builder.take())
    assert frame[4 + 12 :][:1] == bytes([4])
    assert protocol.decode_verdicts(frame).runs == [(protocol.SHED, 5, 1, 200)]


# -- header ----------------------------------------------------------------------------------
def test_header_layout_is_magic_version_type():
    frame = protocol.encode_json(protocol.HELLO, {})
    assert frame == b"BP\x02\x01{}"
    assert data_frame([])[:4] == b"BP\x02\x03"
    assert protocol.HEADER.size == 4
    assert protocol.RECORD.size == 8 + 8 + 8 + 1 + 1 + 4
    assert protocol.RUN.size == 1 + 8 + 4 + 4


@pytest.mark.parametrize("kind", sorted(protocol.FRAME_NAMES))
def test_frame_type_of_every_known_kind(kind):
    assert protocol.frame_type(protocol.MAGIC + bytes([protocol.VERSION, kind])) == kind


@pytest.mark.parametrize(
    "frame, reason",
    [
        (b"", "shorter"),
        (b"BP\x02", "shorter"),
        (b"XP\x01\x03", "magic"),
        (b"BP\x03\x03", "version"),
        (b"BP\x00\x03", "version"),
        (b"BP\x02\x00", "unknown frame type"),
        (b"BP\x02\x63", "unknown frame type"),
    ],
)
def test_frame_type_rejects_bad_headers(frame, reason):
    with pytest.raises(ProtocolError, match=reason):
        protocol.frame_type(frame)


def test_protocol_error_is_a_value_error():
    assert issubclass(ProtocolError, ValueError)


# -- JSON frames -----------------------------------------------------------------------------
def test_json_round_trip_is_compact():
    body = {"producer": "alice", "pid": 42, "session": None, "nested": {"a": [1, 2]}}
    frame = protocol.encode_json(protocol.WELCOME, body)
    assert frame[4:] == json.dumps(body, separators=(",", ":")).encode()
    assert protocol.frame_type(frame) == protocol.WELCOME
    assert protocol.decode_json(frame) == body


def test_empty_json_body_is_an_empty_object():
    assert protocol.decode_json(b"BP\x02\x05") == {}


@pytest.mark.parametrize(
    "body, reason",
    [
        (b"{not json", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[1, 2]", "object"),
        (b'"text"', "object"),
        (b" " * (protocol.MAX_JSON_BYTES - 2) + b"{}" + b" ", "exceeds"),
    ],
)
def test_decode_json_rejects_bad_bodies(body, reason):
    with pytest.raises(ProtocolError, match=reason):
        protocol.decode_json(b"BP\x02\x01" + body)


def test_json_body_at_the_size_limit_is_fine():
    body = b"{}" + b" " * (protocol.MAX_JSON_BYTES - 2)
    assert protocol.decode_json(b"BP\x02\x01" + body) == {}


# -- DATA ------------------------------------------------------------------------------------
def test_data_round_trip():
    assert protocol.decode_data(data_frame()) == RECORDS
    assert protocol.decode_data(data_frame([])) == []


def test_data_frame_carries_the_first_ordinal():
    assert protocol.decode_data_frame(data_frame(RECORDS, 12345)) == (12345, RECORDS)


def test_data_is_little_endian_at_documented_offsets():
    frame = data_frame([Record(258, 0.5, 0.25, 1, 2, b"ab")], first_ordinal=7)
    (count,) = struct.unpack_from("<I", frame, 4)
    assert count == 1
    record_at = len(frame) - protocol.RECORD.size - 2
    assert struct.unpack_from("<QddBBI", frame, record_at) == (258, 0.5, 0.25, 1, 2, 2)
    assert frame[-2:] == b"ab"


def test_encode_data_refuses_too_many_records():
    too_many = [Record(i, 0.0, 0.0) for i in range(protocol.MAX_RECORDS_PER_FRAME + 1)]
    with pytest.raises(ValueError):
        protocol.encode_data(too_many)


def _with_count(frame: bytes, count: int) -> bytes:
    out = bytearray(frame)
    struct.pack_into("<I", out, 4, count)
    return bytes(out)


@pytest.mark.parametrize(
    "frame, reason",
    [
        (b"BP\x02\x03", "too short"),
        (b"BP\x02\x03\x01\x00", "too short"),
        (data_frame()[: -1000 - protocol.RECORD.size + 3], "truncated inside a record header"),
        (data_frame()[:-1], "truncated inside a payload"),
        (data_frame() + b"\x00", "after its last record"),
        (data_frame([]) + b"junk", "after its last record"),
        (_with_count(data_frame([]), 1), "truncated inside a record header"),
        (_with_count(data_frame([]), protocol.MAX_RECORDS_PER_FRAME + 1), "claims"),
        (_with_count(data_frame(), 2), "after its last record"),
        (
            data_frame([Record(0, 0.0, 0.0, payload=b"x" * protocol.MAX_DATA_FRAME_BYTES)]),
            "exceeds",
        ),
    ],
    ids=[
        "no-count",
        "half-count",
        "cut-record",
        "cut-payload",
        "trailing-byte",
        "trailing-junk",
        "count-too-high",
        "count-over-limit",
        "count-too-low",
        "oversize",
    ],
)
def test_decode_data_rejects_malformed_frames(frame, reason):
    with pytest.raises(ProtocolError, match=reason):
        protocol.decode_data(frame)


# -- VERDICTS --------------------------------------------------------------------------------
def test_verdicts_round_trip():
    runs = [(protocol.ACCEPTED, 0, 10, 0), (protocol.SHED, 10, 2, 250), (protocol.EVICTED, 3, 1, 0)]
    frame = protocol.encode_verdicts(42, runs)
    assert protocol.frame_type(frame) == protocol.VERDICTS
    decoded = protocol.decode_verdicts(frame)
    assert decoded.credit_limit == 42
    assert [tuple(run) for run in decoded.runs] == runs
    assert decoded.runs[1].retry_after_ms == 250


def test_verdicts_with_no_credit_in_use():
    frame = protocol.encode_verdicts(protocol.NO_CREDIT_LIMIT, [])
    assert protocol.decode_verdicts(frame) == (2**64 - 1, [])
    assert len(frame) == 4 + protocol.VERDICTS_HEAD.size


@pytest.mark.parametrize(
    "frame, reason",
    [
        (b"BP\x02\x04" + b"\x00" * 5, "too short"),
        (protocol.encode_verdicts(1, [(1, 0, 1, 0)])[:-1], "does not match"),
        (protocol.encode_verdicts(1, [(1, 0, 1, 0)]) + b"\x00", "does not match"),
        (protocol.encode_verdicts(1, [(7, 0, 1, 0)]), "unknown verdict kind 7"),
        (protocol.encode_verdicts(1, [(0, 0, 1, 0)]), "unknown verdict kind 0"),
    ],
)
def test_decode_verdicts_rejects_malformed_frames(frame, reason):
    with pytest.raises(ProtocolError, match=reason):
        protocol.decode_verdicts(frame)


# -- RunBuilder ------------------------------------------------------------------------------
def test_run_builder_docstring_quick_fact():
    builder = RunBuilder()
    for seq in (7, 8, 9):
        builder.add(protocol.ACCEPTED, seq)
    builder.add(protocol.DROPPED, 10)
    assert builder.take() == [(1, 7, 3, 0), (2, 10, 1, 0)]


def test_run_builder_merges_only_consecutive_seqs_of_one_kind_and_retry():
    builder = RunBuilder()
    assert not builder
    builder.add(protocol.ACCEPTED, 1)
    builder.add(protocol.ACCEPTED, 3)  # gap
    builder.add(protocol.SHED, 4, 100)
    builder.add(protocol.SHED, 5, 100)
    builder.add(protocol.SHED, 6, 200)  # another retry-after
    builder.add(protocol.ACCEPTED, 7)
    builder.add(protocol.ACCEPTED, 6)  # backwards
    assert builder
    assert builder.take() == [
        (protocol.ACCEPTED, 1, 1, 0),
        (protocol.ACCEPTED, 3, 1, 0),
        (protocol.SHED, 4, 2, 100),
        (protocol.SHED, 6, 1, 200),
        (protocol.ACCEPTED, 7, 1, 0),
        (protocol.ACCEPTED, 6, 1, 0),
    ]
    assert not builder
    assert builder.take() == []


def test_run_builder_output_encodes_as_verdicts():
    builder = RunBuilder()
    for seq in range(1000):
        builder.add(protocol.ACCEPTED if seq % 10 else protocol.DROPPED, seq)
    runs = builder.take()
    assert len(runs) == 200
    decoded = protocol.decode_verdicts(protocol.encode_verdicts(5, runs))
    assert sum(run.count for run in decoded.runs) == 1000


# -- telemetry -------------------------------------------------------------------------------
def test_snapshot_round_trip():
    snapshot = {"role": "producer", "id": "alice", "rates": {"produced": 20.0}}
    frames = protocol.encode_snapshot(snapshot)
    assert frames[0] == protocol.TELEMETRY_TOPIC
    decoded = protocol.decode_snapshot(frames)
    assert decoded == telemetry.complete(snapshot)
    assert decoded["rates"]["produced"] == 20.0 and decoded["rates"]["shed"] == 0.0
    assert protocol.decode_snapshot(protocol.encode_snapshot(decoded)) == decoded


@pytest.mark.parametrize(
    "frames, reason",
    [
        ([protocol.TELEMETRY_TOPIC], "frames"),
        ([protocol.TELEMETRY_TOPIC, b"{}", b""], "frames"),
        ([b"other", b'{"role":"consumer","id":"x"}'], "topic"),
        ([protocol.TELEMETRY_TOPIC, b"not json"], "not JSON"),
        ([protocol.TELEMETRY_TOPIC, b"[]"], "role"),
        ([protocol.TELEMETRY_TOPIC, b'{"role":"visualizer","id":"x"}'], "role"),
        ([protocol.TELEMETRY_TOPIC, b'{"role":"consumer","id":3}'], "id"),
        ([protocol.TELEMETRY_TOPIC, b" " * (protocol.MAX_SNAPSHOT_BYTES + 1)], "too large"),
        ([protocol.TELEMETRY_TOPIC, b'{"role":"consumer","id":"x","depth":"9"}'], "depth"),
    ],
)
def test_decode_snapshot_rejects_bad_messages(frames, reason):
    with pytest.raises(ProtocolError, match=reason):
        protocol.decode_snapshot(frames)


def test_every_verdict_kind_has_a_name():
    assert protocol.VERDICT_NAMES == {
        protocol.ACCEPTED: "accepted",
        protocol.DROPPED: "dropped",
        protocol.SAMPLED_OUT: "sampled_out",
        protocol.SHED: "shed",
        protocol.EVICTED: "evicted",
        protocol.PROCESSED: "processed",
    }


@given(
    st.lists(
        st.tuples(
            st.sampled_from([protocol.ACCEPTED, protocol.PROCESSED]),
            st.lists(st.integers(0, 30), max_size=12),
            st.booleans(),
        ),
        max_size=6,
    )
)
def test_run_builder_extend_is_add_for_each(batches):
    """``extend`` is a shortcut for ``add`` in a loop: the same runs, consecutive or not."""
    one_by_one, extended = RunBuilder(), RunBuilder()
    for kind, seqs, consecutive in batches:
        if consecutive and seqs:
            seqs = list(range(seqs[0], seqs[0] + len(seqs)))
        for seq in seqs:
            one_by_one.add(kind, seq)
        extended.extend(kind, seqs)
    assert extended.take() == one_by_one.take()
