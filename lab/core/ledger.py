"""The producer's ledger: what it sent, what the consumer said about it, and the latencies.

Theory of operation
-------------------
The :class:`Ledger` keeps the producer's side of the accounting (``lab.core.accounting``
has the identities) and the messages it still answers for:

* ``in_flight``: sent, no verdict yet (seq -> entry);
* ``unconfirmed``: accepted and kept until the consumer says "processed" (in block mode,
  where a restarted consumer's accepted messages must be sent again, and when waiting for
  confirmations with ``--timeout-ms``).

**One set of rules, a run at a time.** A VERDICTS frame is a list of runs: one verdict kind
for ``count`` consecutive seqs. :meth:`Ledger.apply` settles a whole run with the same
rules whatever its length; a run of one is just a short run. Counters and rates move once
per run, latencies are recorded as one batch, and the per-message work (the request
tracker's ``succeeded``/``failed``, retries of shed messages) is done for each message in
seq order, and only when the tracker needs it (``RequestTracker.per_message``). So
splitting a run into shorter runs changes nothing: ``tests/unit/test_producer_core.py``
drives the same verdicts both ways and compares everything.

Rules per kind:

* **accepted**: the entry leaves ``in_flight``; it is kept in ``unconfirmed`` when
  ``keep_accepted`` (block mode, or waiting for "processed"), else it is a success now;
* **dropped**, **sampled out**: final failures;
* **shed**: the tracker retries it or gives it up; only a given-up one has a latency;
* **evicted**: an accepted message was dropped later (drop-oldest): it moves from
  *accepted* to *dropped*;
* **processed**: an ``unconfirmed`` entry is done (a success). For a seq not there: a late
  completion if it had timed out, else a *duplicate*, unless it was accepted before the
  switch into block mode (``untracked_below``): no confirmation was awaited for those.

A verdict for a seq not in flight is *stale* (a repeat, or one for a resent message) and
counted, never applied twice. Latency is verdict time minus due time.

**A concurrency limit** (``gate``, a :class:`~lab.core.concurrency.LimitGate`, with
``--limit-algorithm``) hears every final answer: each processed entry is a success whose
round trip is verdict time minus *send* time; dropped, sampled out, shed and evicted ones
are losses. Outstanding is ``in_flight`` plus ``unconfirmed``.
"""

from __future__ import annotations

import itertools
from typing import Any, Dict, List, Optional

from lab.core import protocol
from lab.core.accounting import MAX_CLASSES, ProducerCounts
from lab.core.metrics import RateWindow, RecentLatency
from lab.core.outbox import Entry
from lab.core.requests import RequestTracker

RATE_NAMES = ("produced", "accepted", "dropped", "sampled_out", "shed")
_FAILURE_FIELDS = {protocol.DROPPED: "dropped", protocol.SAMPLED_OUT: "sampled_out"}


