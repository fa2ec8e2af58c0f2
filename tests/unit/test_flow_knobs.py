"""Module 18's live knobs (window, link delay) and the demand pull mode shows, in the cores.

The consumer core is driven by hand with a fake clock: HELLO, DATA and time, as the shell
would hand them in; every figure is exact.
"""

from __future__ import annotations

import pytest

from lab.core import protocol
from lab.core.clock import FakeClock
from lab.core.config import ConsumerConfig, ProducerConfig
from lab.core.consumer_core import ConsumerCore
from lab.core.flow_knobs import DELAY_STEPS_MS, MAX_WINDOW, delay_after, window_after
from lab.core.producer_core import ProducerCore


def hello(core: ConsumerCore, clock: FakeClock, sent: int = 0, peer: bytes = b"p") -> None:
    """A HELLO (the first, or a heartbeat: a producer silent for 2 s loses its credit)."""
    body = {"producer": peer.decode(), "sent": sent}
    core.on_frame(peer, protocol.encode_json(protocol.HELLO, body), clock.now())
    core.advance(clock.now())


def data(core: ConsumerCore, clock: FakeClock, first: int, count: int, peer: bytes = b"p"):
    records = [protocol.Record(first + i, clock.now(), clock.now()) for i in range(count)]
    core.on_frame(peer, protocol.encode_data(records, first), clock.now())
    core.advance(clock.now())


def requested(frames) -> int:
    return sum(
        protocol.decode_request(frame)
        for _, frame in frames
        if protocol.frame_type(frame) == protocol.REQUEST
    )


# -- the steps -------------------------------------------------------------------------------
def test_the_delay_steps_along_the_ladder_and_stops_at_its_ends():
    assert DELAY_STEPS_MS == (0.0, 10.0, 50.0, 100.0, 200.0)
    assert [delay_after(d, "more") for d in (0, 10, 50, 100, 200)] == [10, 50, 100, 200, 200]
    assert [delay_after(d, "less") for d in (200, 100, 50, 10, 0)] == [100, 50, 10, 0, 0]
    assert delay_after(75.0, "more") == 100.0 and delay_after(75.0, "less") == 50.0
    assert delay_after(0.0, 12.5) == 12.5 and delay_after(50.0, "0") == 0.0


@pytest.mark.parametrize(
    "value, error",
    [
        (-1, "--link-delay-ms must be between 0 and 10000, got -1"),
        (10_001, "--link-delay-ms must be between 0 and 10000, got 10001"),
        ("slower", "delay takes a number of ms or one of more, less, got 'slower'"),
        (None, "delay takes a number of ms or one of more, less, got None"),
    ],
)
def test_a_bad_delay_is_one_clear_error(value, error):
    with pytest.raises(ValueError) as raised:
        delay_after(50.0, value)
    assert str(raised.value) == error


def test_the_window_doubles_halves_and_stays_in_its_bounds():
    assert window_after(10, "double") == 20 and window_after(10, "half") == 5
    assert window_after(1, "half") == 1 and window_after(4, "half", lowest=3) == 3
    assert window_after(MAX_WINDOW, "double") == MAX_WINDOW
    assert window_after(10, 101) == 101 and window_after(10, "64") == 64
    for bad in (0, MAX_WINDOW + 1, 2.5, True, "triple", None):
        with pytest.raises(ValueError):
            window_after(10, bad)


# -- the window in block mode: credit follows it, promised room is never taken back -----------
def block_consumer(clock: FakeClock) -> ConsumerCore:
    config = ConsumerConfig(module=18, mode="block", capacity=10, process_rate=1.0)
    core = ConsumerCore(config, clock.now())
    hello(core, clock)
    core.take_outgoing()
    return core


def test_a_doubled_window_is_handed_out_as_credit_at_once():
    clock = FakeClock()
    core = block_consumer(clock)
    assert core.credit.promised() == 10
    assert core.set_window("double", clock.now()) == "window set to 20"
    assert (core.buffer.capacity, core.credit.promised()) == (20, 20)
    assert core.snapshot(clock.now())["limit"] == 20 and core.events[-1][1] == "window set to 20"


def test_a_halved_window_waits_for_the_promised_room_to_be_used():
    clock = FakeClock()
    core = block_consumer(clock)
    core.set_window("double", clock.now())  # 20 of credit out
    core.set_window("half", clock.now())
    assert (core.config.capacity, core.buffer.capacity) == (10, 20)  # 20 are promised
    clock.advance(1.0)
    data(core, clock, 0, 20)  # all that credit, at once: none may be dropped
    totals = core.totals()
    assert (totals.accepted, totals.dropped, core.buffer.depth) == (20, 0, 20)
    clock.advance(5.0)  # 1 msg/s: 5 done, 15 held, nothing promised
    hello(core, clock, sent=20)
    assert (core.buffer.depth, core.buffer.capacity, core.credit.promised()) == (15, 15, 0)
    clock.advance(5.0)
    hello(core, clock, sent=20)
    assert (core.buffer.depth, core.buffer.capacity, core.credit.promised()) == (10, 10, 0)
    clock.advance(1.0)  # the window of 10 is in force: one done, one credit
    hello(core, clock, sent=20)
    assert (core.buffer.depth, core.buffer.capacity, core.credit.promised()) == (9, 10, 1)


def test_the_unbounded_mode_has_no_window():
    clock = FakeClock()
    core = ConsumerCore(ConsumerConfig(mode="unbounded"), clock.now())
    with pytest.raises(ValueError, match="the unbounded mode has no window"):
        core.set_window("double", clock.now())


