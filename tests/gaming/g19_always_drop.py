"""19, drops everything: nothing is ever served late, because nothing is served."""


class Discipline:
    def pick(self, queue, now):
        dropped = list(queue)
        queue.clear()
        return None, dropped
