"""Challenge 13: priority shedding (the flash sale). Your file: edit it, then run

    bplab check 13_priority_shedding

Every message carries a priority class: 0 is critical (checkout), 1 normal (browsing),
2 optional (recommendations). During a 10x spike the consumer cannot do everything; your
policy decides, for each arriving message, one of (``lab.core.policies``):

* ``ACCEPT``: into the buffer;
* ``ACCEPT_EVICTING_OLDEST``: into the buffer, after evicting a waiting message to make
  room. Under the ``priority`` discipline the victim is the oldest message of the *least
  important* class that has anything waiting;
* ``DROP``: refused silently (``SHED`` would refuse with a retry-after).

``discipline`` says which waiting message the worker serves next: ``"fifo"`` (arrival
order) or ``"priority"`` (class 0 first, arrival order within a class).

As it stands, this is the plain tail drop of module 13: first come, first served, and a
full buffer drops anyone. Run the check and see what that does to checkouts.
"""

from lab.core.buffer import Buffer, Message
from lab.core.policies import ACCEPT, DROP, OverflowPolicy  # noqa: F401 (more are there)


class CriticalFirst(OverflowPolicy):
    """Checkouts first: never lose a critical message while lesser work waits."""

    name = "critical-first"
    discipline = "fifo"  # TODO 1: serve the critical class first

    def decide(self, message: Message, buffer: Buffer, now: float) -> str:
        """Called for every arriving message.

        ``message.priority`` is its class (0 critical, 1 normal, 2 optional);
        ``buffer.depth`` is how many messages are held, ``self.admission_limit(buffer)``
        how many may be; ``buffer.waiting_by_class()`` counts the waiting ones per class
        (under the priority discipline; a single number under FIFO).
        """
        if buffer.depth < self.admission_limit(buffer):
            return ACCEPT
        # TODO 2: the buffer is full. If the message is critical and a normal or optional
        #         message is waiting, make room for it instead of dropping it.
        return DROP