class Ledger:
    """Counts, in-flight and unconfirmed messages, rates and latencies. See the module
    docstring for the rules."""

    def __init__(self, requests: RequestTracker, classes: int, latency: RecentLatency) -> None:
        self.requests = requests
        self.counts = ProducerCounts()
        self.in_flight: Dict[int, Entry] = {}
        self.unconfirmed: Dict[int, Entry] = {}
        self.keep_accepted = requests.wants_confirm
        self.untracked_below = 0  # seqs below: accepted with no confirmation awaited
        self.gate: Optional[Any] = None  # lab.core.concurrency.LimitGate, or None
        self.stale_verdicts = 0
        self.duplicates = 0
        self.evicted = 0
        self.rate_delayed = 0
        self.rates = {name: RateWindow() for name in RATE_NAMES}
        self.latency_recent = latency
        self._one_class = classes == 1
        # With one class, class 0's latencies are every latency: the same histogram serves
        # both reports, so each verdict is recorded once, not twice.
        self.class_latency = [RecentLatency() for _ in range(MAX_CLASSES)]
        if self._one_class:
            self.class_latency[0] = latency

    def sent(self, entries: List[Entry], now: float, limited: bool) -> None:
        """A frame went: its entries are in flight. Resends are not produced again."""
        counts = self.counts
        in_flight = self.in_flight
        new = 0
        for entry in entries:
            in_flight[entry.seq] = entry
            entry.sent_at = now
            if limited and now - entry.due > 0.001:
                self.rate_delayed += 1
            if entry.resend:
                entry.resend = False
                counts.resent += 1
                continue
            new += 1
            if entry.attempt:
                counts.retried += 1
        counts.produced += new
        counts.in_flight += new
        self.rates["produced"].add(now, new)

    def outstanding(self) -> int:
        """Sent, with no final answer yet (accepted ones count until processed when kept)."""
        return len(self.in_flight) + len(self.unconfirmed)

    def apply(self, kind: int, first: int, count: int, retry_after_ms: int, now: float) -> None:
        """One run of verdicts: ``kind`` for seqs ``first .. first + count - 1``."""
        if kind == protocol.PROCESSED:
            self._processed(first, count, now)
            return
        if kind == protocol.EVICTED:
            self._evicted(first, count, now)
            return
        entries = self._settle(first, count)
        if not entries:
            return
        n = len(entries)
        if kind != protocol.ACCEPTED and self.gate is not None:
            for entry in entries:
                self.gate.loss(now, entry.sent_at)
        if kind == protocol.ACCEPTED:
            self._accepted(entries, now)
        elif kind in _FAILURE_FIELDS:
            name = _FAILURE_FIELDS[kind]
            setattr(self.counts, name, getattr(self.counts, name) + n)
            self.rates[name].add(now, n)
            self.requests.failed(entries, now, final=True)
        else:
            self.counts.shed += n
            self.rates["shed"].add(now, n)
            entries = self.requests.shed(entries, retry_after_ms, now)
        self._record_latencies(entries, now)

    def take_back_all(self) -> List[Entry]:
        """The consumer restarted: every entry it may have lost, oldest first, marked for
        resending; accepted-but-unconfirmed ones are in flight again."""
        again = list(self.in_flight.values())
        self.counts.accepted -= len(self.unconfirmed)
        self.counts.in_flight += len(self.unconfirmed)
        again.extend(self.unconfirmed.values())
        again.sort(key=lambda e: e.seq)
        self.in_flight.clear()
        self.unconfirmed.clear()
        for entry in again:
            entry.resend = True
        return again

    def _settle(self, first: int, count: int) -> List[Entry]:
        """The in-flight entries of a run, taken out; the rest of the run is stale."""
        entries = [
            entry
            for entry in map(self.in_flight.pop, range(first, first + count), _NONES)
            if entry is not None
        ]
        self.stale_verdicts += count - len(entries)
        self.counts.in_flight -= len(entries)
        return entries

    def _accepted(self, entries: List[Entry], now: float) -> None:
        self.counts.accepted += len(entries)
        self.rates["accepted"].add(now, len(entries))
        if self.keep_accepted:
            self.unconfirmed.update({entry.seq: entry for entry in entries})
            if self.requests.wants_confirm:
                for entry in entries:
                    self.requests.await_confirmation(entry)
        elif self.requests.per_message:
            for entry in entries:
                self.requests.succeeded(entry, now)

    def _processed(self, first: int, count: int, now: float) -> None:
        seqs = range(first, first + count)
        found = list(map(self.unconfirmed.pop, seqs, _NONES))
        done = [entry for entry in found if entry is not None]
        self.counts.processed += len(done)
        gate = self.gate
        if gate is not None:
            outstanding = self.outstanding()
            for entry in done:
                gate.success(now, entry.sent_at, outstanding)
        if self.requests.per_message:
            for entry in done:
                self.requests.succeeded(entry, now)
        if len(done) == count:
            return
        for seq, entry in zip(seqs, found):
            if entry is not None:
                continue
            if self.requests.was_timed_out(seq):
                self.requests.late_completions += 1  # work done for a caller who gave up
            elif seq >= self.untracked_below:
                self.duplicates += 1

    def _evicted(self, first: int, count: int, now: float) -> None:
        self.counts.accepted -= count
        self.counts.dropped += count
        self.evicted += count
        for seq in range(first, first + count):
            entry = self.unconfirmed.pop(seq, None)
            if entry is not None and self.gate is not None:
                self.gate.loss(now, entry.sent_at)
        self.rates["dropped"].add(now, count)

    def _record_latencies(self, entries: List[Entry], now: float) -> None:
        if not entries:
            return
        latencies = [now - entry.due for entry in entries]
        self.latency_recent.record_many(now, latencies)
        if self._one_class:  # class 0's histogram is latency_recent: recorded just now
            return
        for entry, latency in zip(entries, latencies):
            self.class_latency[min(entry.priority, MAX_CLASSES - 1)].record(now, latency)


_NONES = itertools.repeat(None)  # the default of dict.pop, for map()
