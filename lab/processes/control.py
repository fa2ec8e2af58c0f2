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

Producer commands travel to producers as CONTROL frames on the data connection, so there is
still only one address to know. A bad request gets ``{"ok": false, "error": "..."}``.
"""

from __future__ import annotations

import json
import math
from typing import Any, Dict, List, Optional

import zmq

from lab.core import protocol
from lab.core.batching import change_batching
from lab.core.modes import MODES
from lab.core.pool import change_workers
from lab.processes import net, security

COMMANDS = ("status", "mode", "rate", "spike", "slow", "restore", "stall", "batch", "workers")


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
    core = process.core
    cmd = request.get("cmd")
    value = request.get("value")
    if cmd == "status":
        pass
    elif cmd == "mode":
        if value not in MODES:
            raise ValueError(f"unknown mode {value!r}; choose one of: {', '.join(MODES)}")
        core.set_mode(value, now)
    elif cmd == "rate":
        rate = _positive(value, "rate", allow_zero=True)
        _broadcast(core, {"rate": rate}, now, f"producers asked for {rate:g} msg/s")
    elif cmd == "spike":
        factor = _positive(request.get("factor", 10), "factor")
        duration = _positive(request.get("duration", 5), "duration")
        _broadcast(
            core,
            {"spike": {"factor": factor, "duration": duration}},
            now,
            f"producers asked to spike x{factor:g} for {duration:g} s",
        )
    elif cmd == "slow":
        process.set_slowdown(_positive(value if value is not None else 4, "factor"), now)
    elif cmd == "restore":
        process.set_slowdown(1.0, now)
    elif cmd == "batch":
        core.log(now, change_batching(core.worker, value))
    elif cmd == "workers":
        core.log(now, change_workers(core.worker, value, now))
    elif cmd == "stall":
        seconds = _positive(value if value is not None else 3, "seconds")
        core.worker.stall(now, seconds)
        core.log(now, f"worker stalled for {seconds:g} s")
    else:
        raise ValueError(f"unknown command {cmd!r}; commands: {', '.join(COMMANDS)}")
    return {
        "ok": True,
        "mode": core.mode,
        "depth": core.buffer.depth,
        "capacity": core.buffer.capacity,
        "slowdown": core.service.slowdown,
        "producers": sum(1 for s in core.producers.values() if s.active),
    }


def _broadcast(core: Any, body: Dict[str, Any], now: float, note: str) -> None:
    frame = protocol.encode_json(protocol.CONTROL, body)
    active = [s for s in core.producers.values() if s.active]
    if not active:
        raise ValueError("no producer is connected")
    for state in active:
        core._outgoing.append((state.peer, frame))
    core.log(now, note)


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
