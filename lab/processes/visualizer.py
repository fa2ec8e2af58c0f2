"""The visualizer process: subscribe to a module's telemetry and draw the dashboard.

It connects (never binds), so it can start before the consumer, survive the consumer's
restarts, and run in several terminals at once. A socket monitor sees the connection close
when the consumer dies, so "consumer down" shows at the next redraw, not after 2 s.
Drawing happens at a fixed rate, whatever the snapshot rate, and the snapshots that came
meanwhile are read just before each redraw (a dashboard costs under 1% of a core). On a
terminal it is a rich ``Live`` display; when stdout is not a terminal (a pipe, a CI log) it
prints one plain line a second instead. ``NO_COLOR`` is honoured (rich reads it).
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional

import zmq
from rich.console import Console
from rich.live import Live

from lab.core.modules import get_module
from lab.processes import net, security
from lab.processes.clock import MonotonicClock
from lab.processes.procstats import ProcessStats
from lab.processes.runtime import (
    LOOPBACK,
    REFRESH_PER_S,
    Periodic,
    Recorder,
    RunOptions,
    StopSignal,
    print_json,
)
from lab.ui.dashboard import DashboardState, plain_line, render

TICK_INTERVAL_S = 0.05  # how often ``on_tick`` runs (the demo reads its keys there)
READ_LIMIT = 1000  # snapshots read in one go; more waiting means a flood: read on at once


@dataclass
class VisualizerRun(RunOptions):
    """How to run a dashboard; ``VisualizerRun.for_module(spec, **flags)`` checks flags."""

    module: int
    port: int
    host: str = LOOPBACK
    duration: Optional[float] = None
    record: Optional[str] = None
    plain: bool = False
    refresh: float = REFRESH_PER_S
    json_out: bool = False
    plain_interval: float = 1.0
    keys: Optional[Any] = None  # security.ClientKeys: a classroom consumer's telemetry

    def check_own(self) -> None:
        if not 0.5 <= self.refresh <= 30:
            raise ValueError(
                f"--refresh must be between 0.5 and 30 redraws per second, got {self.refresh}"
            )


class Visualizer:
    def __init__(self, run: VisualizerRun, console: Optional[Console] = None) -> None:
        self.run_options = run
        self.clock = MonotonicClock()
        self.stop = StopSignal()
        self.console = console or Console(stderr=False)
        spec = get_module(run.module)
        self.state = DashboardState(run.module, spec.title, run.port)
        self.recorder = Recorder(run.record)
        self.stats = ProcessStats()
        self.ctx = zmq.Context()
        self.sub = net.telemetry_subscriber(self.ctx)
        self.sub.setsockopt(zmq.RECONNECT_IVL, 200)
        self.sub.setsockopt(zmq.RECONNECT_IVL_MAX, 1000)
        security.secure_client(self.sub, run.keys)
        self.sub.connect(net.endpoint(run.host, run.port + net.TELEMETRY_OUT_OFFSET))
        self.monitor = self.sub.get_monitor_socket(zmq.EVENT_DISCONNECTED)
        self.poller = zmq.Poller()
        self.poller.register(self.monitor, zmq.POLLIN)  # snapshots wait for the next redraw
        self.refreshes = 0
        self.backlog = False  # the last read stopped at READ_LIMIT: more may be waiting
        # Called once per loop turn; returning a reason stops the dashboard (the demo uses it
        # to notice a child process that ended).
        self.on_tick: Optional[Callable[[float], Optional[str]]] = None

    def serve(self) -> Dict[str, Any]:
        run = self.run_options
        yield_cpu_to_data_path()
        started = self.clock.now()
        deadline = started + run.duration if run.duration else math.inf
        plain = run.plain or not self.console.is_terminal
        interval = run.plain_interval if plain else 1.0 / run.refresh
        ticker = Periodic(interval, started)
        if plain:
            self._loop(ticker, deadline, self._print_line)
        else:
            with Live(
                self._screen(started),
                console=self.console,
                auto_refresh=False,
                screen=False,
                transient=False,
                vertical_overflow="crop",
            ) as live:
                self._loop(
                    ticker, deadline, lambda now: live.update(self._screen(now), refresh=True)
                )
        now = self.clock.now()
        self.stats.refresh()
        elapsed = max(now - started, 1e-9)
        return {
            "role": "visualizer",
            "module": run.module,
            "port": run.port,
            "duration_s": round(elapsed, 3),
            "snapshots": self.state.snapshots,
            "malformed": self.state.malformed,
            "refreshes": self.refreshes,
            "refresh_per_s": self.refreshes / elapsed,
            "consumer_sessions": len(self.state.sessions_seen),
            "cpu_pct": self.stats.cpu_pct,
            "rss_mb_max": self.stats.peak_mb(),
            "stop_reason": self.stop.reason,
        }

    def _loop(self, ticker: Periodic, deadline: float, draw) -> None:
        """Sleep until the next redraw, then read every snapshot that came meanwhile, and draw.

        Waking once per redraw rather than once per snapshot (a consumer and a producer
        send 20 a second) keeps a dashboard's CPU, which it takes from the data path on a
        busy machine, low. The socket monitor still wakes the loop at once, so a closed
        connection is noticed without waiting for the next snapshot.
        """
        while not self.stop:
            now = self.clock.now()
            wake = min(ticker.next_at, deadline)
            if self.on_tick is not None:
                wake = min(wake, now + TICK_INTERVAL_S)
            if self.backlog:
                wake = now  # a flood: read on, whatever the redraw schedule
            ready = dict(self.poller.poll(max(0.0, wake - now) * 1000.0))
            now = self.clock.now()
            if self.backlog or self.monitor in ready:
                self._read(now)  # the flood; or what came before the close, then the close
            if ticker.due(now):
                self._read(now)
                draw(now)
                self.refreshes += 1
            if now >= deadline:
                self.stop.set("duration")
            if self.on_tick is not None:
                reason = self.on_tick(now)
                if reason:
                    self._read(now)
                    draw(now)
                    self.stop.set(reason)

    def _read(self, now: float) -> None:
        """Every snapshot waiting, then the monitor: frames that arrived came before a close.

        At most ``READ_LIMIT`` at a time, so a flood (a fuzzer, a hundred producers) does not
        stop the drawing; ``backlog`` says that more may be waiting."""
        count = 0
        for snapshot in net.waiting_snapshots(self.sub, limit=READ_LIMIT):
            count += 1
            if snapshot is None:
                self.state.count_malformed()
                continue
            self.state.update(snapshot, now)
            self.recorder.write(snapshot)
        self.backlog = count >= READ_LIMIT
        while net.recv_nowait(self.monitor) is not None:
            self.state.connection_lost(now)

    def _screen(self, now: float):
        size = self.console.size
        return render(self.state, now, size.width, size.height)

    def _print_line(self, now: float) -> None:
        sys.stdout.write(plain_line(self.state, now) + "\n")
        sys.stdout.flush()

    def close(self) -> None:
        self.sub.disable_monitor()
        self.monitor.close(linger=0)
        self.sub.close(linger=0)
        self.ctx.term()
        self.recorder.close()


def yield_cpu_to_data_path() -> None:
    """Run the dashboard at a lower scheduling priority than the consumer and producers.

    Watching must never slow down what is watched: when the cores are saturated, the
    scheduler now gives the data path the CPU first and the dashboard redraws a little
    later. (Called after the demo has started its children, so they keep normal priority.)
    """
    try:
        if hasattr(os, "nice"):
            os.nice(5)
        else:  # Windows
            import psutil

            psutil.Process().nice(psutil.BELOW_NORMAL_PRIORITY_CLASS)
    except (OSError, AttributeError):
        pass  # not allowed here: the dashboard still works, at normal priority


def run_visualizer(run: VisualizerRun) -> int:
    visualizer = Visualizer(run)
    visualizer.stop.install()
    try:
        summary = visualizer.serve()
    finally:
        visualizer.close()
    if run.json_out:
        print_json(summary)
    return 0
