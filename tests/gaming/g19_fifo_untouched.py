"""19, the starter as given: plain FIFO, every message served long after its caller left."""


class Discipline:
    def pick(self, queue, now):
        return (queue.popleft() if queue else None), []
