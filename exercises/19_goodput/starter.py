"""Challenge 19: the consumer's queue discipline. Your file: edit it, then run

    bplab check 19_goodput

One worker serves 100 messages a second (10 ms each) while more arrive than it can serve.
Every message carries its caller's deadline on the consumer's clock (``message.deadline``,
in seconds; ``math.inf`` if the caller waits for ever) and the time it joined the queue
(``message.enqueued_at``). Whenever the worker is free the consumer calls
``pick(queue, now)``: take the next message out of ``queue`` (a deque, oldest on the left)
and return it with the list of messages you removed without serving.

As it stands the discipline is plain FIFO. Run the check and see.
"""

from collections import deque
from typing import List, Optional, Tuple


class Discipline:
    """Waiting messages in, the next one to serve (and the ones dropped) out."""

    def __init__(self, service_time_s: float = 0.01) -> None:
        self.service_time = service_time_s  # how long the worker takes for one message

    def pick(self, queue: deque, now: float) -> Tuple[Optional[object], List[object]]:
        """TODO: which message should the worker spend its next 10 ms on, and which ones
        are no use to anybody any more?"""
        dropped: List[object] = []
        message = queue.popleft() if queue else None
        return message, dropped
