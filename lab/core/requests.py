"""Requests, as a caller sees them: retries, confirmation timeouts, the breaker, recovery.

Theory of operation
-------------------
A *request* is what a caller asked for; each send of it is an *attempt* (an
:class:`~lab.core.outbox.Entry` whose ``origin`` is the first attempt's seq). The
:class:`RequestTracker` decides what happens to a request after an attempt's outcome.

* **Open requests** (only with ``--timeout-ms``, when the producer waits for "processed"):
  origin -> due time, from making until the first success (its response time is recorded)
  or until it is given up. A success for a request no longer open is a *late completion*.
* **Confirmation timeouts.** An accepted attempt not processed within ``timeout_s`` of its
  sending has timed out: the caller stops waiting, counts it, and retries it under a new
  seq. A "processed" for a timed-out seq is a late completion too (the last
  ``TIMED_OUT_MEMORY`` such seqs are remembered).
* **Retries.** Every delay the policy gives is held against its retry-after and the
  deadline (``lab.core.retry_bounds``). A shed or timed-out attempt is retried if the policy
  (``lab.core.retry``) gives a delay, fewer than ``max_attempts`` attempts were made, and
  the retry would go before the request's ``deadline_s`` (counted from its due time);
  otherwise the request is *given up*. Waiting retries sit in a heap by release time (ties
  by seq) and go back to the front of the outbox when due.
* **The breaker** (``--breaker``) sees every success and failure; while it is open, new
  attempts fail at once (``breaker_rejected``) and never reach the consumer. Resends are
  let through: the consumer had already taken them once.
* **Recovery** (``lab.core.metrics.RecoveryClock``): after a spike, the time until the
  recent p99 (of response times when waiting for "processed", else of verdict latency)
  and the recent failures are back to normal.

``per_message`` says whether anything here must see each attempt's outcome one by one (a
breaker, a policy's ``on_success``/``on_failure``, open requests); without it the verdict
accounting may settle a whole run of verdicts at once.
"""

from __future__ import annotations

import heapq
import random
from typing import Any, Dict, List, Optional, Tuple

from lab.core.config import ProducerConfig
from lab.core.metrics import RateWindow, RecentLatency, RecoveryClock
from lab.core.outbox import Entry
from lab.core.retry import CircuitBreaker, build_retry_policy
from lab.core.retry_bounds import RetryBounds

TIMED_OUT_MEMORY = 100_000  # how many timed-out seqs we remember, to spot late completions
RECOVERY_CHECK_S = 0.1


