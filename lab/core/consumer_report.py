"""What a consumer shows: the live snapshot, the final summary and the WELCOME body.

Theory of operation
-------------------
State: none. Each function reads a :class:`~lab.core.consumer_core.ConsumerCore` (its
public attributes and its parts) and builds a JSON-able dict; none changes anything, so a
report can be taken at any moment. Rules: every key the dashboards, graders and
``--json`` readers know stays; infinities (and the unbounded buffer's huge limit) become
None; per-class rows carry both counts and rates (received, processed, lost per second).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Dict, List, Optional

from lab.core import protocol
from lab.core.buffer import UNBOUNDED_FREE_SLOTS
from lab.core.peers import ProducerState, counts_by_unique_name

if TYPE_CHECKING:  # the core is handed in; consumer_core imports this module
    from lab.core.consumer_core import ConsumerCore


def snapshot(core: ConsumerCore, now: float, rss_mb: float, cpu_pct: float) -> Dict[str, Any]:
    """Everything a dashboard shows."""
    totals = core.totals()
    wait = core.completion.queue_wait_recent.summary(now)
    uses_credit = core.policy.uses_credit
    return {
        "v": 1,
        "role": "consumer",
        "session": core.session,
        "module": core.config.module,
        "mode": core.mode,
        "uptime_s": round(now - core.started_at, 3),
        "depth": core.buffer.depth,
        "capacity": core.buffer.capacity,
        "limit": finite(core.policy.admission_limit(core.buffer)),
        "max_depth": core.stats.max_depth,
        "oldest_age_s": core.buffer.oldest_age(now),
        "waiting_by_class": core.buffer.waiting_by_class(),
        "rates": {name: rate.rate(now) for name, rate in core.stats.rates.items()},
        "totals": totals.as_dict(),
        "malformed": core.malformed,
        "queue_wait": {"p50_s": wait["p50"], "p99_s": wait["p99"], "max_s": wait["max"]},
        "classes": class_rows(core, now),
        "policy_state": core.policy.status(),
        "discipline": core.queue_discipline.status(),
        "service_rate": finite(core.service.effective_rate),
        "slowdown": core.service.slowdown,
        "worker": core.worker.status(now),
        "worker_groups": core.worker.groups_status(now),
        "producers": [_producer_row(s, now, uses_credit) for s in core.producers.values()],
        "credit_outstanding": core.credit.promised() if uses_credit else None,
        "demand_outstanding": core.pull.outstanding() if core.policy.uses_demand else None,
        "in_flight": core.in_flight(),
        "round_trip_s": core.round_trip.recent(now),
        "rss_mb": rss_mb,
        "max_memory_mb": core.config.max_memory_mb,
        "cpu_pct": cpu_pct,
        "stopped_by": core.stopped_by,
        "events": [[round(t - core.started_at, 2), text] for t, text in core.events],
        "identity_ok": not core.identity_errors(),
    }


def class_rows(core: ConsumerCore, now: float) -> List[Dict[str, Any]]:
    """One row per class that has seen traffic: counts, recent p99 wait and rates."""
    rows = core.stats.classes.rows()
    rates = core.stats.class_rates
    for row in rows:
        cls = row["class"]
        row["wait_p99_s"] = core.completion.class_wait[cls].merged(now).percentile(99)
        for name in ("received", "processed", "lost"):
            row[f"{name}_per_s"] = rates[name][cls].rate(now)
    return rows


def summary(core: ConsumerCore, now: float) -> Dict[str, Any]:
    """The ``--json`` object printed when the consumer stops."""
    totals = core.totals()
    elapsed = now - core.started_at
    completion = core.completion
    wait = completion.queue_wait_recent.total()
    service_seconds = completion.service_seconds
    wait_target_s = completion.wait_target_s
    return {
        "role": "consumer",
        "module": core.config.module,
        "mode": core.mode,
        "duration_s": round(elapsed, 3),
        **totals.as_dict(),
        "malformed": core.malformed,
        "capacity": core.buffer.capacity,
        "max_depth": core.stats.max_depth,
        "mean_depth": core.stats.depth_mean.value(now),
        "process_rate": finite(core.service.rate),
        "worker": core.worker.summary(),
        "processed_mps": totals.processed / elapsed if elapsed > 0 else 0.0,
        "queue_wait_p50_ms": wait.percentile(50) * 1e3,
        "queue_wait_p99_ms": wait.percentile(99) * 1e3,
        "queue_wait_mean_ms": wait.mean * 1e3,
        "queue_wait_max_ms": wait.max * 1e3,
        # W of Little's law for mean_depth (which counts the message in service too)
        "service_mean_ms": service_seconds / wait.count * 1e3 if wait.count else 0.0,
        "time_in_system_mean_ms": (wait.sum + service_seconds) / wait.count * 1e3
        if wait.count
        else 0.0,
        "out_of_order": sum(s.out_of_order for s in core.producers.values()),
        "wait_target_ms": None if wait_target_s is None else wait_target_s * 1e3,
        "waited_past_target": completion.waited_past_target,
        "waited_past_target_accepted_at": [
            [key / 10, count] for key, count in sorted(completion.late_by_accept.items())
        ],
        "classes": [
            {**row, "wait_p99_ms": completion.class_wait[row["class"]].total().percentile(99) * 1e3}
            for row in core.stats.classes.rows()
        ],
        "producers": counts_by_unique_name(core.producers.values()),
        "discipline": core.queue_discipline.status(),
        "stopped_by": core.stopped_by,
        "identity_errors": core.identity_errors(),
    }


def welcome(core: ConsumerCore, state: ProducerState, now: float) -> Dict[str, Any]:
    """The WELCOME body a producer gets for every HELLO (``docs/protocol.md``): with the
    lag, in messages (accepted, not finished: the buffer's depth) and in seconds (how long
    the oldest waiting message has waited), that a producer's ``--throttle-on-lag`` follows."""
    uses_credit = core.policy.uses_credit
    return {
        "lag_messages": core.buffer.depth,
        "lag_s": round(core.buffer.oldest_age(now), 6),
        "session": core.session,
        "module": core.config.module,
        "mode": core.mode,
        "capacity": core.buffer.capacity,
        "window": finite(core.policy.admission_limit(core.buffer)),
        "credit_limit": state.credit_limit if uses_credit else None,
        "pull": core.policy.uses_demand,
        "heartbeat_s": core.config.heartbeat_s,
        "timeout_s": core.config.producer_timeout_s,
        "protocol": protocol.VERSION,
    }


def _producer_row(state: ProducerState, now: float, uses_credit: bool) -> Dict[str, Any]:
    return {
        "name": state.name,
        "active": state.active,
        "in_per_s": state.rate_in.rate(now),
        "credit": state.outstanding_credit if uses_credit else None,
        **state.counts.as_dict(),
    }


def finite(value: Optional[float]) -> Optional[float]:
    """JSON-friendly: infinity, and the unbounded buffer's huge limit, become None."""
    if value is None or (isinstance(value, float) and math.isinf(value)):
        return None
    return None if value >= UNBOUNDED_FREE_SLOTS else value
