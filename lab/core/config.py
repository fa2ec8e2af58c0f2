"""What a consumer and a producer can be told: the two configs, built from flags.

Defaults come from the module's row in ``lab.core.modules``; the CLI only parses flags.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Tuple

from lab.core.policies import DEFAULT_RETRY_AFTER_MS


@dataclass
class ConsumerConfig:
    """Everything a consumer can be told by flags; defaults come from ``modules.py``."""

    module: int = 12
    mode: str = "drop"
    capacity: int = 50
    process_rate: float = 10.0
    service_dist: str = "fixed"
    sample_every: int = 10
    sample_watermark: float = 0.5
    retry_after_ms: int = DEFAULT_RETRY_AFTER_MS
    discipline: Optional[str] = None  # None: the policy's own (priority modes use "priority")
    shed_watermarks: Tuple[float, float, float] = (1.0, 0.8, 0.5)
    degrade_high: float = 0.8
    degrade_low: float = 0.3
    degrade_hold_s: float = 1.0
    admit_rate: float = 10.0
    admit_burst: int = 10
    reject_cost: float = 0.0  # worker time spent refusing a message, in mean service times
    max_memory_mb: float = 512.0
    wait_target_s: Optional[float] = None  # count queue waits longer than this (exercises)
    producer_timeout_s: float = 2.0
    heartbeat_s: float = 0.5
    seed: int = 0

    def policy_options(self) -> Dict[str, Any]:
        return {
            "sample_every": self.sample_every,
            "sample_watermark": self.sample_watermark,
            "retry_after_ms": self.retry_after_ms,
            "shed_watermarks": self.shed_watermarks,
            "degrade_high": self.degrade_high,
            "degrade_low": self.degrade_low,
            "degrade_hold_s": self.degrade_hold_s,
            "admit_rate": self.admit_rate,
            "admit_burst": self.admit_burst,
        }


@dataclass
class ProducerConfig:
    """Everything a producer can be told by flags; defaults come from ``modules.py``."""

    module: int = 12
    rate: float = 20.0  # messages per second; math.inf sends as fast as possible
    profile: str = "steady"
    spike_at: float = 5.0
    spike_duration: float = 5.0
    spike_factor: float = 10.0
    priority_mix: Tuple[float, ...] = (1.0,)
    payload_bytes: int = 0
    retry: str = "none"
    max_attempts: int = 5
    backoff_base_s: float = 0.05
    backoff_cap_s: float = 2.0
    max_pending: Optional[int] = None
    limit: str = "none"  # producer-side limiter: none, interval, token-bucket
    limit_rate: float = 10.0
    limit_burst: int = 10
    timeout_s: Optional[float] = None  # wait this long for "processed", then retry
    deadline_s: Optional[float] = None  # a request older than this (from its due time) is given up
    breaker: bool = False
    breaker_failures: int = 5
    breaker_open_s: float = 2.0
    breaker_probes: int = 3
    retry_plugin: Any = None  # an object with delay(attempt, retry_after_s, now) (exercises)
    limiter_plugin: Any = None  # an object with take_up_to(now, n) and time_until(now)
    batch_max: int = 1000
    # A paced producer's DATA frame goes when it is full (batch_max records) or this long
    # after the previous frame, like Nagle's rule in TCP: at 100,000 msg/s that is one frame
    # of 100 records a millisecond, not a frame per loop turn (each verdict frame woke the
    # loop, whose next frame woke the consumer: a ping-pong of tiny frames). Below 1,000
    # msg/s messages are further apart than this and go the moment they are due.
    frame_interval_s: float = 0.001
    heartbeat_s: float = 0.5
    consumer_timeout_s: float = 2.0
    seed: int = 0
    name: str = ""
    epoch_offset: float = 0.0  # add to a monotonic time to get epoch seconds
    extra: Dict[str, Any] = field(default_factory=dict)
