"""``bplab demo N``: a whole module in one terminal, for instructors.

The consumer and the producer run as child processes (started with ``sys.executable``, so
no fork and the same interpreter everywhere), the dashboard runs in the foreground. Ctrl-C
or SIGTERM stops the producer first (so its last verdicts arrive), then the consumer, then
prints one summary. Children get their own process group, so a terminal's Ctrl-C reaches
only the demo, which stops them in order; and each child watches the demo's pid and exits
by itself if the demo is killed outright. Nothing is left running.

On a terminal, keys change the running module for the room to watch (through the consumer's
control socket, like ``bplab ctl``): ``1``..``9`` switch to the module's live modes, ``+``
and ``-`` double or halve the producer rate, ``k`` starts a spike, ``s`` slows the worker
down (``--slowdown-factor``), ``r`` restores it, ``x`` stalls it (``--stall-for`` seconds),
``q`` quits. A module with a knob adds its keys: ``[`` and ``]`` halve and double the batch
size (16) or the window (18), or take away and add a worker (17); ``<`` and ``>`` lower
and raise Module 18's link delay along 0, 10, 50, 100, 200 ms each way; ``f/l/a/d/c`` pick
Module 19's queue discipline. The dashboard shows the legend (``lab/ui/keys.py`` has the table).
"""

from __future__ import annotations

import os
import shutil
import sys
import textwrap
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from lab.core.config import RETRY_POLICIES, check_choice, parse_rate_word
from lab.core.delayline import check_link_delay
from lab.core.modes import MODES
from lab.core.modules import ModuleSpec, get_module
from lab.core.ratelimit import LIMITERS
from lab.processes.children import Child
from lab.processes.consumer import lesson_line as consumer_lesson
from lab.processes.producer import lesson_line as producer_lesson
from lab.processes.runtime import (
    SLOWDOWN_FACTOR,
    STALL_FOR_S,
    RunOptions,
    fault_args,
    print_json,
    say,
)
from lab.processes.stream_consumer import latency_words
from lab.processes.visualizer import Visualizer, VisualizerRun
from lab.ui.keys import KeyReader, key_actions, legend


@dataclass
class DemoRun(RunOptions):
    """What ``bplab demo`` was told; ``DemoRun.for_module(spec, **flags)`` checks flags.

    The faults go to the consumer child, retry, breaker and limiter to the producer child."""

    module: int
    port: int
    mode: Optional[str] = None
    duration: Optional[float] = None
    mps: Optional[float] = None  # messages per second; math.inf: unpaced
    record: Optional[str] = None
    plain: bool = False
    json_out: bool = False
    slowdown_at: Optional[float] = None
    slowdown_factor: float = SLOWDOWN_FACTOR  # also the s key's
    slowdown_for: Optional[float] = None
    stall_at: Optional[float] = None
    stall_for: float = STALL_FOR_S  # also the x key's
    retry: Optional[str] = None
    breaker: Optional[bool] = None
    limit: Optional[str] = None
    # classroom mode (lab/processes/classroom.py): where to connect, the instructor's CURVE
    # keys for the dashboard and the control socket, no local producer, the join line, and
    # the classroom's own flags for the two children
    host: str = "127.0.0.1"
    control_keys: Optional[Any] = None
    with_producer: bool = True
    banner: Optional[str] = None
    extra_consumer_args: List[str] = field(default_factory=list)
    extra_producer_args: List[str] = field(default_factory=list)
    link_delay_ms: Optional[float] = None  # None: the module's demo row's (Module 18: 50)
    broker_server: Optional[str] = None  # Module 20: which private server the consumer starts

    @classmethod
    def for_module(cls, spec: ModuleSpec, mps: Optional[str] = None, **flags: Any) -> DemoRun:
        """``mps`` as typed: a number of messages per second, or 'max'."""
        return super().for_module(spec, mps=parse_rate_word(mps, "--mps"), **flags)

    def check_own(self) -> None:
        check_choice(self.mode, MODES, "--mode")
        fault_args(vars(self))
        check_choice(self.retry, RETRY_POLICIES, "--retry")
        check_choice(self.limit, LIMITERS, "--limit")
        if self.link_delay_ms is not None:
            check_link_delay(self.link_delay_ms)

    def consumer_args(self) -> List[str]:
        server = ["--broker-server", self.broker_server] if self.broker_server else []
        return fault_args(vars(self)) + server + self.extra_consumer_args

    def producer_args(self) -> List[str]:
        args: List[str] = []
        if self.retry is not None:
            args += ["--retry", self.retry]
        if self.breaker is not None:
            args.append("--breaker" if self.breaker else "--no-breaker")
        if self.limit is not None:
            args += ["--limit", self.limit]
        return args + self.extra_producer_args


def child_argv(role: str, run: DemoRun) -> List[str]:
    spec = get_module(run.module)
    argv = [
        sys.executable,
        "-m",
        "lab",
        role,
        "--module",
        str(run.module),
        "--port",
        str(run.port),
        "--quiet",
        "--json",
        "--parent-pid",
        str(os.getpid()),
    ]
    mode = run.mode or spec.consumer.get("mode")
    overrides = spec.demo.get(mode, {}) if isinstance(mode, str) else {}
    delay = run.link_delay_ms if run.link_delay_ms is not None else overrides.get("link_delay_ms")
    if delay:  # a slow link: each end delays what it receives
        argv += ["--link-delay-ms", repr(float(delay))]
    if role == "consumer":
        if run.mode:
            argv += ["--mode", run.mode]
        return argv + run.consumer_args()
    rate = run.mps if run.mps is not None else overrides.get("rate")
    if rate is not None:
        argv += ["--mps", "max" if rate == float("inf") else repr(float(rate))]
    if "payload_bytes" in overrides:
        argv += ["--payload-bytes", str(overrides["payload_bytes"])]
    return argv + run.producer_args()


