"""Module 18's transport mode, the pure parts: the worker that reads only when free, the
receive log, the producer's refused sends, the ``ss`` parser and the hidden-buffer figures."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lab.core import protocol
from lab.core.service import ServiceModel
from lab.core.transport import (
    KernelQueues,
    ReceiveLog,
    TransportSender,
    TransportWorker,
    crash_loss,
    hidden_at_block,
    hidden_figures,
    parse_ss,
    wire_bytes,
)


# -- the worker ---------------------------------------------------------------------------------
def test_back_to_back_messages_start_at_the_previous_finish_however_late_the_loop_wakes():
    worker = TransportWorker(ServiceModel(rate=10.0), now=0.0)  # 0.1 s each
    worker.take(0, 0.0)
    # the loop wakes 0.35 s late: three services fit, each from the previous finish
    now, done = 0.45, []
    while True:
        seq = worker.finish(now)
        if seq is None:
            break
        done.append((seq, worker.free_at))
        worker.take(seq + 1, now)
    assert [seq for seq, _ in done] == [0, 1, 2, 3]
    assert worker.free_at == pytest.approx(0.5)
    assert (worker.received, worker.processed) == (5, 4)


def test_after_an_idle_spell_the_next_message_starts_when_it_is_read():
    worker = TransportWorker(ServiceModel(rate=10.0), now=0.0)
    worker.take(0, 0.0)
    assert worker.finish(0.1) == 0
    worker.found_nothing()
    worker.take(1, 2.0)
    assert worker.next_event() == pytest.approx(2.1)
    assert worker.finish(2.05) is None and worker.finish(2.1) == 1
    assert worker.next_event() is None and worker.free


def test_a_busy_worker_refuses_a_second_message():
    worker = TransportWorker(ServiceModel(rate=1.0), now=0.0)
    worker.take(0, 0.0)
    with pytest.raises(RuntimeError):
        worker.take(1, 0.5)


# -- the receive log ----------------------------------------------------------------------------
def test_the_log_counts_receipts_at_or_before_a_moment():
    log = ReceiveLog()
    for t in (10.0, 10.5, 11.0):
        log.add(t)
    assert [log.count_at(t) for t in (9.9, 10.0, 10.7, 11.0, 99.0)] == [0, 1, 2, 3, 3]
    assert len(log) == 3


def test_a_full_log_forgets_its_oldest_half_and_says_so():
    log = ReceiveLog(limit=4)
    for t in range(6):
        log.add(float(t))
    assert log.dropped == 2 and len(log) == 6
    assert log.count_at(0.5) is None  # forgotten
    assert log.count_at(3.0) == 4


# -- the producer -------------------------------------------------------------------------------
def test_a_paced_sender_owes_what_is_due_and_nothing_more():
    sender = TransportSender(rate=100.0, start=0.0)
    assert sender.owed(0.0) == 1  # message 0 is due at the start
    assert sender.owed(0.0499) == 5
    for _ in range(5):
        sender.sent_one(0.05)
    assert sender.owed(0.0499) == 0 and sender.next_due() == pytest.approx(0.05)


def test_an_unpaced_sender_always_owes():
    sender = TransportSender(rate=math.inf, start=3.0)
    assert sender.owed(3.0) == math.inf and sender.next_due() == 3.0


def test_the_first_refused_send_is_remembered_and_blocked_time_adds_up():
    sender = TransportSender(rate=math.inf, start=0.0)
    for _ in range(3):
        sender.sent_one(0.0)
    sender.refused(1.0, wall=500.0)
    sender.refused(1.5, wall=500.5)  # still the same block
    sender.sent_one(2.0)
    sender.refused(3.0, wall=502.0)
    status = sender.status(3.25)
    assert sender.first_block == (3, 500.0)
    assert status["blocks"] == 2 and status["blocked"] is True
    assert status["blocked_s"] == pytest.approx(1.25)
    assert status["blocked_for_s"] == pytest.approx(0.25)
    assert (status["sent"], status["sent_at_first_block"], status["first_block_wall"]) == (
        4,
        3,
        500.0,
    )
    assert (status["sent_at_block"], status["block_wall"]) == (4, 502.0)


def test_a_rate_of_zero_is_refused():
    with pytest.raises(ValueError):
        TransportSender(rate=0.0, start=0.0)


# -- the figures --------------------------------------------------------------------------------
def test_hidden_at_block_is_sent_minus_received_at_that_moment():
    log = ReceiveLog()
    for t in (1.0, 2.0, 3.0):
        log.add(t)
    assert hidden_at_block((3000, 2.5), log) == 2998
    assert hidden_at_block(None, log) is None


SS_ESTABLISHED = """\
Recv-Q  Send-Q   Local Address:Port   Peer Address:Port  Process
0       2616320  127.0.0.1:43210      127.0.0.1:18000
4194304 0        127.0.0.1:18000      127.0.0.1:43210
0       0        127.0.0.1:43211      127.0.0.1:18002
\t cubic wscale:7,7 rto:204 rtt:0.05/0.025 mss:32768 pmtu:65535 rcvmss:536
"""


def test_ss_without_a_state_column_and_with_info_lines():
    assert parse_ss(SS_ESTABLISHED, 18000) == KernelQueues(2616320, 4194304, 1)
    assert parse_ss(SS_ESTABLISHED, 18002) == KernelQueues(0, 0, 1)


def test_ss_of_ipv6_and_of_no_connection():
    text = "ESTAB 12 34 [::1]:18000 [::1]:5555\nESTAB 0 56 [::1]:5555 [::1]:18000\n"
    assert parse_ss(text, 18000) == KernelQueues(56, 12, 1)
    assert parse_ss(text, 19000) is None
    assert parse_ss("", 18000) is None


def test_a_message_on_the_wire_is_the_frame_plus_zeromqs_header():
    frame = protocol.encode_data([protocol.Record(1, 0.0, 0.0, 0, 0, b"x" * 100)], 1)
    assert wire_bytes(100) == len(frame) + 2
    big = protocol.encode_data([protocol.Record(1, 0.0, 0.0, 0, 0, b"x" * 1000)], 1)
    assert wire_bytes(1000) == len(big) + 9


def test_the_figures_split_the_hidden_messages_between_kernel_and_zeromq():
    per_message = wire_bytes(100)
    kernel = KernelQueues(send_q=per_message * 300, recv_q=per_message * 700, connections=1)
    figures = hidden_figures(3000, 12, 11, kernel, 100)
    assert figures["hidden"] == 2988 and figures["lost_if_killed"] == 2989
    assert figures["in_kernel"] == 1000.0 and figures["in_zmq"] == 1988.0
    assert figures["in_service"] == 1


def test_the_figures_say_unknown_rather_than_guess():
    figures = hidden_figures(None, 5, 5, None, None)
    assert figures["hidden"] is None and figures["in_kernel"] is None
    assert figures["send_q"] is None and figures["lost_if_killed"] is None


@given(st.integers(0, 10**6), st.integers(0, 10**6), st.integers(0, 10**6))
def test_loss_is_never_negative_and_never_more_than_sent(sent, received, processed):
    processed = min(processed, received)
    lost = crash_loss(sent, processed)
    assert 0 <= lost <= sent
    figures = hidden_figures(sent, received, processed, None, 10)
    assert figures["hidden"] >= 0 and figures["hidden"] <= sent


# -- the command line ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "argv,message",
    [
        (["consumer", "--mode", "transport", "--hwm", "0"], "--hwm must be between"),
        (["consumer", "--mode", "transport", "--process-rate", "max"], "finite --process-rate"),
        (["producer", "--mode", "transport", "--mps", "0"], "--mps must be > 0"),
        (["producer", "--mode", "pull-me"], "--mode 'pull-me' is not allowed"),
        (["producer", "--mode", "transport", "--payload-bytes", "-1"], "--payload-bytes"),
    ],
)
def test_a_bad_transport_flag_is_one_line_and_exit_2(argv, message, capsys):
    from lab.ui import cli

    with pytest.raises(SystemExit) as done:
        cli.main(argv)
    assert done.value.code == 2
    assert message in " ".join(capsys.readouterr().err.split())


def test_panel_18_shows_the_hidden_buffers_in_transport_mode():
    from types import SimpleNamespace

    from rich.console import Console

    from lab.ui.panels import flow_control_panel

    figures = {
        "hwm": 10,
        "sent": 26350,
        "received": 118,
        "processed": 117,
        "hidden": 26232,
        "send_q": 3883008,
        "recv_q": 93520,
        "producer_blocked": True,
        "lost_if_killed": 26233,
    }
    console = Console(width=100, record=True)
    console.print(flow_control_panel(SimpleNamespace(consumer={"transport": figures}), 0.0))
    text = console.export_text()
    assert "26,350 by the producer" in text and "118 by the consumer" in text
    assert "26,232 in transport buffers" in text
    assert "Send-Q 3,883,008 B · Recv-Q 93,520 B (hwm 10)" in text
    assert "blocked: its send is refused" in text and "26,233 lost, unseen" in text