class RequestTracker:
    """Open requests, timeouts, retries, the breaker and recovery. See the module docstring."""

    def __init__(
        self,
        config: ProducerConfig,
        rng: random.Random,
        now: float,
        verdict_latency: RecentLatency,
        spike_planned: Optional[Tuple[float, float]] = None,
    ) -> None:
        self.max_attempts = config.max_attempts
        self.deadline_s = config.deadline_s
        self.bounds = RetryBounds()  # every delay against its retry-after and deadline
        self.timeout_s = config.timeout_s
        self.wants_confirm = config.timeout_s is not None
        self.policy = build_retry_policy(config, rng)
        self._on_success = getattr(self.policy, "on_success", None)
        self._on_failure = getattr(self.policy, "on_failure", None)
        self.breaker = (
            CircuitBreaker(config.breaker_failures, config.breaker_open_s, config.breaker_probes)
            if config.breaker
            else None
        )
        self.per_message = (
            self.breaker is not None
            or self._on_success is not None
            or self._on_failure is not None
            or self.wants_confirm
        )
        self.open: Dict[int, float] = {}  # origin -> due, requests without a response yet
        self._timeouts: List[Tuple[float, int]] = []  # (deadline, seq) of accepted attempts
        self._timed_out: Dict[int, None] = {}  # seqs that timed out (insertion-ordered)
        self.retry_heap: List[Tuple[float, int, Entry]] = []
        self.timed_out = 0
        self.late_completions = 0
        self.breaker_rejected = 0
        self.gave_up = 0
        self.response_recent = RecentLatency()
        self.recovery = RecoveryClock()
        self.failures = RateWindow()
        self._verdict_latency = verdict_latency
        self._spike_planned = spike_planned
        self._next_recovery_check = now

    # -- outcomes ---------------------------------------------------------------------------
    def opened(self, first_seq: int, dues: List[float]) -> None:
        """New requests ``first_seq, first_seq + 1, ...`` were made with these due times."""
        if self.wants_confirm:
            for offset, due in enumerate(dues):
                self.open[first_seq + offset] = due

    def succeeded(self, entry: Entry, now: float) -> None:
        """A success: processed (when we wait for that) or accepted (when we do not)."""
        if self.breaker is not None:
            self.breaker.record_success(now)
        if self._on_success is not None:
            self._on_success(now)
        due = self.open.pop(entry.origin, None)
        if self.wants_confirm:
            if due is None:
                self.late_completions += 1  # another attempt of this request finished first
            else:
                self.response_recent.record(now, now - due)

    def failed(self, entries: List[Entry], now: float, final: bool) -> None:
        """Attempts that failed: dropped or sampled out (``final``), or shed or timed out
        (not final: see ``retry_or_give_up``)."""
        self.failures.add(now, len(entries))
        if not self.per_message:
            return
        for entry in entries:
            self._failed_one(entry, now, final)

    def shed(self, entries: List[Entry], retry_after_ms: int, now: float) -> List[Entry]:
        """Attempts the consumer shed; each is retried or given up in turn (a stateful
        policy sees outcome, then question, per attempt). Returns those given up."""
        self.failures.add(now, len(entries))
        given_up = []
        for entry in entries:
            if self.per_message:
                self._failed_one(entry, now, final=False)
            if not self.retry_or_give_up(entry, retry_after_ms, now):
                given_up.append(entry)
        return given_up

    def retry_or_give_up(self, entry: Entry, retry_after_ms: int, now: float) -> bool:
        """Schedule the next attempt of ``entry``'s request (True), or give it up."""
        if self._retry(entry, retry_after_ms, now):
            return True
        self.gave_up += 1
        self.open.pop(entry.origin, None)
        return False

    def _failed_one(self, entry: Entry, now: float, final: bool) -> None:
        if self.breaker is not None:
            self.breaker.record_failure(now)
        if self._on_failure is not None:
            self._on_failure(now)
        if final:
            self.open.pop(entry.origin, None)

    def _retry(self, entry: Entry, retry_after_ms: int, now: float) -> bool:
        attempt = entry.attempt + 1
        if attempt >= self.max_attempts:
            return False
        delay = self.policy.delay(attempt, retry_after_ms / 1000.0, now)
        if delay is None:
            return False
        self.bounds.record(float(delay), retry_after_ms / 1000.0, self.deadline_s)
        delay = max(0.0, float(delay))
        if self.deadline_s is not None and now + delay - entry.due > self.deadline_s:
            return False  # the caller will have given up before the retry would go
        entry.attempt = attempt
        heapq.heappush(self.retry_heap, (now + delay, entry.seq, entry))
        return True

    # -- time passing ----------------------------------------------------------------------------
    def due_retries(self, now: float) -> List[Entry]:
        """The retries whose time has come, in release order."""
        ready = []
        while self.retry_heap and self.retry_heap[0][0] <= now:
            ready.append(heapq.heappop(self.retry_heap)[2])
        return ready

    def await_confirmation(self, entry: Entry) -> None:
        assert self.timeout_s is not None
        heapq.heappush(self._timeouts, (entry.sent_at + self.timeout_s, entry.seq))

    def next_timed_out(self, now: float, unconfirmed: Dict[int, Entry]) -> Optional[Entry]:
        """The next accepted attempt whose confirmation is overdue (taken out of
        ``unconfirmed``, counted and failed), or None. The caller retries it under a new
        seq with ``retry_or_give_up``."""
        while self._timeouts and self._timeouts[0][0] <= now:
            _, seq = heapq.heappop(self._timeouts)
            entry = unconfirmed.pop(seq, None)
            if entry is None:
                continue  # it was processed in time
            self.timed_out += 1
            self._timed_out[seq] = None
            if len(self._timed_out) > TIMED_OUT_MEMORY:
                del self._timed_out[next(iter(self._timed_out))]
            self.failures.add(now)
            self._failed_one(entry, now, final=False)
            return entry
        return None

    def was_timed_out(self, seq: int) -> bool:
        return seq in self._timed_out

    def admit(self, entries: List[Entry], now: float) -> List[Entry]:
        """While the breaker is open, attempts fail at once and never reach the consumer."""
        if self.breaker is None:
            return entries
        allowed = []
        for entry in entries:
            if entry.resend or self.breaker.allow(now):
                allowed.append(entry)
            else:
                self.breaker_rejected += 1
                self.open.pop(entry.origin, None)
        return allowed

    def next_deadline(self) -> Optional[float]:
        """The earliest retry release or confirmation deadline, if any."""
        retry = self.retry_heap[0][0] if self.retry_heap else None
        if not self._timeouts:
            return retry
        timeout = self._timeouts[0][0]
        return timeout if retry is None else min(retry, timeout)

    # -- recovery (Module 15) ------------------------------------------------------------------
    def track_recovery(self, now: float) -> None:
        if now < self._next_recovery_check:
            return
        self._next_recovery_check = now + RECOVERY_CHECK_S
        planned = self._spike_planned
        if planned is not None and now >= planned[0] and self.recovery.spike_start is None:
            self.recovery.spike(planned[0], planned[1], self.recent_p99(now))
        self.recovery.update(now, self.recent_p99(now), self.failures.count(now))

    def spike(self, now: float, until: float) -> None:
        self.recovery.spike(now, until, self.recent_p99(now))

    def recent_p99(self, now: float) -> float:
        recent = self.response_recent if self.wants_confirm else self._verdict_latency
        return recent.merged(now).percentile(99)

    def response_summary(self, now: float) -> Optional[Dict[str, Any]]:
        if not self.wants_confirm:
            return None
        summary = self.response_recent.summary(now)
        return {"p50_s": summary["p50"], "p99_s": summary["p99"], "max_s": summary["max"]}
