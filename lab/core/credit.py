"""Block mode's credit: how much each producer may send, as one cumulative number.

Theory of operation
-------------------
State: per producer (``peers.ProducerState``), ``credit_limit``, the producer's own record
ordinal it may send up to (exclusive), and ``received_ordinal``, the ordinal reached. The
ordinals are the producer's, counted over its whole life, so a lost or repeated VERDICTS
frame can never create or destroy credit, and a consumer restart or a mode switch picks up
where the producer is. Rules:

* *outstanding* credit is ``credit_limit - received_ordinal``; what is outstanding for
  active producers is *promised* room;
* :meth:`CreditLedger.grant` hands free, unpromised room out in fair shares: nobody's
  footprint (messages held plus outstanding credit) may pass ``limit / producers``, and the
  smallest footprint is served first, so a slow producer is never starved by a fast one;
* with a per-producer cap (classroom mode's ``per_producer_limit``, a fraction of the limit),
  no footprint may pass it, however few producers there are;
* a record beyond its producer's credit is *over credit*: it may only use room nobody was
  promised (and not past the cap), and is otherwise counted in ``over_credit`` and dropped;
* credit is taken back (limit cut to what was received) from a producer that goes silent
  or says BYE.
"""

from __future__ import annotations

import math
from typing import Dict, List, Optional

from lab.core.peers import ProducerState


class CreditLedger:
    """The credit rules over the core's producer table (shared, not copied)."""

    __slots__ = ("producers", "cap")

    def __init__(self, producers: Dict[bytes, ProducerState], cap: Optional[float] = None) -> None:
        self.producers = producers
        self.cap = cap  # per_producer_limit: the largest footprint, as a fraction of the limit

    def promised(self) -> int:
        """Room promised to active producers and not yet used."""
        return sum(s.outstanding_credit for s in self.producers.values() if s.active)

    def start_at(self, state: ProducerState, ordinal: int) -> None:
        """A producer we have not seen (or that restarted): no credit beyond where it is."""
        state.received_ordinal = state.credit_limit = max(0, ordinal)
        state.credit_probe = None  # a round-trip probe never spans a restart

    def restart_all(self) -> None:
        """Entering a credit mode: nobody has credit left over from before."""
        for state in self.producers.values():
            state.credit_limit = state.received_ordinal
            state.credit_probe = None

    def take_back(self, state: ProducerState) -> None:
        state.credit_limit = min(state.credit_limit, state.received_ordinal)
        state.credit_probe = None  # the credit it timed is gone

    def next_record_within(self, state: ProducerState) -> bool:
        """Count one more record of ``state`` (its ordinals run on from the DATA frame's
        first); True if it was within the producer's credit."""
        ordinal = state.next_ordinal
        state.next_ordinal = ordinal + 1
        if ordinal >= state.received_ordinal:
            state.received_ordinal = ordinal + 1
        return ordinal < state.credit_limit

    def admit_over_credit(self, state: ProducerState, limit: int, depth: int) -> bool:
        """A record past its credit may use room nobody was promised; otherwise it is
        counted as ``over_credit`` (and the caller drops it)."""
        if limit - depth - self.promised() > 0 and _footprint(state) < self._capped(limit, limit):
            return True
        state.counts.over_credit += 1
        return False

    def grant(self, limit: int, depth: int) -> List[ProducerState]:
        """Hand free, unpromised room (of ``limit``, ``depth`` held) to active producers;
        returns the producers whose credit grew (the round trip times those grants)."""
        granted: List[ProducerState] = []
        active = [s for s in self.producers.values() if s.active]
        if not active:
            return granted
        free = limit - depth - self.promised()
        if free <= 0:
            return granted
        share = self._capped(max(1, math.ceil(limit / len(active))), limit)
        for state in sorted(active, key=_footprint):
            grant = min(free, share - _footprint(state))
            if grant > 0:
                state.credit_limit = state.received_ordinal + state.outstanding_credit + grant
                state.credit_dirty = True
                granted.append(state)
                free -= grant
            if free <= 0:
                break
        return granted

    def _capped(self, share: int, limit: int) -> int:
        """Classroom mode's ``per_producer_limit``: no producer's footprint may pass this
        fraction of the admission limit, however few producers there are (one attendee at
        ``--mps max`` cannot take the room's buffer while the others are still joining)."""
        if self.cap is None:
            return share
        return min(share, max(1, int(limit * self.cap)))


def _footprint(state: ProducerState) -> int:
    return state.counts.depth + state.outstanding_credit
