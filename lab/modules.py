"""The curriculum table: the one place that knows each module's number, port and defaults.

A module plugs in by adding a row. The consumer, producer, visualizer, demo and workshop
scripts all read their defaults from here, so a flag's default can never differ between
``bplab consumer --module 12`` and ``workshop_materials/12_backpressure/consumer.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List


@dataclass(frozen=True)
class ModuleSpec:
    number: int
    slug: str
    title: str
    teaches: str
    consumer: Dict[str, Any] = field(default_factory=dict)
    producer: Dict[str, Any] = field(default_factory=dict)
    demo: Dict[str, Any] = field(default_factory=dict)

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
            producer={"rate": 20.0},
            demo={"unbounded": {"rate": 5000.0, "payload_bytes": 1024}},
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
