"""Control commands: one table from command to handler, all through the core's public API."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from lab.core import protocol
from lab.core.config import ConsumerConfig
from lab.core.consumer_core import ConsumerCore
from lab.processes import control


class Shell(SimpleNamespace):
    """The consumer process as the control handlers see it: its core, its link delay."""

    def set_link_delay(self, delay_ms: float) -> None:
        self.run_options.link_delay_ms = delay_ms


def process_with(*peers: bytes, mode: str = "drop", delay_ms: float = 0.0):
    core = ConsumerCore(ConsumerConfig(mode=mode, capacity=5, process_rate=10.0), 0.0)
    for peer in peers:
        core.on_frame(peer, protocol.encode_json(protocol.HELLO, {"producer": peer.decode()}), 0)
    core.take_outgoing()  # the WELCOMEs
    return Shell(core=core, run_options=SimpleNamespace(link_delay_ms=delay_ms))


def ask(process, request, now: float = 1.0):
    reply = control.handle_control_request(process, [b"id", b"", json.dumps(request).encode()], now)
    return json.loads(reply[-1])


def test_every_command_has_one_handler_in_the_table():
    expected = {"status", "mode", "rate", "spike", "slow", "restore", "stall", "batch", "workers",
                "discipline", "window", "delay"}  # fmt: skip
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


# -- Module 18's knobs -------------------------------------------------------------------------
def test_window_doubles_halves_and_sets_the_buffer_credit_is_handed_out_against():
    process = process_with(b"a", mode="block")
    assert process.core.credit.promised() == 5
    reply = ask(process, {"cmd": "window", "value": "double"})
    assert (reply["capacity"], reply["note"]) == (10, "window set to 10")
    assert process.core.credit.promised() == 10
    assert ask(process, {"cmd": "window", "value": 64})["note"] == "window set to 64"
    assert ask(process, {"cmd": "window", "value": "half"})["note"] == "window set to 32"


@pytest.mark.parametrize(
    "value, error",
    [
        ("triple", "window takes a whole number or one of double, half, got 'triple'"),
        (0, "a window is between 1 and 100000, got 0"),
        (200_000, "a window is between 1 and 100000, got 200000"),
    ],
)
def test_a_bad_window_is_refused_in_one_line(value, error):
    reply = ask(process_with(b"a", mode="block"), {"cmd": "window", "value": value})
    assert reply == {"ok": False, "error": error}


def test_delay_steps_both_ends_and_tells_every_producer():
    process = process_with(b"a", b"b", mode="block")
    reply = ask(process, {"cmd": "delay", "value": "more"})
    assert reply["note"] == "link delay 10 ms each way, 2 producer(s) told"
    assert process.run_options.link_delay_ms == 10.0
    ask(process, {"cmd": "delay", "value": "more"})
    ask(process, {"cmd": "delay", "value": 12.5})
    ask(process, {"cmd": "delay", "value": "less"})
    sent = [(peer, protocol.decode_json(frame)) for peer, frame in process.core.take_outgoing()]
    delays = [body["link_delay_ms"] for peer, body in sent if peer == b"a"]
    assert delays == [10.0, 50.0, 12.5, 10.0]
    assert [peer for peer, _ in sent] == [b"a", b"b"] * 4
    assert process.run_options.link_delay_ms == 10.0
    assert process.core.events[-1][1] == "link delay set to 10 ms"


def test_delay_with_no_producer_changes_the_consumer_end_only():
    process = process_with(delay_ms=50.0)
    reply = ask(process, {"cmd": "delay", "value": "less"})
    assert reply["ok"] and reply["note"] == "link delay 10 ms each way, 0 producer(s) told"
    assert process.run_options.link_delay_ms == 10.0 and process.core.take_outgoing() == []
    assert process.core.events[-1][1] == "link delay set to 10 ms here (no producer to tell)"


def test_a_bad_delay_changes_nothing():
    process = process_with(b"a", delay_ms=50.0)
    reply = ask(process, {"cmd": "delay", "value": -3})
    assert reply == {"ok": False, "error": "--link-delay-ms must be between 0 and 10000, got -3"}
    assert process.run_options.link_delay_ms == 50.0 and process.core.take_outgoing() == []
