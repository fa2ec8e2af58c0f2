"""19, blocks the consumer: the reference's rule, but it sleeps in every pick() (to "give the
worker a rest")."""

import time


class Discipline:
    def __init__(self, service_time_s=0.01):
        self.service_time = service_time_s

    def pick(self, queue, now):
        time.sleep(0.02)
        dropped = []
        while queue:
            message = queue.popleft()
            if message.deadline >= now + self.service_time:
                return message, dropped
            dropped.append(message)
        return None, dropped
