"""A producer's throttle on lag: the lag in the consumer's WELCOMEs, fed to Module 20's rule.

Theory of operation
-------------------
With ``--throttle-on-lag`` the lab's producer slows itself while the consumer is behind
and speeds up again after (seed 004: "producer checks lag, throttles itself"). The rule is
:class:`~lab.core.stream_lag.LagThrottle`, the one Module 20's producer applies to a Redis
consumer group; this module only brings it the lab consumer's figures:

* **Where the lag comes from.** Every WELCOME (the answer to each HELLO) carries
  ``lag_messages`` (messages held, not finished) and ``lag_s`` (how long the oldest waiting
  one has waited); ``docs/protocol.md`` section 5.1. The producer says HELLO every
  :data:`LAG_READ_S` while throttling, so it reads the lag five times a second.
* **What counts.** A WELCOME with neither field (an older consumer) changes nothing; one
  with a field that is not a count or a finite number of seconds >= 0 is malformed. Two
  readings closer than half of ``LAG_READ_S`` (the handshake's quick WELCOMEs) are one: a
  backlog's change over a few milliseconds is noise, not a drain rate.
* **The ceiling.** The rate starts at, and never passes, the producer's configured rate
  (a live ``rate`` change moves it).
"""

from __future__ import annotations

import math
from typing import Any, Dict, Optional, Tuple

from lab.core.config import ProducerConfig
from lab.core.protocol import ProtocolError
from lab.core.stream_lag import LagThrottle

LAG_READ_S = 0.2  # the heartbeat while throttling: every WELCOME brings the lag
SLOWED = 0.9  # a rate under this share of the ceiling is reported as slowing


class LagReader:
    """The throttle's state between WELCOMEs. See the module docstring."""

    def __init__(self, target_lag_s: float, ceiling: float) -> None:
        self.rule = LagThrottle(target_lag_s=target_lag_s, rate=ceiling, max_rate=ceiling)
        self.lag_seen: Optional[Tuple[float, int]] = None  # the last (lag_s, lag_messages)
        self._read_at = -math.inf

    @classmethod
    def for_config(cls, config: ProducerConfig) -> Optional[LagReader]:
        """The reader ``--throttle-on-lag`` asks for (None without it): the ceiling is the
        configured rate, the target ``--target-lag-ms``."""
        if not config.throttle_on_lag:
            return None
        return cls(config.target_lag_s, config.messages_per_s)

    @property
    def rate(self) -> float:
        return self.rule.rate

    @property
    def ceiling(self) -> float:
        return self.rule.max_rate

    def set_ceiling(self, rate: float) -> None:
        """A live rate change: the new rate is where it starts again, and its most."""
        self.rule.rate = self.rule.max_rate = rate

    def read(self, info: Dict[str, Any], now: float) -> Optional[str]:
        """Take a WELCOME's lag; the line to log when it starts slowing or is back to the
        ceiling, else None. Raises :class:`~lab.core.protocol.ProtocolError` if malformed."""
        if "lag_s" not in info and "lag_messages" not in info:
            return None
        lag_s, lag_messages = info.get("lag_s"), info.get("lag_messages")
        if not (_is_count(lag_messages) and _is_seconds(lag_s)):
            raise ProtocolError("a WELCOME's lag must be a count and seconds >= 0")
        if now - self._read_at < LAG_READ_S / 2:
            return None
        self._read_at = now
        self.lag_seen = (float(lag_s), lag_messages)
        was_slowed = self.rule.rate < self.rule.max_rate
        rate = self.rule.update(float(lag_s), lag_messages, now)
        if rate < SLOWED * self.rule.max_rate and not was_slowed:
            return f"lag {lag_s:.2f} s: slowing to {rate:.0f} msg/s"
        if was_slowed and rate >= self.rule.max_rate:
            return f"lag {lag_s:.2f} s: back to {rate:.0f} msg/s"
        return None

    def state(self) -> Dict[str, Any]:
        """The snapshot's and the summary's ``throttle`` (``lab.core.telemetry.Throttle``)."""
        lag_s, lag_messages = self.lag_seen if self.lag_seen is not None else (None, None)
        return {
            "target_lag_s": self.rule.target_lag_s,
            "rate_mps": self.rule.rate,
            "lag_s": lag_s,
            "lag_messages": lag_messages,
        }


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_seconds(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < math.inf
