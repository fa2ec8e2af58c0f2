"""Configs built and checked in one place: flag > module row > dataclass default, and every
bad setting a ``ValueError`` with the one line the CLI prints."""

from __future__ import annotations

import math
from dataclasses import fields

import pytest

from lab.core import producer_core
from lab.core.config import (
    CONSUMER_SETTINGS,
    PRODUCER_SETTINGS,
    RETRY_POLICIES,
    ConsumerConfig,
    ProducerConfig,
)
from lab.core.modules import all_modules, get_module


def test_a_module_row_overrides_the_lab_default_and_a_flag_overrides_the_row():
    spec = get_module(14)  # admit mode, capacity 50, admit_rate 80
    config = ConsumerConfig.for_module(spec, admit_rate=5.0)
    assert (config.module, config.mode, config.admit_rate) == (14, "admit", 5.0)
    assert config.admit_burst == 20  # the row's
    assert config.degrade_high == 0.8  # the dataclass's: module 14 does not set it


def test_flags_in_ms_fill_fields_in_seconds_and_module_rows_in_ms_too():
    spec = get_module(15)  # backoff_base_ms 500, timeout_ms 1000 in its row
    config = ProducerConfig.for_module(spec, backoff_cap_ms=20000.0, breaker_open_ms=300.0)
    assert config.backoff_base_s == 0.5 and config.timeout_s == 1.0
    assert config.backoff_cap_s == 20.0 and config.breaker_open_s == 0.3


def test_rate_is_seconds_between_messages_and_mps_is_messages_per_second():
    spec = get_module(12)
    assert ProducerConfig.for_module(spec, rate=0.05).rate == pytest.approx(20.0)
    assert ProducerConfig.for_module(spec, mps="100").rate == 100.0
    assert ProducerConfig.for_module(spec, mps="max").rate == math.inf
    assert ProducerConfig.for_module(spec).rate == spec.producer["rate"]
    with pytest.raises(ValueError, match="either --rate"):
        ProducerConfig.for_module(spec, rate=0.1, mps="5")


def test_backpressure_is_block_and_contradicting_it_is_an_error():
    spec = get_module(12)
    assert ConsumerConfig.for_module(spec, backpressure=True).mode == "block"
    with pytest.raises(ValueError, match="--backpressure means --mode block"):
        ConsumerConfig.for_module(spec, backpressure=True, mode="drop")


@pytest.mark.parametrize(
    "make, line",
    [
        (lambda s: ConsumerConfig.for_module(s, mode="turbo"), "--mode 'turbo' is not allowed"),
        (lambda s: ConsumerConfig.for_module(s, buffer=0), "--buffer must be at least 1"),
        (lambda s: ConsumerConfig.for_module(s, process_rate="-5"), "--process-rate must be"),
        (lambda s: ConsumerConfig.for_module(s, wait_target_ms=-5.0), "got -5.0"),
        (
            lambda s: ConsumerConfig.for_module(s, shed_watermarks="1.5,0.8,0.5"),
            "fractions in (0, 1], got '1.5,0.8,0.5'",
        ),
        (
            lambda s: ProducerConfig.for_module(s, backoff_base_ms=-5.0),
            "finite number >= 0, got -5",
        ),
        (lambda s: ProducerConfig.for_module(s, max_attempts=256), "between 1 and 255"),
        (lambda s: ProducerConfig.for_module(s, mps="fast"), "--mps takes a number"),
        (lambda s: ProducerConfig.for_module(s, rate=-0.1), "--rate must be a finite number > 0"),
        (lambda s: ProducerConfig.for_module(s, priority_mix="1,-1"), "--priority-mix needs"),
    ],
)
def test_each_bad_setting_is_one_line_naming_its_flag(make, line):
    with pytest.raises(ValueError) as error:
        make(get_module(12))
    assert line in str(error.value) and "\n" not in str(error.value)


def test_every_module_row_key_feeds_a_field_and_every_module_builds():
    consumer_keys = {s.key for s in CONSUMER_SETTINGS.values()}
    producer_keys = {s.key for s in PRODUCER_SETTINGS.values()}
    for spec in all_modules():
        assert set(spec.consumer) <= consumer_keys, spec.number
        assert set(spec.producer) <= producer_keys, spec.number
        ConsumerConfig.for_module(spec)
        ProducerConfig.for_module(spec)


def test_the_settings_tables_name_real_fields():
    assert set(CONSUMER_SETTINGS) <= {f.name for f in fields(ConsumerConfig)}
    assert set(PRODUCER_SETTINGS) <= {f.name for f in fields(ProducerConfig)}
    with pytest.raises(TypeError, match="unknown flags: bufer"):
        ConsumerConfig.for_module(get_module(12), bufer=5)


def test_retry_names_match_the_producer_core():
    assert RETRY_POLICIES == producer_core.RETRY_POLICIES
