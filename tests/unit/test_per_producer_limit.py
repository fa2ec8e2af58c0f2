"""Classroom mode's per-producer credit cap, in the core with exact numbers."""

from __future__ import annotations

from lab.core import protocol
from lab.core.config import ConsumerConfig
from lab.core.consumer_core import ConsumerCore
from lab.core.protocol import Record


def make(capacity: int, cap=None) -> ConsumerCore:
    config = ConsumerConfig(mode="block", capacity=capacity, process_rate=10.0)
    config.per_producer_limit = cap
    return ConsumerCore(config, 0.0, session="s1")


def hello(name: str, sent: int = 0) -> bytes:
    """HELLO, which is also the heartbeat: a producer without credit keeps saying it."""
    return protocol.encode_json(
        protocol.HELLO, {"producer": name, "pid": 1, "session": None, "sent": sent}
    )


def credit(core: ConsumerCore):
    return {row["name"]: row["credit"] for row in core.snapshot(0.0)["producers"]}


def test_without_a_cap_a_lone_producer_gets_the_whole_buffer():
    core = make(40)
    core.on_frame(b"alice", hello("alice"), 0.0)
    assert credit(core) == {"alice": 40}


def test_the_cap_holds_a_lone_producer_to_its_fraction_and_leaves_room_for_others():
    core = make(40, cap=0.25)
    core.on_frame(b"alice", hello("alice"), 0.0)
    assert credit(core) == {"alice": 10}
    core.on_frame(b"bob", hello("bob"), 0.0)
    assert credit(core) == {"alice": 10, "bob": 10}


def test_a_producer_at_its_cap_gets_no_more_however_much_it_sends():
    core = make(40, cap=0.25)
    core.on_frame(b"alice", hello("alice"), 0.0)
    records = [Record(seq, 0.0, 0.0, 0, 0) for seq in range(30)]
    core.on_frame(b"alice", protocol.encode_data(records, 0), 0.0)
    core.advance(0.0)
    row = core.snapshot(0.0)["producers"][0]
    # 10 within credit (one goes straight into service), 20 over credit: dropped, not queued
    assert (row["accepted"], row["over_credit"], row["credit"]) == (10, 20, 0)
    assert core.identity_errors() == []


def test_forty_greedy_producers_share_the_buffer_exactly():
    """Block mode, 40 producers that each send every credit they are given, at once: after
    the joins settle, every producer is accepted the same number of messages to within the
    one slot in transit: 80 slots / 40 producers is a share of 2 each. (With 50 slots the
    shares are 2 for ten producers and 1 for thirty, in insertion order: 80% of the fair
    share for most.)"""
    core = make(80, cap=0.25)
    peers = [f"p{i:02d}".encode() for i in range(40)]
    sent = dict.fromkeys(peers, 0)
    limits = dict.fromkeys(peers, 0)
    for peer in peers:
        core.on_frame(peer, hello(peer.decode()), 0.0)
    accepted_at = {}
    now = 0.0
    for step in range(900):  # 10 messages/s: 0.1 s a message, 0.05 s a step
        core.advance(now)
        for to, frame in core.take_outgoing():
            if protocol.frame_type(frame) == protocol.VERDICTS:
                limits[to] = max(limits[to], protocol.decode_verdicts(frame).credit_limit)
        for peer in peers:
            n = limits[peer] - sent[peer]
            if n > 0:
                records = [Record(seq, now, now, 0, 0) for seq in range(sent[peer], limits[peer])]
                core.on_frame(peer, protocol.encode_data(records, sent[peer]), now)
                sent[peer] = limits[peer]
            elif step % 10 == 0:
                core.on_frame(peer, hello(peer.decode(), sent[peer]), now)
        if step == 100:
            accepted_at = {r["name"]: r["accepted"] for r in core.snapshot(now)["producers"]}
        now += 0.05
    rows = core.snapshot(now)["producers"]
    window = {r["name"]: r["accepted"] - accepted_at[r["name"]] for r in rows}
    fair = sum(window.values()) / len(window)
    assert sum(r["over_credit"] for r in rows) == 0
    assert fair == 10.0  # 40 s of a 10 msg/s worker, 400 messages, 40 producers
    # everyone's footprint is its 2 slots, so in any window they differ by a slot at most
    assert min(window.values()) >= 9 and max(window.values()) <= 11, window
    assert core.identity_errors() == []
