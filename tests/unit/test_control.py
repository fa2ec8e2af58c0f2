"""Control commands: one table from command to handler, all through the core's public API."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from lab.core import protocol
from lab.core.config import ConsumerConfig
from lab.core.consumer_core import ConsumerCore
from lab.processes import control


def process_with(*peers: bytes):
    core = ConsumerCore(ConsumerConfig(mode="drop", capacity=5, process_rate=10.0), 0.0)
    for peer in peers:
        core.on_frame(peer, protocol.encode_json(protocol.HELLO, {"producer": peer.decode()}), 0)
    core.take_outgoing()  # the WELCOMEs
    return SimpleNamespace(core=core)


def ask(process, request, now: float = 1.0):
    reply = control.handle_control_request(process, [b"id", b"", json.dumps(request).encode()], now)
    return json.loads(reply[-1])


def test_every_command_has_one_handler_in_the_table():
    expected = {"status", "mode", "rate", "spike", "slow", "restore", "stall", "batch", "workers",
                "discipline"}  # fmt: skip
    assert set(control.COMMANDS) == expected
    assert all(callable(handler) for handler in control.COMMANDS.values())


def test_rate_and_spike_queue_one_control_frame_per_active_producer():
    process = process_with(b"a", b"b")
    assert ask(process, {"cmd": "rate", "value": 200})["producers"] == 2
    ask(process, {"cmd": "spike", "factor": 3, "duration": 2})
    sent = [(peer, protocol.decode_json(frame)) for peer, frame in process.core.take_outgoing()]
    assert sent == [
        (b"a", {"rate": 200.0}),
        (b"b", {"rate": 200.0}),
        (b"a", {"spike": {"factor": 3.0, "duration": 2.0}}),
        (b"b", {"spike": {"factor": 3.0, "duration": 2.0}}),
    ]
    assert process.core.events[-1][1] == "producers asked to spike x3 for 2 s"


def test_producer_commands_without_producers_are_refused_and_queue_nothing():
    process = process_with()
    assert ask(process, {"cmd": "rate", "value": 5}) == {
        "ok": False,
        "error": "no producer is connected",
    }
    assert process.core.take_outgoing() == []


def test_slow_restore_and_stall_go_through_the_core():
    process = process_with(b"a")
    assert ask(process, {"cmd": "slow"})["slowdown"] == 4.0
    assert ask(process, {"cmd": "restore"})["slowdown"] == 1.0
    ask(process, {"cmd": "stall", "value": 2}, now=1.0)
    assert process.core.worker.stalled_until == 3.0
    assert [text for _, text in process.core.events][-3:] == [
        "worker slowed down x4",
        "worker back to full speed",
        "worker stalled for 2 s",
    ]


@pytest.mark.parametrize(
    "request_, error",
    [
        ({"cmd": "nope"}, "unknown command 'nope'"),
        ({"cmd": ["status"]}, "unknown command ['status']"),
        ({"cmd": "mode", "value": "fast"}, "unknown mode 'fast'"),
        ({"cmd": "stall", "value": -1}, "seconds must be a finite number > 0"),
    ],
)
def test_bad_requests_get_one_clear_error(request_, error):
    reply = ask(process_with(b"a"), request_)
    assert reply["ok"] is False and reply["error"].startswith(error)
