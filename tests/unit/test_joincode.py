"""Join codes: round trips, and every kind of damage gives one clear error."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lab.core import joincode
from lab.core.joincode import JoinCode, JoinCodeError

KEY = bytes(range(32))


def test_ipv4_round_trip_and_shape():
    code = JoinCode("192.168.1.23", 12000, KEY)
    text = code.encode()
    assert joincode.decode(text) == code
    groups = text.split("-")
    assert len(text.replace("-", "")) == 66
    assert all(len(g) == 5 for g in groups[:-1]) and len(groups) == 14


def test_ipv6_round_trip():
    code = JoinCode("fe80::1", 65535, KEY)
    assert joincode.decode(code.encode()) == code


def test_reading_mistakes_are_forgiven():
    text = JoinCode("10.0.0.7", 13000, KEY).encode()
    sloppy = text.lower().replace("-", " ").replace("0", "o").replace("1", "l")
    assert joincode.decode(sloppy) == joincode.decode(text)


@given(
    st.ip_addresses().map(str),
    st.integers(1, 65535),
    st.binary(min_size=32, max_size=32),
)
def test_round_trip_property(host, port, key):
    code = JoinCode(host, port, key)
    assert joincode.decode(code.encode()) == code


@given(st.binary(min_size=32, max_size=32), st.integers(0, 65), st.integers(1, 31))
def test_any_one_changed_character_is_caught(key, position, delta):
    text = JoinCode("192.168.0.10", 12000, key).encode().replace("-", "")
    changed = joincode.ALPHABET[(joincode.ALPHABET.index(text[position]) + delta) % 32]
    damaged = text[:position] + changed + text[position + 1 :]
    with pytest.raises(JoinCodeError):
        joincode.decode(damaged)


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda t: t[:-5], "too short"),
        (lambda t: t + "00000", "too long"),
        (lambda t: t[:10] + "U" + t[11:], "never in a code"),
        (lambda t: "", "empty"),
        (lambda t: "Z" + t[1:], "does not start like"),
    ],
)
def test_damaged_codes_say_what_is_wrong(damage, message):
    text = JoinCode("192.168.0.10", 12000, KEY).encode()
    with pytest.raises(JoinCodeError, match=message):
        joincode.decode(damage(text))


@pytest.mark.parametrize("position", [0, 33, 65])
@pytest.mark.parametrize("delta", [1, 2, 3, 16])
def test_changed_characters_at_the_edges_are_caught(position, delta):
    """The last character carries two padding bits: changing only those is caught too."""
    text = JoinCode("192.168.0.10", 12000, KEY).encode().replace("-", "")
    changed = joincode.ALPHABET[(joincode.ALPHABET.index(text[position]) + delta) % 32]
    with pytest.raises(JoinCodeError):
        joincode.decode(text[:position] + changed + text[position + 1 :])


def test_swapped_characters_fail_the_checksum():
    text = JoinCode("192.168.0.10", 12000, KEY).encode().replace("-", "")
    swapped = text[:20] + text[21] + text[20] + text[22:]
    assert swapped != text
    with pytest.raises(JoinCodeError, match="checksum"):
        joincode.decode(swapped)


def test_bad_inputs_to_encode():
    with pytest.raises(ValueError):
        JoinCode("192.168.0.1", 0, KEY).encode()
    with pytest.raises(ValueError):
        JoinCode("192.168.0.1", 80, b"short").encode()
    with pytest.raises(ValueError):
        JoinCode("not-an-address", 80, KEY).encode()
