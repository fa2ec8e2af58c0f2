"""ZeroMQ plumbing shared by every process: ports, socket options, friendly bind errors.

Port layout of a module whose base port is P (Module 12: P = 12000):

==========  =====================  ==========================================
port        socket (who binds)     what flows
==========  =====================  ==========================================
P           ROUTER (consumer)      data: producers' DEALERs connect here
P + 1       PUB (consumer)         telemetry out: visualizers' SUBs connect
P + 2       SUB (consumer)         telemetry in: producers' PUBs connect; relayed to P + 1
P + 3       ROUTER (consumer)      control: ``bplab ctl`` and the demo's keys
==========  =====================  ==========================================

Everything binds to 127.0.0.1 unless ``--bind`` says otherwise, and uses tcp:// (ipc://
does not exist on Windows).
"""

from __future__ import annotations

import errno
import socket
from typing import Any, Dict, Iterator, Optional

import zmq

from lab.core import protocol

DATA_OFFSET = 0
TELEMETRY_OUT_OFFSET = 1
TELEMETRY_IN_OFFSET = 2
CONTROL_OFFSET = 3
PORTS_PER_MODULE = 4

MAX_DATA_MESSAGE = 4 * 1024 * 1024 + 1024
MAX_TELEMETRY_MESSAGE = 256 * 1024 + 64
MAX_CONTROL_MESSAGE = 16 * 1024
MAX_SUBSCRIPTION_MESSAGE = 1024

SOCKET_ROLES = {
    DATA_OFFSET: "data",
    TELEMETRY_OUT_OFFSET: "telemetry (visualizers)",
    TELEMETRY_IN_OFFSET: "telemetry (producers)",
    CONTROL_OFFSET: "control",
}


# What libzmq says for an address that is not this machine's or is not an address at all.
_BAD_ADDRESS = (errno.EADDRNOTAVAIL, errno.ENODEV, errno.EINVAL)


class PortInUse(Exception):
    """A port the consumer needs is taken; the message says which and how to move."""


def endpoint(host: str, port: int) -> str:
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 address
    return f"tcp://{host}:{port}"


def bind(sock: zmq.Socket, address: str, base_port: int, offset: int) -> None:
    """Bind ``sock`` to ``base_port + offset``, or raise :class:`PortInUse` saying what to do."""
    port = base_port + offset
    if address.startswith("[") or ":" in address:
        sock.setsockopt(zmq.IPV6, 1)
    try:
        sock.bind(endpoint(address, port))
    except zmq.ZMQError as error:
        if error.errno == errno.EADDRINUSE:
            what = SOCKET_ROLES.get(offset, "a")
            extra = "" if offset == 0 else f" (= --port {base_port} + {offset})"
            raise PortInUse(
                f"port {port}{extra} is already in use, needed for the {what} socket; "
                f"is another consumer running? Stop it or choose another base port with --port"
            ) from None
        if error.errno in _BAD_ADDRESS or "resolve" in str(error).lower():
            raise PortInUse(
                f"cannot bind to address {address!r}: not an address of this machine (--bind "
                "takes an IP address of this machine, e.g. 127.0.0.1, or 0.0.0.0 for all)"
            ) from None
        raise


def data_socket_options(sock: zmq.Socket, max_message: int = MAX_DATA_MESSAGE) -> None:
    """High-water marks count frames, and a DATA frame holds up to a thousand records, so
    they stay small: memory is bounded even when a producer outruns the consumer."""
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.MAXMSGSIZE, max_message)
    sock.setsockopt(zmq.SNDHWM, 1000)
    sock.setsockopt(zmq.RCVHWM, 1000)


def telemetry_publisher(ctx: zmq.Context) -> zmq.Socket:
    """A PUB socket that can never block its owner: small queue, drops when full."""
    pub = ctx.socket(zmq.PUB)
    pub.setsockopt(zmq.LINGER, 0)
    pub.setsockopt(zmq.SNDHWM, 50)
    # A PUB receives subscriptions (a few bytes); anything bigger is an attack or a mistake.
    pub.setsockopt(zmq.MAXMSGSIZE, MAX_SUBSCRIPTION_MESSAGE)
    return pub


def telemetry_subscriber(ctx: zmq.Context) -> zmq.Socket:
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.RCVHWM, 1000)
    sub.setsockopt(zmq.MAXMSGSIZE, MAX_TELEMETRY_MESSAGE)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    return sub


def free_port_block(count: int = PORTS_PER_MODULE, host: str = "127.0.0.1") -> int:
    """A base port such that ``count`` consecutive ports are free right now (for tests)."""
    for _ in range(200):
        with socket.socket() as probe:
            probe.bind((host, 0))
            base = probe.getsockname()[1]
        if base + count >= 65535:
            continue
        if all(_is_free(host, base + i) for i in range(count)):
            return base
    raise RuntimeError("could not find a block of free ports")


def _is_free(host: str, port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def waiting_snapshots(sub: zmq.Socket, limit: int = 10_000) -> Iterator[Optional[Dict[str, Any]]]:
    """Every telemetry snapshot already waiting on ``sub`` (at most ``limit``), decoded;
    ``None`` stands for a message that is not a valid snapshot (the caller counts it)."""
    for _ in range(limit):
        frames = recv_nowait(sub)
        if frames is None:
            return
        try:
            yield protocol.decode_snapshot(frames)
        except protocol.ProtocolError:
            yield None


def recv_nowait(sock: zmq.Socket) -> Optional[list]:
    try:
        return sock.recv_multipart(zmq.NOBLOCK)
    except zmq.Again:
        return None