def run_demo(run: DemoRun) -> int:
    spec = get_module(run.module)
    visualizer = Visualizer(
        VisualizerRun(
            module=run.module,
            port=run.port,
            host=run.host,
            keys=run.control_keys,
            duration=run.duration,
            record=run.record,
            plain=run.plain,
        )
    )
    visualizer.stop.install()
    children: List[Child] = []
    keys = KeyReader()
    try:
        consumer = Child("consumer", child_argv("consumer", run))
        children.append(consumer)
        if run.with_producer:
            children.append(Child("producer", child_argv("producer", run)))
        if keys.enabled:
            visualizer.state.key_legend = legend(spec.live_modes, spec.knob)
        if run.banner:
            visualizer.state.key_legend = "\n".join(
                filter(None, [run.banner, visualizer.state.key_legend])
            )
        actions = key_actions(spec.live_modes, run.slowdown_factor, run.stall_for, spec.knob)

        def watch(now: float) -> Optional[str]:
            for key in keys.read():
                reason = on_key(key, run, actions, visualizer.state, now)
                if reason:
                    return reason
            for child in children:
                if not child.running():
                    return f"{child.role} exited"
            return None

        visualizer.on_tick = watch
        visualizer.serve()
    finally:
        keys.close()
        for child in reversed(children):  # producer first: its last verdicts still arrive
            child.stop()
        visualizer.close()
    try:
        return _report(spec.title, run, children, visualizer.stop.reason)
    finally:
        for child in children:
            child.close()


def on_key(
    key: str, run: DemoRun, actions: Dict[str, Dict[str, Any]], state: Any, now: float
) -> Optional[str]:
    """Carry out one key press (see ``lab/ui/keys.py``); returns a stop reason for ``q``."""
    key = key.lower()
    if key == "q":
        return "q pressed"
    request = actions.get(key)
    if request is None:
        return None
    request = dict(request)
    if request["cmd"] == "rate":
        current = sum(p["target_mps"] or 0.0 for p in state.live_producers(now))
        if current <= 0:
            return None
        request["value"] = max(0.1, current * request.pop("factor"))
    from lab.processes.control import send_command

    try:
        reply = send_command(run.host, run.port, request, timeout=1.0, keys=run.control_keys)
    except TimeoutError as error:
        say(f"demo: {error}")
        return None
    if not reply.get("ok"):
        say(f"demo: {reply.get('error')}")
    return None


def _stream_line(consumer: Dict[str, Any], producer: Dict[str, Any]) -> str:
    return (
        f"producer: added {producer.get('added', 0):,}, refused {producer.get('refused', 0):,}"
        f"; consumer: processed {consumer.get('processed', 0):,} "
        f"({consumer.get('duplicates', 0):,} duplicates), trimmed {consumer.get('trimmed', 0):,}"
        + latency_words(consumer)
    )


def _report(title: str, run: DemoRun, children: List[Child], reason: Optional[str]) -> int:
    summaries = {child.role: child.summary() for child in children}
    failed = [c for c in children if c.popen.returncode not in (0, 3, -15, 130)]
    for child in children:
        _, err = child.output()
        if child.popen.returncode not in (0, -15) and err.strip():
            line = err.strip().splitlines()[-1]
            say(line if line.startswith(f"{child.role}:") else f"{child.role}: {line}")
    say(f"demo of module {run.module} ({title}) stopped: {reason or 'done'}")
    for text in summary_lines(summaries.get("consumer"), summaries.get("producer")):
        _say_wrapped(text)
    if run.json_out:
        print_json({"role": "demo", "module": run.module, "stop_reason": reason, **summaries})
    return 1 if failed else 0


def summary_lines(
    consumer: Optional[Dict[str, Any]], producer: Optional[Dict[str, Any]]
) -> List[str]:
    """The demo's exit summary: both processes' counts and each one's lesson numbers."""
    if consumer and "mode" not in consumer or producer and "achieved_mps" not in producer:
        return [_stream_line(consumer or {}, producer or {})]  # Module 20: a broker between
    lines = []
    if consumer:
        lines.append(
            f"consumer [{consumer['mode']}]: received {consumer['received']:,}, processed "
            f"{consumer['processed']:,}, dropped {consumer['dropped']:,}, sampled out "
            f"{consumer['sampled_out']:,}, shed {consumer['shed']:,}, max depth "
            f"{consumer['max_depth']:,}, peak RSS {consumer.get('rss_mb_max', 0):.0f} MB"
        )
        lines.append(_prefixed("consumer", consumer_lesson(consumer)))
        if consumer.get("stopped_by") == "memory_guard":
            lines.append(
                "the memory guard stopped the consumer: this is where a real service "
                "would have been OOM-killed"
            )
    if producer:
        lines.append(
            f"producer: produced {producer['produced']:,} at {producer['achieved_mps']:.1f} "
            f"msg/s, {producer['pending']:,} waiting in its outbox at the end, time to "
            f"verdict p50 {producer['latency_p50_ms']:.0f} ms, p99 "
            f"{producer['latency_p99_ms']:.0f} ms"
        )
        lines.append(_prefixed("producer", producer_lesson(producer)))
    return [text for text in lines if text]


def _prefixed(role: str, lesson: str) -> str:
    return f"{role}: {lesson}" if lesson else ""


def _say_wrapped(text: str) -> None:
    """Two spaces in, broken between words at the terminal's width (never "sh|ed 25")."""
    width = max(40, shutil.get_terminal_size((80, 24)).columns - 1)
    say(textwrap.fill(text, width, initial_indent="  ", subsequent_indent="    "))
