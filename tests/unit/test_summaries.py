"""The plain summaries printed when a process stops carry their lesson's numbers."""

from __future__ import annotations

import os

from lab.core.config import ConsumerConfig, ProducerConfig
from lab.processes import demo
from lab.processes.consumer import lesson_line as consumer_lesson
from lab.processes.demo import summary_lines
from lab.processes.producer import lesson_line as producer_lesson
from lab.processes.producer import only_meaningful
from lab.tools.sim import simulate


def _run(consumer: ConsumerConfig, producer: ProducerConfig, duration: float = 6.0):
    result = simulate(consumer, [producer], duration=duration)
    return result.consumer, result.producers[0]


def test_module_15_producer_summary_has_recovery_amplification_breaker_and_timeouts():
    consumer = ConsumerConfig(module=15, mode="shed", capacity=100, process_rate=100.0)
    producer = ProducerConfig(
        module=15, rate=50.0, profile="spike", spike_at=1.0, spike_duration=2.0,
        spike_factor=4.0, retry="backoff", breaker=True, timeout_s=1.0, max_attempts=4,
    )  # fmt: skip
    _, summary = _run(consumer, producer, duration=12.0)
    text = producer_lesson(only_meaningful(summary, knows_processed=True))
    assert f"retry amplification {summary['retry_amplification']:.2f}" in text
    assert f"timed out {summary['timed_out']:,}" in text
    assert f"breaker failed fast {summary['breaker_rejected']:,}" in text
    recovery = summary["recovery_s"]
    assert (f"recovered {recovery:.1f} s" if recovery is not None else "NOT recovered") in text


def test_module_14_producer_summary_says_how_many_wait_in_its_outbox():
    consumer = ConsumerConfig(module=14, mode="admit", capacity=50, process_rate=100.0)
    producer = ProducerConfig(module=14, rate=200.0, limit="token-bucket", limit_rate=50.0)
    _, summary = _run(consumer, producer)
    assert summary["pending"] > 0  # the limiter holds the excess back
    text = producer_lesson(summary)
    assert f"{summary['pending']:,} still waiting in the outbox" in text


def test_module_13_producer_json_leaves_out_what_means_nothing_there():
    consumer = ConsumerConfig(module=13, mode="priority-shed", capacity=50, process_rate=100.0)
    producer = ProducerConfig(module=13, rate=200.0, profile="spike", spike_at=1.0)
    _, summary = _run(consumer, producer)
    assert summary["processed"] == 0
    shown = only_meaningful(summary, knows_processed=False)
    assert shown["processed"] is None and shown["recovery_s"] is None
    assert only_meaningful(summary, knows_processed=True)["processed"] == 0
    assert "time to verdict p99 by class: checkout" in producer_lesson(summary)


def test_module_13_consumer_summary_counts_losses_by_class():
    consumer = ConsumerConfig(module=13, mode="drop", capacity=50, process_rate=100.0)
    summary, _ = _run(consumer, ProducerConfig(module=13, rate=300.0))
    row = summary["classes"][0]
    lost = row["dropped"] + row["shed"] + row["sampled_out"]
    assert f"checkout lost {lost:,} of {row['received']:,}" in consumer_lesson(summary)


def test_the_demo_summary_breaks_between_words(monkeypatch, capsys):
    consumer = ConsumerConfig(module=12, mode="shed", capacity=50, process_rate=10.0)
    summary, producer = _run(consumer, ProducerConfig(module=12, rate=40.0))
    summary["rss_mb_max"] = 40.0
    monkeypatch.setattr(
        demo.shutil, "get_terminal_size", lambda fallback: os.terminal_size((44, 24))
    )
    lines = summary_lines(summary, producer)
    for text in lines:
        demo._say_wrapped(text)
    printed = capsys.readouterr().err.splitlines()
    assert len(printed) > len(lines)  # it had to wrap ...
    assert all(len(row) <= 43 for row in printed)  # ... within the terminal ...
    assert " ".join(printed).split() == " ".join(lines).split()  # ... and no word was cut
    assert f"shed {summary['shed']:,}," in " ".join(printed)