# -- pull mode: the demand each end holds ------------------------------------------------------
def pull_consumer(clock: FakeClock) -> ConsumerCore:
    config = ConsumerConfig(module=18, mode="pull", capacity=10, process_rate=1.0)
    core = ConsumerCore(config, clock.now())
    hello(core, clock)
    return core


def test_the_consumer_snapshot_counts_demand_requested_and_not_yet_received():
    clock = FakeClock()
    core = pull_consumer(clock)
    assert requested(core.take_outgoing()) == 10
    assert core.snapshot(clock.now())["demand_outstanding"] == 10
    data(core, clock, 0, 4)  # 4 arrive: one in service, 3 wait
    assert core.snapshot(clock.now())["demand_outstanding"] == 6
    clock.advance(1.0)  # one is done: its room is asked for again
    core.advance(clock.now())
    assert requested(core.take_outgoing()) == 1
    snap = core.snapshot(clock.now())
    assert (snap["demand_outstanding"], snap["depth"], snap["credit_outstanding"]) == (7, 3, None)


def test_block_mode_has_no_demand_in_its_snapshot():
    assert block_consumer(FakeClock()).snapshot(0.0)["demand_outstanding"] is None


def test_a_halved_window_in_pull_mode_keeps_room_for_what_was_requested():
    clock = FakeClock()
    core = pull_consumer(clock)
    core.take_outgoing()  # REQUEST(10)
    core.set_window("half", clock.now())
    assert core.buffer.capacity == 10  # 10 requested, none arrived
    data(core, clock, 0, 10)
    assert (core.totals().dropped, core.buffer.depth) == (0, 10)
    clock.advance(5.0)
    hello(core, clock, sent=10)
    assert (core.buffer.depth, core.buffer.capacity) == (5, 5)
    assert requested(core.take_outgoing()) == 0  # the window of 5 is full
    clock.advance(1.0)
    hello(core, clock, sent=10)
    assert requested(core.take_outgoing()) == 1


def welcomed_pull_producer() -> ProducerCore:
    core = ProducerCore(ProducerConfig(module=18, messages_per_s=100.0), 0.0)
    core.advance(0.0)
    core.take_control_frames()  # the HELLO
    welcome = {"session": "s", "mode": "pull", "pull": True, "capacity": 10, "window": 10}
    core.on_frame(protocol.encode_json(protocol.WELCOME, welcome), 0.0)
    return core


def test_the_producer_snapshot_holds_the_demand_it_was_given_and_has_not_used():
    core = welcomed_pull_producer()
    assert core.snapshot(0.0)["demand"] == 0
    core.on_frame(protocol.encode_request(10), 0.0)
    assert core.snapshot(0.0)["demand"] == 10
    core.advance(0.025)  # three messages due at 100 msg/s (0, 10 and 20 ms)
    frame = core.pull_frame(0.025)
    assert frame is not None and len(frame.entries) == 3
    core.mark_sent(frame, 0.025)
    assert core.snapshot(0.025)["demand"] == 7


def test_a_producer_outside_pull_mode_reports_no_demand():
    core = ProducerCore(ProducerConfig(module=18), 0.0)
    assert core.snapshot(0.0)["demand"] is None


# -- the link delay at the producer ------------------------------------------------------------
def test_a_control_frame_hands_the_producer_shell_a_new_link_delay_once():
    core = welcomed_pull_producer()
    assert core.link.take_delay() is None
    core.on_frame(protocol.encode_json(protocol.CONTROL, {"link_delay_ms": 100.0}), 1.0)
    assert core.link.take_delay() == 100.0
    assert core.link.take_delay() is None
    core.on_frame(protocol.encode_json(protocol.CONTROL, {"rate": 50.0}), 1.0)
    assert core.link.take_delay() is None and core.malformed == 0


@pytest.mark.parametrize("bad", [-5, 20_000, "far"])
def test_a_control_frame_with_a_bad_delay_is_malformed_and_changes_nothing(bad):
    core = welcomed_pull_producer()
    before = core.malformed
    core.on_frame(protocol.encode_json(protocol.CONTROL, {"link_delay_ms": bad}), 1.0)
    assert core.malformed == before + 1 and core.link.take_delay() is None


# -- the demo's keys ---------------------------------------------------------------------------
def test_the_demo_of_module_18_has_window_and_delay_keys_in_its_legend():
    from lab.core.modules import get_module
    from lab.ui.keys import key_actions, legend

    spec = get_module(18)
    actions = key_actions(spec.live_modes, knob=spec.knob)
    assert {key: (actions[key]["cmd"], actions[key]["value"]) for key in "[]<>,."} == {
        "]": ("window", "double"),
        "[": ("window", "half"),
        ">": ("delay", "more"),
        ".": ("delay", "more"),
        "<": ("delay", "less"),
        ",": ("delay", "less"),
    }
    assert "[/] window  </> delay  k spike" in legend(spec.live_modes, spec.knob)


def test_the_pull_demo_runs_over_the_same_slow_link():
    from lab.core.modules import get_module
    from lab.processes.demo import DemoRun, child_argv

    run = DemoRun.for_module(get_module(18), mode="pull")
    for role in ("consumer", "producer"):
        argv = child_argv(role, run)
        assert argv[argv.index("--link-delay-ms") + 1] == "50.0"
