"""Pull mode on the consumer's side: one ``Requester`` per producer, and the REQUEST frames.

Each active producer gets an equal share of the admission limit as its window (at least
``request_n``). A record is *finished* for its producer once it left the buffer, whichever
way (processed, dropped, shed, sampled out): that is ``received - depth`` in the producer's
counts, so the ledger cannot drift from the accounting. Whenever a producer's free room
reaches ``request_n``, :meth:`PullLedger.frames` asks for whole chunks of it.
"""

from __future__ import annotations

from typing import Dict, List, Tuple

from lab.core import protocol
from lab.core.demand import Requester
from lab.core.peers import ProducerState


class PullLedger:
    """The consumer's requesters, one per producer peer."""

    __slots__ = ("producers", "request_n", "requesters")

    def __init__(self, producers: Dict[bytes, ProducerState], request_n: int) -> None:
        self.producers = producers
        self.request_n = request_n
        self.requesters: Dict[bytes, Requester] = {}

    def restart(self, peer: bytes) -> None:
        """A producer (re)started or came back: its demand starts again from nothing."""
        self.requesters.pop(peer, None)

    def promised(self) -> int:
        """Records requested from active producers and not yet finished."""
        return sum(r.promised for peer, r in self.requesters.items() if self.producers[peer].active)

    def outstanding(self) -> int:
        """Records requested from active producers and not yet received: the demand still
        out on the link or held by the producers (``promised`` less what is in the buffer)."""
        producers = self.producers
        return sum(
            max(0, r.requested - producers[peer].counts.received)  # a producer past its demand
            for peer, r in self.requesters.items()
            if producers[peer].active
        )

    def frames(self, limit: int) -> List[Tuple[bytes, bytes]]:
        """REQUEST frames due now, as (peer, frame), for an admission limit of ``limit``."""
        active = [s for s in self.producers.values() if s.active]
        if not active:
            return []
        window = max(self.request_n, limit // len(active))
        out = []
        for state in active:
            requester = self.requesters.get(state.peer)
            if requester is None:
                requester = Requester(window, self.request_n)
                requester.requested = state.counts.received
                requester.finished = state.counts.received - state.counts.depth
                self.requesters[state.peer] = requester
            elif requester.window != window:
                requester.resize(window)
            requester.finish(state.counts.received - state.counts.depth - requester.finished)
            n = requester.due()
            if n:
                out.append((state.peer, protocol.encode_request(n)))
        return out
