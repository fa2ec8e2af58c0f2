"""What a producer reports: its telemetry snapshot and its final summary.

Theory of operation
-------------------
Two pure functions of a :class:`~lab.core.producer_core.ProducerCore` and its parts (the
ledger, the request tracker, the consumer link, the outbox), so the state machine holds no
reporting code and the report shows every part the same way:

* :func:`snapshot`: ten times a second on the telemetry socket (the dashboard and the
  recorder read it; ``docs/protocol.md`` lists the fields): rates and latency over the
  recent window, the state of the limiter, the breaker and recovery, the event log;
* :func:`summary`: once, at the end (``--json`` and ``bplab check``): totals, whole-run
  latency percentiles, and every counter that tells a loss from a duplicate.

Rules: reading only, nothing here changes the core; times are the core's monotonic
seconds; an infinite target rate (unpaced) is reported as ``None``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Dict, List, Optional

if TYPE_CHECKING:
    from lab.core.producer_core import ProducerCore


def snapshot(
    core: ProducerCore, now: float, rss_mb: float = 0.0, cpu_pct: float = 0.0
) -> Dict[str, Any]:
    ledger, requests, link = core.ledger, core.requests, core.link
    latency = ledger.latency_recent.summary(now)
    return {
        "v": 1,
        "role": "producer",
        "name": core.name,
        "module": core.config.module,
        "profile": core.config.profile,
        "uptime_s": round(now - core.started_at, 3),
        "target_mps": _finite(core.target_rate(now)),
        "base_mps": _finite(core.config.messages_per_s),
        "rates": {name: rate.rate(now) for name, rate in ledger.rates.items()},
        "totals": ledger.counts.as_dict(),
        "latency": {
            "p50_s": latency["p50"],
            "p95_s": latency["p95"],
            "p99_s": latency["p99"],
            "max_s": latency["max"],
        },
        "pending": len(core.outbox),
        "retry_waiting": len(requests.retry_heap),
        "credit": link.credit_left(),
        "demand": core.demand.outstanding if core.demand is not None else None,
        "consumer_up": link.up,
        "consumer_mode": link.mode,
        "skipped": core.skipped,
        "gave_up": requests.gave_up,
        "retry": core.config.retry,
        "classes": _class_rows(core, now),
        "limiter": _limiter_state(core, now),
        "concurrency": core.gate.report(now) if core.gate is not None else None,
        "throttle": core.throttle.state() if core.throttle is not None else None,
        "breaker": requests.breaker.state if requests.breaker is not None else None,
        "breaker_rejected": requests.breaker_rejected,
        "timed_out": requests.timed_out,
        "late_completions": requests.late_completions,
        "open_requests": len(requests.open),
        "response": requests.response_summary(now),
        "recovery": {
            "state": requests.recovery.state(now),
            "recovery_s": requests.recovery.recovery_s,
            "threshold_s": requests.recovery.threshold_s,
        },
        "retry_amplification": _amplification(core),
        "rss_mb": rss_mb,
        "cpu_pct": cpu_pct,
        "events": [[round(t - core.started_at, 2), text] for t, text in core.events],
        "identity_ok": not ledger.counts.identity_errors(),
    }


def summary(core: ProducerCore, now: float) -> Dict[str, Any]:
    ledger, requests = core.ledger, core.requests
    end = core.stopped_at if core.stopped_at is not None else now
    elapsed = max(end - core.started_at, 1e-9)
    counts = ledger.counts
    latency = ledger.latency_recent.total()
    response = requests.response_recent.total()
    return {
        "role": "producer",
        "name": core.name,
        "module": core.config.module,
        "profile": core.config.profile,
        "duration_s": round(elapsed, 3),
        **counts.as_dict(),
        "unique": counts.produced - counts.retried,
        "pending": len(core.outbox),
        "skipped": core.skipped,
        "gave_up": requests.gave_up,
        "unconfirmed": len(ledger.unconfirmed),
        "lost": core.lost(),
        "duplicates": ledger.duplicates,
        "evicted": ledger.evicted,
        "consumer_sessions": core.link.sessions_seen,
        "malformed": core.malformed,
        "target_mps": _finite(core.config.messages_per_s),
        "achieved_mps": counts.produced / elapsed,
        "throttle": core.throttle.state() if core.throttle is not None else None,
        "retry_amplification": _amplification(core),
        "retry_bounds": requests.bounds.as_dict(),
        "timed_out": requests.timed_out,
        "late_completions": requests.late_completions,
        "breaker_rejected": requests.breaker_rejected,
        "breaker_transitions": requests.breaker.transitions if requests.breaker else 0,
        "rate_delayed": ledger.rate_delayed,
        "concurrency": core.gate.report(end) if core.gate is not None else None,
        "recovery_s": requests.recovery.recovery_s,
        "response_p50_ms": response.percentile(50) * 1e3,
        "response_p99_ms": response.percentile(99) * 1e3,
        "classes": [
            {"class": c, "latency_p99_ms": h.percentile(99) * 1e3, "count": h.count}
            for c, h in enumerate(r.total() for r in ledger.class_latency)
            if h.count
        ],
        "latency_p50_ms": latency.percentile(50) * 1e3,
        "latency_p99_ms": latency.percentile(99) * 1e3,
        "latency_max_ms": latency.max * 1e3,
        "latency_mean_ms": latency.mean * 1e3,
        "identity_errors": counts.identity_errors(),
    }


def _class_rows(core: ProducerCore, now: float) -> List[Dict[str, Any]]:
    rows = []
    for cls, recent in enumerate(core.ledger.class_latency):
        merged = recent.merged(now)
        if merged.count:
            rows.append({"class": cls, "p99_s": merged.percentile(99), "count": merged.count})
    return rows


def _limiter_state(core: ProducerCore, now: float) -> Optional[Dict[str, Any]]:
    limiter = core.limiter
    if limiter is None:
        return None
    tokens = getattr(limiter, "tokens", None)
    return {
        "kind": "custom" if core.config.limiter_plugin else core.config.limiter,
        "tokens": round(tokens(now), 2) if callable(tokens) else None,
        "capacity": getattr(limiter, "capacity", None),
        "rate": getattr(limiter, "rate", None),
        "delayed": core.ledger.rate_delayed,
    }


def _amplification(core: ProducerCore) -> float:
    """Attempts per request: 1.0 means no retries at all."""
    counts = core.ledger.counts
    unique = counts.produced - counts.retried
    return counts.produced / unique if unique > 0 else 0.0


def _finite(value: float) -> Optional[float]:
    return None if math.isinf(value) else value
