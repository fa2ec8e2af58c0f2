"""Accounting: the counters of both ends and the identities that must always close.

Definitions (``docs/protocol.md`` has the same words):

* *produced*: messages the producer put on the wire (a retry after a shed is produced again);
* *accepted*: taken into the consumer's buffer; *processed*: finished by its worker;
* *dropped*: discarded by the consumer, on arrival or later evicted (drop-oldest);
* *sampled_out*: discarded by sampling; *shed*: rejected back with a retry-after;
* *in_flight*: sent, no verdict received yet; *depth*: messages the consumer holds.

The identities, true at every stop and in every snapshot::

    producer:  produced = accepted + dropped + sampled_out + shed + in_flight
    consumer:  received = accepted + dropped + sampled_out + shed
               accepted = processed + depth
               processed = goodput + wasted

*goodput* is what was processed by its caller's deadline (or had none), *wasted* what was
processed after it. A queue discipline's drop at dequeue (*dequeue_dropped*, Module 19) is
an eviction too: the message leaves *accepted* for *dropped*.

An eviction moves one message from *accepted* to *dropped* on both ends (the consumer tells
the producer with an ``evicted`` verdict), so the identities survive drop-oldest.
"""

from __future__ import annotations

from typing import Dict, List

CONSUMER_FIELDS = (
    "received",
    "accepted",
    "processed",
    "dropped",
    "sampled_out",
    "shed",
    "depth",
    "evicted",
    "over_credit",
    "goodput",
    "wasted",
    "dequeue_dropped",
)
PRODUCER_FIELDS = (
    "produced",
    "accepted",
    "dropped",
    "sampled_out",
    "shed",
    "in_flight",
    "processed",
    "retried",
    "resent",
)


class ConsumerCounts:
    """What one consumer did, in total or for one producer."""

    __slots__ = CONSUMER_FIELDS

    def __init__(self) -> None:
        for name in CONSUMER_FIELDS:
            setattr(self, name, 0)

    def as_dict(self) -> Dict[str, int]:
        return {name: getattr(self, name) for name in CONSUMER_FIELDS}

    def identity_errors(self) -> List[str]:
        errors = []
        decided = self.accepted + self.dropped + self.sampled_out + self.shed
        if self.received != decided:
            errors.append(
                f"received {self.received} != accepted+dropped+sampled_out+shed {decided}"
            )
        if self.accepted != self.processed + self.depth:
            errors.append(
                f"accepted {self.accepted} != processed {self.processed} + depth {self.depth}"
            )
        if self.processed != self.goodput + self.wasted:
            errors.append(
                f"processed {self.processed} != goodput {self.goodput} + wasted {self.wasted}"
            )
        return errors


class ProducerCounts:
    """What one producer saw."""

    __slots__ = PRODUCER_FIELDS

    def __init__(self) -> None:
        for name in PRODUCER_FIELDS:
            setattr(self, name, 0)

    def as_dict(self) -> Dict[str, int]:
        return {name: getattr(self, name) for name in PRODUCER_FIELDS}

    def identity_errors(self) -> List[str]:
        verdicts = self.accepted + self.dropped + self.sampled_out + self.shed
        if self.produced != verdicts + self.in_flight:
            return [
                f"produced {self.produced} != accepted+dropped+sampled_out+shed {verdicts}"
                f" + in_flight {self.in_flight}"
            ]
        return []


def sum_consumer_counts(parts: List[ConsumerCounts]) -> ConsumerCounts:
    total = ConsumerCounts()
    for part in parts:
        for name in CONSUMER_FIELDS:
            setattr(total, name, getattr(total, name) + getattr(part, name))
    return total


MAX_CLASSES = 8  # priority classes 0 (most important) .. 7; higher wire values count as 7
CLASS_FIELDS = ("received", "accepted", "processed", "dropped", "sampled_out", "shed")


class ClassCounts:
    """The consumer's counters split by priority class (the flash-sale modules need to see
    that checkouts survive while recommendations are shed). One list per field, indexed by
    class, so the hot path is a list increment."""

    __slots__ = CLASS_FIELDS

    def __init__(self) -> None:
        for name in CLASS_FIELDS:
            setattr(self, name, [0] * MAX_CLASSES)

    def rows(self) -> List[Dict[str, int]]:
        """One dict per class that has seen traffic, in class order."""
        out = []
        for cls in range(MAX_CLASSES):
            if self.received[cls]:  # type: ignore[attr-defined]
                row = {"class": cls}
                row.update({name: getattr(self, name)[cls] for name in CLASS_FIELDS})
                out.append(row)
        return out
