"""Pull mode's demand ledgers, the slow link's delay line and the REQUEST frame."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lab.core import protocol
from lab.core.delayline import DelayLine
from lab.core.demand import UNBOUNDED, Demand, Requester


def test_demand_adds_up_and_never_grants_past_it():
    demand = Demand()
    assert demand.take(5) == 0
    demand.request(3)
    demand.request(4)
    assert demand.outstanding == 7
    assert demand.take(5) == 5
    assert demand.take(5) == 2
    assert demand.take(1) == 0
    assert (demand.requested, demand.sent) == (7, 7)


def test_request_zero_is_refused_and_huge_demand_is_unbounded():
    demand = Demand()
    with pytest.raises(ValueError):
        demand.request(0)
    demand.request(UNBOUNDED)
    demand.request(10)
    assert demand.requested == UNBOUNDED


@given(st.lists(st.tuples(st.booleans(), st.integers(1, 1000)), max_size=200))
def test_sent_never_exceeds_the_sum_requested(steps):
    demand = Demand()
    asked = 0
    for is_request, n in steps:
        if is_request:
            demand.request(n)
            asked += n
        else:
            demand.take(n)
        assert demand.sent <= asked
        assert demand.outstanding >= 0


def test_requester_fills_the_window_then_asks_per_completion():
    requester = Requester(window=10)
    assert requester.due() == 10
    assert requester.due() == 0
    requester.finish(1)
    assert requester.due() == 1
    requester.finish(3)
    assert requester.due() == 3
    assert requester.promised == 10


def test_requester_asks_in_whole_chunks():
    requester = Requester(window=10, request_n=4)
    assert requester.due() == 8
    requester.finish(1)
    assert requester.due() == 0  # 3 free: less than one chunk
    requester.finish(1)
    assert requester.due() == 4
    assert requester.promised == 10


def test_requester_resize_never_takes_promised_room_back():
    requester = Requester(window=10)
    requester.due()
    requester.resize(4)
    requester.finish(5)
    assert requester.due() == 0  # 5 still promised, window 4
    requester.finish(2)
    assert requester.due() == 1


@given(
    st.integers(1, 50),
    st.integers(1, 50),
    st.lists(st.integers(0, 20), max_size=100),
)
def test_requester_never_promises_more_than_the_window(window, request_n, finishes):
    requester = Requester(window=window, request_n=min(request_n, window))
    requester.due()
    for count in finishes:
        requester.finish(count)
        requester.due()
        assert 0 <= requester.promised <= window


def test_delay_line_releases_at_exact_deadlines_in_order():
    line = DelayLine(0.05)
    assert line.push("a", 1.0) == pytest.approx(1.05)
    line.push("b", 1.01)
    assert line.next_deadline() == pytest.approx(1.05)
    assert line.release(1.049) == []
    assert line.release(1.05) == [(pytest.approx(1.05), "a")]
    line.set_delay(0.0)
    line.push("c", 1.055)  # may not overtake b, due at 1.06
    assert line.release(1.059) == []
    assert [item for _, item in line.release(1.07)] == ["b", "c"]
    assert line.passed == 3 and len(line) == 0 and line.next_deadline() is None


def test_delay_line_refuses_negative_delay():
    with pytest.raises(ValueError):
        DelayLine(-0.001)


def _window_over_link(window, delay, service, until):
    """Requester, two delay lines and a one-at-a-time worker in simulated time; returns
    the times records finished, up to ``until``."""
    requester, demand = Requester(window), Demand()
    down, up = DelayLine(delay), DelayLine(delay)  # down: data; up: requests
    queue, busy_until, served, now = 0, None, [], 0.0
    up.push(requester.due(), now)
    while now <= until:
        for _, n in up.release(now):
            demand.request(n)
        for _ in range(demand.take(demand.outstanding)):
            down.push(1, now)
        queue += len(down.release(now))
        if busy_until is not None and busy_until <= now:
            busy_until = None
            served.append(now)
            requester.finish(1)
            n = requester.due()
            if n:
                up.push(n, now)
        if busy_until is None and queue:
            queue, busy_until = queue - 1, now + service
        events = [t for t in (up.next_deadline(), down.next_deadline(), busy_until) if t]
        now = min(events)
    return served


def test_throughput_is_window_over_round_trip_plus_service():
    # W = 10, D = 50 ms, 1 ms service: each credit goes round in 2D + s = 101 ms.
    done = _window_over_link(10, 0.05, 0.001, until=12.0)
    # 100 round trips of 10 in 10.1 s: W / (2D + s) = 99.0 msg/s, not W / 2D = 100.
    assert sum(1 for t in done if 1.0505 <= t < 1.0505 + 10.1) == 1000
    # W = 200 covers the bandwidth-delay product (1,000 msg/s x 101 ms): the worker limits.
    done = _window_over_link(200, 0.05, 0.001, until=12.0)
    assert sum(1 for t in done if 1.0005 <= t < 11.0005) == 10000


def test_request_frame_round_trips_and_zero_is_malformed():
    frame = protocol.encode_request(25)
    assert protocol.frame_type(frame) == protocol.REQUEST
    assert protocol.decode_request(frame) == 25
    with pytest.raises(protocol.ProtocolError):
        protocol.decode_request(frame[:4] + b"\x00" * 8)
    with pytest.raises(protocol.ProtocolError):
        protocol.decode_request(frame[:-1])


def test_validate_plans_the_window_against_min_mu_and_w_over_2d_plus_s():
    from lab.tools.bench.validate import ValidatePlan, Window, experiments

    plan = ValidatePlan()
    assert Window(plan, 10).theory() == pytest.approx(10 / 0.101)
    assert Window(plan, 100).theory() == pytest.approx(100 / 0.101)
    assert Window(plan, 1000).theory() == 1000.0  # past the bandwidth-delay product
    quick = [e for group in experiments(ValidatePlan.quick_plan()) for e in group]
    assert [e.size for e in quick if isinstance(e, Window)] == [10]
    # the full plan runs the windows last and by themselves (beside other runs they measure
    # the machine's load, not the link)
    *_, windows = experiments(plan)
    assert [type(e) for e in windows] == [Window, Window]
    assert [e.size for e in windows] == [10, 100]


def test_panel_18_shows_the_window_the_link_and_the_bound():
    import io

    from rich.console import Console

    from lab.core import telemetry
    from lab.ui.dashboard import DashboardState
    from lab.ui.panels import MODULE_PANELS

    state = DashboardState(18, "Flow control over a slow link", 18000)
    state.update(
        telemetry.complete(
            {
                "role": "consumer",
                "id": "c",
                "limit": 10,
                "service_rate": 1000.0,
                "link_delay_ms": 50.0,
                "on_link": 3,
                "depth": 1,
                "credit_outstanding": 6,
                "rates": {"processed": 96.0},
            }
        ),
        1.0,
    )
    out = io.StringIO()
    Console(file=out, width=120).print(MODULE_PANELS[18](state, 1.0))
    text = out.getvalue()
    assert "window 10" in text and "frames on the link 3" in text and "credit out 6" in text
    assert "99" in text and "bound" in text  # 10 / (100 ms + 1 ms) = 99 msg/s


def test_demo_18_gives_both_children_the_slow_link():
    from lab.core.modules import get_module
    from lab.processes.demo import DemoRun, child_argv

    run = DemoRun.for_module(get_module(18))
    for role in ("consumer", "producer"):
        argv = child_argv(role, run)
        assert argv[argv.index("--link-delay-ms") + 1] == "50.0"
    fast = DemoRun.for_module(get_module(18), link_delay_ms=0.0)
    assert "--link-delay-ms" not in child_argv("producer", fast)
