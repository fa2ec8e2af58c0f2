"""The consumer as one producer sees it: handshake, heartbeat, sessions and credit.

Theory of operation
-------------------
The :class:`ConsumerLink` is what the producer knows about the far end, and the control
frames it owes it.

Rules:

* **Knocking.** A HELLO goes every ``heartbeat_s`` while the consumer is up, and every
  ``HANDSHAKE_RETRY_S`` until it answers (so the first messages do not wait for a slow
  start), and at once after the shell saw the connection close.
* **Up and down.** Any well-formed frame from the consumer means it is up. Silence for
  ``consumer_timeout_s``, or a closed connection, means it is down: nothing is sent.
* **Sessions.** Every WELCOME carries the consumer's session id. A new id after a first
  one means the consumer restarted (the producer then resends what it may have lost).
* **Delay.** Module 18's live link delay (a CONTROL ``link_delay_ms``) waits here until
  the shell, which owns the delay line, takes it (:meth:`ConsumerLink.take_delay`).
* **Credit** is cumulative: ``sent_total`` is how many records this producer put on the
  wire in its whole life (every DATA frame carries it as its first record's ordinal), and
  the consumer grants "up to ordinal ``credit_limit``"; None means no credit (not block
  mode). Lost or repeated frames, restarts and mode switches cannot make the ends disagree.
"""

from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Tuple

from lab.core import protocol
from lab.core.delayline import check_link_delay

HANDSHAKE_RETRY_S = 0.05


class ConsumerLink:
    """Handshake, liveness, session and credit. See the module docstring."""

    __slots__ = (
        "name",
        "pid",
        "confirm",
        "heartbeat_s",
        "timeout_s",
        "up",
        "last_heard",
        "session",
        "sessions_seen",
        "mode",
        "window",
        "credit_limit",
        "sent_total",
        "next_hello",
        "_control",
        "_delay_ms",
    )

    def __init__(
        self, name: str, pid: int, confirm: bool, heartbeat_s: float, timeout_s: float, now: float
    ) -> None:
        self.name = name
        self.pid = pid
        self.confirm = confirm  # we wait for "processed" (a confirmation timeout is set)
        self.heartbeat_s = heartbeat_s
        self.timeout_s = timeout_s
        self.up = False
        self.last_heard = -math.inf
        self.session: Optional[str] = None
        self.sessions_seen = 0
        self.mode: Optional[str] = None
        self.window: Optional[int] = None
        self.credit_limit: Optional[int] = None
        self.sent_total = 0  # records put on the wire in our whole life: the credit ordinal
        self.next_hello = now
        self._control: List[bytes] = []
        self._delay_ms: Optional[float] = None  # asked for, not yet taken by the shell

    def ask_delay(self, delay_ms: Any) -> None:
        """A CONTROL frame's ``link_delay_ms`` (None: it had none); ValueError if bad."""
        if delay_ms is not None:
            check_link_delay(float(delay_ms))
            self._delay_ms = float(delay_ms)

    def take_delay(self) -> Optional[float]:
        """The link delay (ms) asked for since the last call, or None."""
        delay, self._delay_ms = self._delay_ms, None
        return delay

    def tick(self, now: float) -> bool:
        """Queue a HELLO if one is due; True if the consumer has just been found silent."""
        if now >= self.next_hello:
            self._control.append(self._hello())
            interval = self.heartbeat_s if self.up else HANDSHAKE_RETRY_S
            self.next_hello = now + min(interval, self.heartbeat_s)
        if self.up and now - self.last_heard > self.timeout_s:
            self.up = False
            return True
        return False

    def disconnected(self, now: float) -> bool:
        """The connection closed: down now, knock at once. True if it was up."""
        was_up, self.up = self.up, False
        self.next_hello = now
        return was_up

    def heard(self, now: float) -> bool:
        """A frame came; True if the consumer was down until now."""
        self.last_heard = now
        came_up = not self.up
        self.up = True
        return came_up

    def welcome(self, info: Dict[str, Any]) -> Tuple[bool, Optional[int]]:
        """Take a WELCOME: (the consumer restarted, the credit limit it grants). Raises
        :class:`~lab.core.protocol.ProtocolError` for one without a session id."""
        session = info.get("session")
        if not isinstance(session, str):
            raise protocol.ProtocolError("a WELCOME without a session")
        restarted = False
        if session != self.session:
            restarted = self.session is not None
            self.session = session
            self.sessions_seen += 1
        mode = info.get("mode")
        self.mode = mode if isinstance(mode, str) else None
        window = info.get("window")
        self.window = window if isinstance(window, int) and window > 0 else None
        limit = info.get("credit_limit")
        return restarted, limit if isinstance(limit, int) else None

    def credit_room(self, n: int) -> int:
        """How many of ``n`` records the credit lets go now."""
        if self.credit_limit is None:
            return n
        return min(n, self.credit_limit - self.sent_total)

    def credit_left(self) -> Optional[int]:
        if self.credit_limit is None:
            return None
        return max(0, self.credit_limit - self.sent_total)

    def take_control_frames(self) -> List[bytes]:
        out, self._control = self._control, []
        return out

    def _hello(self) -> bytes:
        return protocol.encode_json(
            protocol.HELLO,
            {
                "producer": self.name,
                "pid": self.pid,
                "session": self.session,
                "sent": self.sent_total,
                "confirm": self.confirm,
            },
        )
