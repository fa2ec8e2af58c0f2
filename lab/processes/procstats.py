"""This process's memory (RSS) and CPU use, read with psutil at most a few times a second."""

from __future__ import annotations

import psutil

from lab.core.metrics import round_up


class ProcessStats:
    """RSS in MB and CPU % (of one core) since the previous reading; remembers the peak RSS."""

    __slots__ = ("_process", "rss_mb", "cpu_pct", "rss_mb_max")

    def __init__(self) -> None:
        self._process = psutil.Process()
        self._process.cpu_percent(interval=None)  # the first call only starts the meter
        self.rss_mb = 0.0
        self.cpu_pct = 0.0
        self.rss_mb_max = 0.0
        self.refresh()

    def refresh(self) -> None:
        self.rss_mb = self._process.memory_info().rss / (1024 * 1024)
        self.cpu_pct = self._process.cpu_percent(interval=None)
        if self.rss_mb > self.rss_mb_max:
            self.rss_mb_max = self.rss_mb

    def peak_mb(self) -> float:
        """The peak RSS for a summary, rounded up to 0.1 MB (a guard's limit is a strict >)."""
        return round_up(self.rss_mb_max)
