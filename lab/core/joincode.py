"""Join codes: the instructor's address, base port and server key in a code read off a projector.

A code is Crockford base32 (digits and capitals, no I, L, O or U), in groups of five joined
by ``-``. Read aloud or typed from a screen, the usual confusions are forgiven: lower case,
``O`` for ``0``, ``I`` or ``L`` for ``1``, spaces instead of dashes. The bytes inside::

    1 byte   version (high 4 bits, 1) and address family (low 4 bits: 4 or 6)
    4 or 16  the instructor's IP address
    2 bytes  the base port, big-endian
    32 bytes the consumer's CURVE public key (raw, not z85)
    2 bytes  CRC-16/CCITT of everything before it

The key alone is 32 bytes, so an IPv4 code is 66 characters in 14 groups: long, but every
character is checked. The checksum and the length the version implies turn a mistyped or
truncated code into one clear line (:class:`JoinCodeError`), never a connection to the
wrong place.
"""

from __future__ import annotations

import binascii
import ipaddress
from dataclasses import dataclass

VERSION = 1
KEY_BYTES = 32
CHECK_BYTES = 2
GROUP = 5
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_DECODE = {ch: i for i, ch in enumerate(ALPHABET)}
_DECODE.update({"O": 0, "I": 1, "L": 1})
_ADDRESS_BYTES = {4: 4, 6: 16}


class JoinCodeError(ValueError):
    """A code that cannot be what an instructor's screen showed; the message says why."""


@dataclass(frozen=True)
class JoinCode:
    host: str
    port: int
    server_key: bytes  # 32 raw bytes

    def encode(self) -> str:
        return encode(self)


def encode(code: JoinCode) -> str:
    address = ipaddress.ip_address(code.host)
    if not 1 <= code.port <= 65535:
        raise ValueError(f"port {code.port} is not a TCP port")
    if len(code.server_key) != KEY_BYTES:
        raise ValueError(f"a CURVE public key is {KEY_BYTES} bytes, got {len(code.server_key)}")
    body = (
        bytes([VERSION << 4 | address.version])
        + address.packed
        + code.port.to_bytes(2, "big")
        + code.server_key
    )
    raw = body + _check(body)
    text = _to_base32(raw)
    return "-".join(text[i : i + GROUP] for i in range(0, len(text), GROUP))


def decode(text: str) -> JoinCode:
    """The code ``text`` stands for, or :class:`JoinCodeError` saying what is wrong with it."""
    cleaned = "".join(ch for ch in text.upper() if ch not in " -_\t\n")
    bad = sorted({ch for ch in cleaned if ch not in _DECODE})
    if bad:
        raise JoinCodeError(
            f"join code has characters that are never in a code: {''.join(bad)!r} "
            "(codes use 0-9 and A-Z without I, L, O, U)"
        )
    if not cleaned:
        raise JoinCodeError("join code is empty: type the code shown on the instructor's screen")
    raw = _from_base32(cleaned)
    version, family = raw[0] >> 4, raw[0] & 0x0F
    if version != VERSION or family not in _ADDRESS_BYTES:
        raise JoinCodeError(
            "join code does not start like a code of this lab version: check the first group"
        )
    expected = 1 + _ADDRESS_BYTES[family] + 2 + KEY_BYTES + CHECK_BYTES
    want_chars = _base32_length(expected)
    if len(cleaned) != want_chars:
        word = "short" if len(cleaned) < want_chars else "long"
        raise JoinCodeError(
            f"join code is too {word}: {len(cleaned)} characters, a code has {want_chars} "
            f"({want_chars // GROUP} groups of {GROUP}"
            + (f" and one of {want_chars % GROUP})" if want_chars % GROUP else ")")
        )
    body, check = raw[: expected - CHECK_BYTES], raw[expected - CHECK_BYTES : expected]
    if _check(body) != check or _DECODE[cleaned[-1]] & _padding_mask(expected):
        raise JoinCodeError("join code checksum does not match: a character is mistyped")
    end = 1 + _ADDRESS_BYTES[family]
    host = str(ipaddress.ip_address(body[1:end]))
    port = int.from_bytes(body[end : end + 2], "big")
    if port == 0:
        raise JoinCodeError("join code holds port 0: it was not made by bplab classroom")
    return JoinCode(host, port, bytes(body[end + 2 :]))


def _padding_mask(nbytes: int) -> int:
    """The bits of the last character beyond the bytes: zero in every real code."""
    return (1 << (_base32_length(nbytes) * 5 - nbytes * 8)) - 1


def _check(body: bytes) -> bytes:
    return binascii.crc_hqx(body, 0xFFFF).to_bytes(CHECK_BYTES, "big")


def _base32_length(nbytes: int) -> int:
    return -(-nbytes * 8 // 5)


def _to_base32(raw: bytes) -> str:
    bits = len(raw) * 8
    chars = _base32_length(len(raw))
    number = int.from_bytes(raw, "big") << (chars * 5 - bits)
    return "".join(ALPHABET[(number >> (5 * (chars - 1 - i))) & 31] for i in range(chars))


def _from_base32(text: str) -> bytes:
    """The bytes of ``text`` (padding bits dropped); the length is checked by the caller."""
    number = 0
    for ch in text:
        number = number << 5 | _DECODE[ch]
    nbytes = len(text) * 5 // 8
    return (number >> (len(text) * 5 - nbytes * 8)).to_bytes(max(nbytes, 1), "big")
