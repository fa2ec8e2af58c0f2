"""The telemetry schema: it covers every field the cores send, fills defaults for missing
ones, and rejects known fields of the wrong type."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lab.core import protocol, telemetry
from lab.core.config import ConsumerConfig, ProducerConfig
from lab.tools.sim import simulate


def _real_snapshots():
    result = simulate(
        ConsumerConfig(mode="priority-shed", capacity=50, process_rate=100, module=13),
        [ProducerConfig(rate=200, module=13, retry="exponential")],
        duration=3.0,
    )
    consumer = result.consumer_core.snapshot(3.0, rss_mb=40.0, cpu_pct=5.0)
    consumer.update(id="consumer-5555", port=5555, t=1.7e9, telemetry_malformed=0)
    producer = result.producer_cores[0].snapshot(3.0, rss_mb=30.0, cpu_pct=3.0)
    producer.update(id="producer-1", t=1.7e9)
    return consumer, producer


def _restricted(value, like):
    """``value`` with only the keys ``like`` has, at every depth."""
    if isinstance(like, dict):
        return {key: _restricted(value[key], like[key]) for key in like}
    if isinstance(like, list):
        return [_restricted(v, w) for v, w in zip(value, like)]
    return value


def _keys(schema) -> set:
    return set(schema.__annotations__)


def test_the_schema_lists_every_field_the_cores_and_shells_send():
    consumer, producer = _real_snapshots()
    assert set(consumer) <= _keys(telemetry.ConsumerSnapshot)
    assert set(producer) <= _keys(telemetry.ProducerSnapshot)
    assert set(consumer["rates"]) == _keys(telemetry.ConsumerRates)
    assert set(consumer["totals"]) == _keys(telemetry.ConsumerTotals)
    assert set(producer["totals"]) == _keys(telemetry.ProducerTotals)
    assert set(producer["latency"]) == _keys(telemetry.Latency)
    assert set(consumer["classes"][0]) <= _keys(telemetry.ClassRow)
    assert set(consumer["producers"][0]) == _keys(telemetry.ProducerRow)


def test_a_real_snapshot_comes_back_as_it_was_plus_defaults():
    for snap in _real_snapshots():
        wire = json.loads(json.dumps(snap))
        done = telemetry.complete(wire)
        assert _restricted(done, wire) == wire
        assert protocol.decode_snapshot(protocol.encode_snapshot(snap)) == done


def test_an_old_snapshot_gets_every_default():
    done = telemetry.complete({"role": "consumer", "id": "c", "classes": [{"class": 0}]})
    assert done["mode"] == "?" and done["capacity"] is None and done["slowdown"] == 1.0
    assert done["rates"]["received"] == 0.0 and done["totals"]["dropped"] == 0
    assert done["classes"][0]["received_per_s"] is None
    assert done["classes"][0]["shed"] == 0
    producer = telemetry.complete({"role": "producer", "id": "p-7"})
    assert producer["name"] == "p-7" and producer["recovery"] is None
    assert producer["latency"] == {"p50_s": 0.0, "p95_s": 0.0, "p99_s": 0.0, "max_s": 0.0}


def test_a_null_in_a_required_field_is_its_default():
    assert telemetry.complete({"role": "consumer", "id": "c", "depth": None})["depth"] == 0


def test_defaults_are_fresh_copies():
    first = telemetry.empty("consumer", "c")
    first["classes"].append({"class": 0})
    first["rates"]["received"] = 9.0
    second = telemetry.empty("consumer", "c")
    assert second["classes"] == [] and second["rates"]["received"] == 0.0


@pytest.mark.parametrize(
    "snapshot, field",
    [
        ({"role": "consumer", "id": "c", "depth": "9"}, "depth"),
        ({"role": "consumer", "id": "c", "depth": True}, "depth"),
        ({"role": "consumer", "id": "c", "depth": 1 << 70}, "depth"),
        ({"role": "consumer", "id": "c", "rates": {"received": "x"}}, "rates.received"),
        ({"role": "consumer", "id": "c", "rates": [1]}, "rates"),
        ({"role": "consumer", "id": "c", "classes": [{"class": "0"}]}, "classes[0].class"),
        ({"role": "consumer", "id": "c", "events": [[1, 2]]}, "events[0]"),
        ({"role": "consumer", "id": "c", "policy_state": {"a": [1]}}, "policy_state"),
        ({"role": "consumer", "id": "c", "identity_ok": 1}, "identity_ok"),
        ({"role": "producer", "id": "p", "limiter": {"tokens": "many"}}, "limiter.tokens"),
        ({"role": "producer", "id": "p", "recovery": 3}, "recovery"),
        ({"role": "producer", "id": "p", "depth": "deep"}, "depth"),  # the consumer's field
        ({"role": "consumer", "id": "c", "latency": {"p99_s": "slow"}}, "latency"),
        ({"role": "producer", "id": "p", "rates": {"received": "fast"}}, "rates.received"),
        ({"role": "visualizer", "id": "v"}, "role"),
        ({"role": "producer", "id": 3}, "id"),
    ],
)
def test_a_known_field_of_the_wrong_type_is_malformed(snapshot, field):
    with pytest.raises(telemetry.TelemetryError, match=field.replace("[", r"\[")):
        telemetry.complete(snapshot)


def test_unknown_fields_are_kept_unchecked():
    done = telemetry.complete({"role": "producer", "id": "p", "future": {"x": [1]}})
    assert done["future"] == {"x": [1]}


def test_measured_p99_is_none_for_an_empty_window():
    assert telemetry.measured_p99({"p99_s": 0.0, "max_s": 0.0}) is None
    assert telemetry.measured_p99(None) is None
    assert telemetry.measured_p99({"p99_s": 0.002, "max_s": 0.003}) == 0.002


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=5,
)
FIELDS = st.sampled_from(sorted(_keys(telemetry.ConsumerSnapshot) - {"role", "id"}))


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.dictionaries(FIELDS, JSON, max_size=6))
def test_completion_either_rejects_or_returns_every_field(fields):
    try:
        done = telemetry.complete({"role": "consumer", "id": "c", **fields})
    except telemetry.TelemetryError:
        return
    assert _keys(telemetry.ConsumerSnapshot) <= set(done)
    assert isinstance(done["rates"]["received"], (int, float))
