"""Live control of a running consumer (and through it, its producers).

The consumer binds a ROUTER on port P+3. A client (``bplab ctl``, the demo's keys, or a
REQ socket in any language) sends one JSON object and gets one JSON object back::

    {"cmd": "status"}                              -> {"ok": true, "mode": "drop", ...}
    {"cmd": "mode", "value": "block"}              switch the overflow mode
    {"cmd": "rate", "value": 200}                  every producer: 200 msg/s from now
    {"cmd": "spike", "factor": 10, "duration": 5}  every producer: 10x for 5 s
    {"cmd": "slow", "value": 4}                    the worker becomes 4x slower
    {"cmd": "restore"}                             the worker back to full speed
    {"cmd": "stall", "value": 3}                   the worker stops for 3 s
    {"cmd": "batch", "value": "double"}            batch size: N, double, half, adaptive, fixed
    {"cmd": "workers", "value": "more"}            pool size: N, more, fewer (Module 17)
    {"cmd": "discipline", "value": "codel"}        queue discipline (Module 19)
    {"cmd": "window", "value": "double"}           window (buffer): N, double, half (Module 18)
    {"cmd": "delay", "value": "more"}              link delay, ms each way: N, more, less (18)

Producer commands (rate, spike, delay) travel to producers as CONTROL frames on the data
connection, so there is still only one address to know. ``delay`` changes the consumer's
own delay line and sends CONTROL ``{"link_delay_ms": D}`` to every active producer, whose
delay line then changes too (that frame itself still crosses the old link); with no
producer connected only the consumer's end changes. A knob's reply adds a ``note`` saying
what it did. A bad request gets ``{"ok": false, "error": "..."}``.
"""

from __future__ import annotations

import json
import math
from typing import Any, Callable, Dict, List, Optional

import zmq

from lab.core.batching import change_batching
from lab.core.config import check_choice
from lab.core.disciplines import DISCIPLINE_NAMES
from lab.core.flow_knobs import delay_after
from lab.core.modes import MODES
from lab.core.pool import change_workers
from lab.processes import net, security
from lab.processes.runtime import SLOWDOWN_FACTOR, STALL_FOR_S


def handle_control_request(process: Any, frames: List[bytes], now: float) -> Optional[List[bytes]]:
    """Answer one request read from the control ROUTER (REQ framing: id, empty, body)."""
    if len(frames) < 2:
        process.core.count_malformed("control message without a body")
        return None
    envelope, body = frames[:-1], frames[-1]
    try:
        request = json.loads(body)
        if not isinstance(request, dict):
            raise ValueError("a control request is a JSON object")
        reply = apply_command(process, request, now)
    except (ValueError, TypeError, UnicodeDecodeError) as error:
        reply = {"ok": False, "error": str(error)}
    except RecursionError:  # "[[[[..." nested deeper than the parser goes
        reply = {"ok": False, "error": "a control request is a JSON object"}
    return envelope + [json.dumps(reply).encode()]


def apply_command(process: Any, request: Dict[str, Any], now: float) -> Dict[str, Any]:
    """Carry out one request (see the module docstring) and answer with the status."""
    cmd = request.get("cmd")
    handler = COMMANDS.get(cmd) if isinstance(cmd, str) else None
    if handler is None:
        raise ValueError(f"unknown command {cmd!r}; commands: {', '.join(COMMANDS)}")
    core = process.core
    note = handler(process, request, now)
    reply = {
        "ok": True,
        "mode": core.mode,
        "depth": core.buffer.depth,
        "capacity": core.buffer.capacity,
        "slowdown": core.service.slowdown,
        "producers": core.active_producers(),
    }
    if note:  # what a knob did, in words, for ``bplab ctl`` to print
        reply["note"] = note
    return reply


def _status(process: Any, request: Dict[str, Any], now: float) -> None:
    """Nothing to change: the answer is the status."""


def _mode(process: Any, request: Dict[str, Any], now: float) -> None:
    value = request.get("value")
    if value not in MODES:
        raise ValueError(f"unknown mode {value!r}; choose one of: {', '.join(MODES)}")
    process.core.set_mode(value, now)


def _rate(process: Any, request: Dict[str, Any], now: float) -> None:
    rate = _positive(request.get("value"), "rate", allow_zero=True)
    _to_producers(process, {"rate": rate}, now, f"producers asked for {rate:g} msg/s")


