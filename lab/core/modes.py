"""The table of overflow modes: the one place that knows which modes exist and how each is
built from the consumer's flags. A new mode is one policy class and one row here."""

from __future__ import annotations

from typing import Callable, Dict, NamedTuple

from lab.core.policies import (
    DEFAULT_RETRY_AFTER_MS,
    BlockPolicy,
    DropNewestPolicy,
    DropOldestPolicy,
    OverflowPolicy,
    PullPolicy,
    SamplePolicy,
    ShedPolicy,
    UnboundedPolicy,
)
from lab.core.priority import DegradePolicy, PriorityDropPolicy, PriorityShedPolicy
from lab.core.ratelimit import AdmissionPolicy


class ModeInfo(NamedTuple):
    name: str
    behaviour: str
    build: Callable[..., OverflowPolicy]
    bounded: bool


def _build_block(**_: object) -> OverflowPolicy:
    return BlockPolicy()


def _build_pull(**_: object) -> OverflowPolicy:
    return PullPolicy()


def _build_drop(**_: object) -> OverflowPolicy:
    return DropNewestPolicy()


def _build_drop_oldest(**_: object) -> OverflowPolicy:
    return DropOldestPolicy()


def _build_sample(sample_every: int = 10, sample_watermark: float = 0.5, **_: object):
    return SamplePolicy(keep_one_in=sample_every, watermark=sample_watermark)


def _build_shed(retry_after_ms: int = DEFAULT_RETRY_AFTER_MS, **_: object) -> OverflowPolicy:
    return ShedPolicy(retry_after_ms=retry_after_ms)


def _build_unbounded(**_: object) -> OverflowPolicy:
    return UnboundedPolicy()


def _build_priority(**_: object) -> OverflowPolicy:
    return PriorityDropPolicy()


def _build_priority_shed(
    shed_watermarks=(1.0, 0.8, 0.5), retry_after_ms: int = DEFAULT_RETRY_AFTER_MS, **_: object
) -> OverflowPolicy:
    return PriorityShedPolicy(shed_watermarks, retry_after_ms)


def _build_degrade(
    degrade_high: float = 0.8, degrade_low: float = 0.3, degrade_hold_s: float = 1.0, **_: object
) -> OverflowPolicy:
    return DegradePolicy(degrade_high, degrade_low, degrade_hold_s)


def _build_admit(
    admit_rate: float = 10.0,
    admit_burst: int = 10,
    retry_after_ms: int = DEFAULT_RETRY_AFTER_MS,
    **_: object,
) -> OverflowPolicy:
    return AdmissionPolicy(admit_rate, admit_burst, retry_after_ms)


MODES: Dict[str, ModeInfo] = {
    info.name: info
    for info in (
        ModeInfo(
            "block", "producer waits for credit: nothing is lost, latency grows", _build_block, True
        ),
        ModeInfo("drop", "buffer full: the newest message is discarded", _build_drop, True),
        ModeInfo(
            "drop-oldest",
            "buffer full: the oldest waiting message is discarded",
            _build_drop_oldest,
            True,
        ),
        ModeInfo(
            "sample", "above the watermark keep 1 in N, discard the rest", _build_sample, True
        ),
        ModeInfo("shed", "buffer full: reject to the producer with retry-after", _build_shed, True),
        ModeInfo(
            "unbounded",
            "accept everything: memory grows until the guard stops it",
            _build_unbounded,
            False,
        ),
        ModeInfo(
            "priority",
            "priority queue: critical served first; full buffer drops anyone",
            _build_priority,
            True,
        ),
        ModeInfo(
            "priority-shed",
            "shed optional, then normal traffic above watermarks; critical pushes lesser out",
            _build_priority_shed,
            True,
        ),
        ModeInfo(
            "degrade",
            "overloaded: optional features switched off, back on after calm (hysteresis)",
            _build_degrade,
            True,
        ),
        ModeInfo(
            "admit",
            "admission control: a token bucket; no token = shed with exact retry-after (429)",
            _build_admit,
            True,
        ),
        ModeInfo(
            "pull",
            "consumer sends REQUEST(n) as it has room: producers send only that",
            _build_pull,
            True,
        ),
    )
}


def build_policy(mode: str, **options: object) -> OverflowPolicy:
    """The policy object for a mode name; options are the consumer's flags (ignored if unused)."""
    try:
        info = MODES[mode]
    except KeyError:
        allowed = ", ".join(MODES)
        raise ValueError(f"unknown mode {mode!r}; choose one of: {allowed}") from None
    return info.build(**options)
