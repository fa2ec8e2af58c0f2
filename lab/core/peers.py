"""What the consumer knows about each producer it has heard from.

Theory of operation
-------------------
State: one :class:`ProducerState` per peer (the routing id the shell hands in), kept in one
dict that the consumer core shares with its admission, completion and credit parts, plus one
``retired`` row of counts. Rules:

* a producer is *active* from its first frame until it says BYE or goes silent; a frame
  from an inactive producer makes it active again;
* memory stays bounded: past :data:`MAX_PRODUCERS`, the longest-silent producer with
  nothing in the buffer is folded into ``retired`` (its counts added in place, so every
  part holding ``retired`` keeps seeing the same object) and forgotten.
"""

from __future__ import annotations

from typing import Dict, Iterable, List, Optional, Tuple

from lab.core import protocol
from lab.core.accounting import CONSUMER_FIELDS, ConsumerCounts
from lab.core.metrics import RateWindow

MAX_PRODUCERS = 256  # more than this and the quietest finished ones are folded into one row


class ProducerState:
    """What the consumer knows about one connected producer."""

    __slots__ = (
        "peer",
        "name",
        "pid",
        "counts",
        "last_seen",
        "active",
        "credit_limit",
        "received_ordinal",
        "runs",
        "confirmations",
        "credit_dirty",
        "last_processed_seq",
        "out_of_order",
        "rate_in",
        "next_ordinal",
        "wants_confirm",
        "credit_probe",
    )

    def __init__(self, peer: bytes, now: float) -> None:
        self.peer = peer
        self.name = printable(peer)
        self.pid = 0
        self.counts = ConsumerCounts()
        self.last_seen = now
        self.active = True
        self.credit_limit = 0
        self.received_ordinal = 0  # the producer's record ordinal we have reached
        self.runs = protocol.RunBuilder()  # verdicts on arrival (and evictions)
        self.confirmations = protocol.RunBuilder()  # processed, block mode only
        self.credit_dirty = False
        self.last_processed_seq = -1
        self.out_of_order = 0
        self.rate_in = RateWindow()
        self.next_ordinal = 0
        self.wants_confirm = False  # asked in HELLO: "processed" confirmations in every mode
        # Block mode's round-trip probe (round_trip.py): (credit limit granted, when), or None
        self.credit_probe: Optional[Tuple[int, float]] = None

    @property
    def outstanding_credit(self) -> int:
        return max(0, self.credit_limit - self.received_ordinal)


def retire_one(producers: Dict[bytes, ProducerState], retired: ConsumerCounts) -> None:
    """Fold the longest-silent inactive producer with nothing in the buffer into ``retired``."""
    candidates = [s for s in producers.values() if not s.active and s.counts.depth == 0]
    if not candidates:
        candidates = [s for s in producers.values() if s.counts.depth == 0]
    if not candidates:
        return
    victim = min(candidates, key=lambda s: s.last_seen)
    for name in CONSUMER_FIELDS:
        setattr(retired, name, getattr(retired, name) + getattr(victim.counts, name))
    del producers[victim.peer]


def verdict_frames(
    producers: Dict[bytes, ProducerState], uses_credit: bool
) -> List[Tuple[bytes, bytes]]:
    """Every producer's pending runs as VERDICTS frames, (peer, frame), under its credit
    limit (or "no limit" outside credit modes). A frame's runs all happened under the mode
    its limit announces; a producer owed only a new limit gets a frame without runs."""
    out = []
    step = protocol.MAX_RUNS_PER_FRAME
    for state in producers.values():
        if state.runs or state.confirmations or state.credit_dirty:
            limit = state.credit_limit if uses_credit else protocol.NO_CREDIT_LIMIT
            # Verdicts before confirmations: a message is accepted before it is processed.
            runs = state.runs.take() + state.confirmations.take()
            for start in range(0, max(len(runs), 1), step):
                out.append(
                    (state.peer, protocol.encode_verdicts(limit, runs[start : start + step]))
                )
            state.credit_dirty = False
    return out


def counts_by_unique_name(states: Iterable[ProducerState]) -> Dict[str, Dict[str, int]]:
    """Counts per producer name; a name used twice gets a #2 suffix instead of overwriting."""
    out: Dict[str, Dict[str, int]] = {}
    for state in states:
        name, n = state.name, 1
        while name in out:
            n += 1
            name = f"{state.name}#{n}"
        out[name] = state.counts.as_dict()
    return out


def printable(peer: bytes) -> str:
    text = peer.decode("ascii", "replace") if peer.isascii() else peer.hex()
    return "".join(ch if ch.isprintable() else "?" for ch in text)[:64] or "anonymous"