def _spike(process: Any, request: Dict[str, Any], now: float) -> None:
    factor = _positive(request.get("factor", 10), "factor")
    duration = _positive(request.get("duration", 5), "duration")
    body = {"spike": {"factor": factor, "duration": duration}}
    _to_producers(process, body, now, f"producers asked to spike x{factor:g} for {duration:g} s")


def _slow(process: Any, request: Dict[str, Any], now: float) -> None:
    process.core.set_slowdown(_positive(_value_or(request, SLOWDOWN_FACTOR), "factor"), now)


def _restore(process: Any, request: Dict[str, Any], now: float) -> None:
    process.core.set_slowdown(1.0, now)


def _stall(process: Any, request: Dict[str, Any], now: float) -> None:
    process.core.stall(_positive(_value_or(request, STALL_FOR_S), "seconds"), now)


def _batch(process: Any, request: Dict[str, Any], now: float) -> None:
    """Module 16's knob: the batch size (a number, double, half, adaptive, fixed)."""
    process.core.log(now, change_batching(process.core.worker, request.get("value")))


def _workers(process: Any, request: Dict[str, Any], now: float) -> None:
    """Module 17's knob: the pool's size (a number, more, fewer)."""
    process.core.log(now, change_workers(process.core.worker, request.get("value"), now))


def _discipline(process: Any, request: Dict[str, Any], now: float) -> None:
    """Module 19's knob: the queue discipline, by name."""
    core, value = process.core, request.get("value")
    check_choice(value, DISCIPLINE_NAMES, "discipline")
    if core.config.batching or core.config.pooled:
        raise ValueError("a queue discipline needs one worker (no batching, no pool)")
    core.set_queue_discipline(value, now)


def _window(process: Any, request: Dict[str, Any], now: float) -> str:
    """Module 18's knob: the window (the buffer credit and demand are handed out against)."""
    return process.core.set_window(request.get("value"), now)


def _delay(process: Any, request: Dict[str, Any], now: float) -> str:
    """Module 18's knob: the link delay, each way, at the consumer and at every producer."""
    delay = delay_after(process.run_options.link_delay_ms, request.get("value"))
    process.set_link_delay(delay)
    core = process.core
    told = core.send_control({"link_delay_ms": delay}, now, f"link delay set to {delay:g} ms")
    if not told:
        core.log(now, f"link delay set to {delay:g} ms here (no producer to tell)")
    return f"link delay {delay:g} ms each way, {told} producer(s) told"


def _to_producers(process: Any, body: Dict[str, Any], now: float, note: str) -> None:
    if not process.core.send_control(body, now, note):
        raise ValueError("no producer is connected")


def _value_or(request: Dict[str, Any], default: float) -> Any:
    value = request.get("value")
    return default if value is None else value


Handler = Callable[[Any, Dict[str, Any], float], Optional[str]]  # -> a note, or None
COMMANDS: Dict[str, Handler] = {
    "status": _status,
    "mode": _mode,
    "rate": _rate,
    "spike": _spike,
    "slow": _slow,
    "restore": _restore,
    "stall": _stall,
    "batch": _batch,
    "workers": _workers,
    "discipline": _discipline,
    "window": _window,
    "delay": _delay,
}


def _positive(value: Any, name: str, allow_zero: bool = False) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if number < 0 or (number == 0 and not allow_zero) or not math.isfinite(number):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")
    return number


def send_command(
    host: str, port: int, request: Dict[str, Any], timeout: float = 2.0, keys: Any = None
):
    """Send one request to the consumer whose base port is ``port``; returns its reply.
    ``keys`` (``security.ClientKeys``): a classroom consumer, which takes the instructor's."""
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, int(timeout * 1000))
    sock.setsockopt(zmq.MAXMSGSIZE, net.MAX_CONTROL_MESSAGE)
    security.secure_client(sock, keys)
    try:
        sock.connect(net.endpoint(host, port + net.CONTROL_OFFSET))
        sock.send(json.dumps(request).encode())
        try:
            return json.loads(sock.recv())
        except zmq.Again:
            raise TimeoutError(
                f"no consumer answered on port {port + net.CONTROL_OFFSET} within {timeout:g} s "
                f"(is it running with --port {port}?)"
            ) from None
    finally:
        sock.close(linger=0)
