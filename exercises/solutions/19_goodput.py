"""Reference solution for challenge 19 (DON'T PEEK). Oldest first, but a message that cannot be
finished by its caller's deadline is dropped at dequeue instead of served."""

from collections import deque
from typing import List, Optional, Tuple


class Discipline:
    def __init__(self, service_time_s: float = 0.01) -> None:
        self.service_time = service_time_s

    def pick(self, queue: deque, now: float) -> Tuple[Optional[object], List[object]]:
        # Judged by when the work would end, not when it starts: a message due in 5 ms
        # would be finished 5 ms after its caller left.
        done_at = now + self.service_time
        dropped: List[object] = []
        while queue:
            message = queue.popleft()
            if message.deadline >= done_at:
                return message, dropped
            dropped.append(message)
        return None, dropped
