"""The curriculum table: the one place that knows each module's number, port and defaults.

A module plugs in by adding a row. The consumer, producer, visualizer, demo and workshop
scripts all read their defaults from here, so a flag's default can never differ between
``bplab consumer --module 12`` and ``workshop_materials/12_backpressure/consumer.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple


@dataclass(frozen=True)
class ModuleSpec:
    """One module's row. ``consumer`` and ``producer`` override the lab-wide defaults (the
    config dataclasses'); which key feeds which field, and in what unit, is the settings
    table in ``lab.core.config`` (``CONSUMER_SETTINGS``, ``PRODUCER_SETTINGS``), and a unit
    test fails on a key no setting reads. ``demo`` holds per-mode producer flags for
    ``bplab demo`` (e.g. a faster producer for the unbounded mode)."""

    number: int
    slug: str
    title: str
    teaches: str
    consumer: Dict[str, Any] = field(default_factory=dict)
    producer: Dict[str, Any] = field(default_factory=dict)
    demo: Dict[str, Any] = field(default_factory=dict)
    # the modes an instructor can switch to live, in key order (1, 2, 3, ...)
    live_modes: Tuple[str, ...] = ("drop", "block", "drop-oldest", "sample", "shed", "unbounded")
    # "redis": a broker between producer and consumer (Module 20; lab.ui.stream_cli)
    broker: Optional[str] = None
    # the module's main knob, with its own live keys in the demo (see lab/ui/keys.py)
    knob: Optional[str] = None

    @property
    def port(self) -> int:
        return self.number * 1000

    @property
    def folder(self) -> str:
        return f"{self.number:02d}_{self.slug}"


MODULES: Dict[int, ModuleSpec] = {
    spec.number: spec
    for spec in (
        ModuleSpec(
            number=12,
            slug="backpressure",
            title="Backpressure",
            teaches="a fast producer overloads a slow consumer: drop, sample, shed, or block",
            consumer={"mode": "drop", "capacity": 50, "process_rate": 10.0},
            producer={"messages_per_s": 20.0},
            demo={"unbounded": {"rate": 5000.0, "payload_bytes": 1024}},
        ),
        ModuleSpec(
            number=13,
            slug="load_shedding",
            live_modes=("drop", "priority", "priority-shed", "degrade", "block"),
            title="Load shedding",
            teaches="the flash sale, a 10x spike: keep checkouts fast by shedding the optional",
            consumer={"mode": "drop", "capacity": 50, "process_rate": 100.0},
            producer={
                "messages_per_s": 60.0,
                "profile": "spike",
                "spike_at": 5.0,
                "spike_duration": 10.0,
                "spike_factor": 10.0,
                "priority_mix": (0.1, 0.6, 0.3),
                "retry": "none",
            },
        ),
        ModuleSpec(
            number=14,
            slug="rate_limiting",
            live_modes=("admit", "drop", "shed", "block"),
            title="Rate limiting",
            teaches="token buckets and 429s: bursts allowed, the average bounded",
            consumer={
                "mode": "admit",
                "capacity": 50,
                "process_rate": 100.0,
                "admit_rate": 80.0,
                "admit_burst": 20,
                "retry_after_ms": 100,
            },
            producer={
                "messages_per_s": 60.0,
                "profile": "spike",
                "spike_at": 5.0,
                "spike_duration": 3.0,
                "spike_factor": 4.0,
                "retry": "backoff",
                "backoff_base_ms": 50.0,
                "backoff_cap_ms": 1000.0,
                "limiter": "none",  # --limit token-bucket / interval use the two below
                "limiter_rate": 75.0,  # a little under the consumer's 80/s: clocks jitter
                "limiter_burst": 15,
            },
        ),
        ModuleSpec(
            number=15,
            slug="retry_storms",
            live_modes=("shed", "drop", "block"),  # one traffic class: nothing to degrade
            title="Retry storms",
            teaches="backoff, jitter, breakers: retries that outlive a spike keep it down",
            consumer={
                "mode": "shed",
                "capacity": 100,
                "process_rate": 100.0,
                "retry_after_ms": 100,
                "reject_cost": 0.4,
            },
            producer={
                "messages_per_s": 50.0,
                "profile": "spike",
                "spike_at": 5.0,
                "spike_duration": 5.0,
                "spike_factor": 4.0,
                "retry": "immediate",
                "max_attempts": 4,
                "timeout_ms": 1000.0,
                "deadline_ms": 3000.0,
                "backoff_base_ms": 500.0,
                "backoff_cap_ms": 10000.0,
            },
        ),
        ModuleSpec(
            number=16,
            slug="batching",
            knob="batch",
            live_modes=("drop", "block", "shed"),
            title="Batching",
            teaches="one round trip per batch: throughput b/(O+b*I), and what linger costs",
            consumer={
                "mode": "drop",
                "capacity": 500,
                "batch_overhead_ms": 8.0,
                "item_ms": 2.0,
                "batch_size": 1,
                "batch_target_ms": 50.0,
                "batch_max": 200,
            },
            producer={"messages_per_s": 300.0},
        ),
        ModuleSpec(
            number=17,
            slug="consumer_lag",
            knob="workers",
            live_modes=("drop", "block"),
            title="Consumer lag and scaling",
            teaches="lag is the signal: add workers, mind the database's knee, use bulkheads",
            consumer={
                "mode": "drop",
                "capacity": 20_000,
                "process_rate": 100.0,
                "pool": True,
                "workers": 1,
                "discipline": "workload",
            },
            producer={"messages_per_s": 300.0},
        ),
        ModuleSpec(
            number=18,
            slug="flow_control",
            knob="flow",
            live_modes=("block",),
            title="Flow control over a slow link",
            teaches="credit, pull and the window: size it to the bandwidth-delay product",
            consumer={"mode": "block", "capacity": 10, "process_rate": 1000.0},
            producer={"messages_per_s": float("inf")},
            demo={"block": {"link_delay_ms": 50.0}, "pull": {"link_delay_ms": 50.0}},
        ),
        ModuleSpec(
            number=19,
            slug="goodput",
            knob="discipline",
            live_modes=("drop",),
            title="Queue discipline, deadlines and goodput",
            teaches="work done after the caller left is waste: LIFO, deadline drop, CoDel",
            consumer={
                "mode": "drop",
                "capacity": 500,
                "process_rate": 100.0,
                "queue_discipline": "fifo",
            },
            producer={"messages_per_s": 200.0, "deadline_ms": 500.0},
        ),
        ModuleSpec(
            number=20,
            slug="broker",
            live_modes=(),
            title="The queue in the middle",
            teaches="a real broker (Redis Streams): OOM, MAXLEN trimming, lag, at-least-once",
            broker="redis",
            consumer={"process_rate": 2000.0},
            producer={"messages_per_s": 5000.0, "payload_bytes": 100},
        ),
    )
}


def get_module(number: int) -> ModuleSpec:
    try:
        return MODULES[number]
    except KeyError:
        known = ", ".join(str(n) for n in sorted(MODULES))
        raise ValueError(f"there is no module {number}; modules: {known}") from None


def all_modules() -> List[ModuleSpec]:
    return [MODULES[n] for n in sorted(MODULES)]
