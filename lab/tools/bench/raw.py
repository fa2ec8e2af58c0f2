"""The machine's baseline: plain pyzmq between two processes, with no lab code in the loop.

Two patterns, one 30-byte message per ``send`` (the size of one lab record on the wire):

* **push/pull**: a PUSH sender in a tight ``send`` loop, a PULL receiver counting. The
  fastest anything can cross loopback here, one message at a time.
* **credit loop**: a DEALER sender and a ROUTER receiver doing credit-based flow control,
  the pattern of the lab's block mode. The receiver grants a cumulative limit ("you may
  have sent N"), starting at ``window``; after each batch it drains it raises the limit to
  ``received + window``. The sender sends while it is under the limit, then waits.

Each peer is its own process: ``python -m lab.tools.bench.raw ROLE --port P --seconds S``. The
receiver measures: it waits for the first message, lets ``warmup`` seconds pass, counts
for ``seconds`` and prints one JSON line, ``{"mps": ..., "count": ..., "seconds": ...}``.
Senders stop by themselves after ``--deadline`` seconds (or when the receiver is gone).
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
import time
from typing import List, Optional

import zmq

MESSAGE = b"m" * 30
CREDIT = struct.Struct("<Q")
CHECK_EVERY = 1024  # read the clock once per this many messages


class Meter:
    """Counts messages; knows when the warm-up is over and when the window closes."""

    def __init__(self, warmup: float, seconds: float) -> None:
        self.warmup, self.seconds = warmup, seconds
        self.count = 0
        self.started: Optional[float] = None
        self.window_start: Optional[float] = None
        self.window_count = 0
        self.result: Optional[dict] = None

    def tick(self, now: float) -> bool:
        """Called every CHECK_EVERY messages (and on idle turns); True when done."""
        if self.started is None:
            self.started = now
        if self.window_start is None and now - self.started >= self.warmup:
            self.window_start, self.window_count = now, self.count
        if self.window_start is not None and now - self.window_start >= self.seconds:
            elapsed = now - self.window_start
            counted = self.count - self.window_count
            self.result = {"mps": counted / elapsed, "count": counted, "seconds": elapsed}
            return True
        return False


def _bind(ctx: zmq.Context, kind: int, port: int) -> zmq.Socket:
    sock = ctx.socket(kind)
    sock.setsockopt(zmq.LINGER, 0)
    sock.bind(f"tcp://127.0.0.1:{port}")
    return sock


def _connect(ctx: zmq.Context, kind: int, port: int) -> zmq.Socket:
    sock = ctx.socket(kind)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(f"tcp://127.0.0.1:{port}")
    return sock


# -- push/pull -----------------------------------------------------------------------------------
def pull_receiver(port: int, warmup: float, seconds: float, deadline: float) -> Optional[dict]:
    ctx = zmq.Context()
    sock = _bind(ctx, zmq.PULL, port)
    sock.setsockopt(zmq.RCVTIMEO, 1000)  # a sender that left ends the loop
    meter = Meter(warmup, seconds)
    give_up = time.perf_counter() + deadline
    try:
        if not sock.poll(deadline * 1000):
            return None
        recv, clock = sock.recv, time.perf_counter
        while time.perf_counter() < give_up:
            for _ in range(CHECK_EVERY):
                recv()
            meter.count += CHECK_EVERY
            if meter.tick(clock()):
                return meter.result
        return None
    except zmq.Again:
        return None
    finally:
        sock.close(0)
        ctx.term()


def push_sender(port: int, deadline: float) -> None:
    ctx = zmq.Context()
    sock = _connect(ctx, zmq.PUSH, port)
    sock.setsockopt(zmq.SNDTIMEO, 1000)  # a receiver that left ends the loop
    give_up = time.perf_counter() + deadline
    send, message = sock.send, MESSAGE
    try:
        while time.perf_counter() < give_up:
            for _ in range(CHECK_EVERY):
                send(message)
    except zmq.Again:
        pass
    finally:
        sock.close(0)
        ctx.term()


# -- credit loop -------------------------------------------------------------------------------
def credit_receiver(
    port: int, window: int, warmup: float, seconds: float, deadline: float
) -> Optional[dict]:
    ctx = zmq.Context()
    sock = _bind(ctx, zmq.ROUTER, port)
    meter = Meter(warmup, seconds)
    give_up = time.perf_counter() + deadline
    try:
        if not sock.poll(deadline * 1000):
            return None
        peer, _hello = sock.recv_multipart()
        sock.send_multipart([peer, CREDIT.pack(window)])
        recv, send, clock = sock.recv, sock.send_multipart, time.perf_counter
        received = 0
        since_tick = 0
        while clock() < give_up:
            if not sock.poll(1000):
                return None
            batch = 0
            try:
                while batch < window:
                    recv(zmq.NOBLOCK)  # the sender's routing id
                    recv()  # the message, always in the same ZeroMQ message as its id
                    batch += 1
            except zmq.Again:
                pass
            received += batch
            send([peer, CREDIT.pack(received + window)])
            meter.count = received
            since_tick += batch
            if since_tick >= CHECK_EVERY:
                since_tick = 0
                if meter.tick(clock()):
                    return meter.result
        return None
    finally:
        sock.close(0)
        ctx.term()


def credit_sender(port: int, deadline: float) -> None:
    ctx = zmq.Context()
    sock = _connect(ctx, zmq.DEALER, port)
    sock.setsockopt(zmq.SNDTIMEO, 1000)  # a receiver that left ends the loop
    give_up = time.perf_counter() + deadline
    send, recv, message = sock.send, sock.recv, MESSAGE
    unpack = CREDIT.unpack
    try:
        sock.send(b"hello")
        sent, limit = 0, 0
        while time.perf_counter() < give_up:
            while sent < limit:
                send(message)
                sent += 1
            if not sock.poll(1000):
                return  # the receiver is gone
            limit = max(limit, unpack(recv())[0])
            try:
                while True:
                    limit = max(limit, unpack(recv(zmq.NOBLOCK))[0])
            except zmq.Again:
                pass
    except zmq.Again:
        pass  # a send timed out: the receiver is gone
    finally:
        sock.close(0)
        ctx.term()


# -- entry point ---------------------------------------------------------------------------------
def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.tools.bench.raw", description=__doc__)
    parser.add_argument("role", choices=("pull", "push", "credit-receiver", "credit-sender"))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--window", type=int, default=1000)
    parser.add_argument("--warmup", type=float, default=0.5)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--deadline", type=float, default=60.0)
    args = parser.parse_args(argv)
    result = None
    if args.role == "pull":
        result = pull_receiver(args.port, args.warmup, args.seconds, args.deadline)
    elif args.role == "push":
        push_sender(args.port, args.deadline)
    elif args.role == "credit-receiver":
        result = credit_receiver(args.port, args.window, args.warmup, args.seconds, args.deadline)
    else:
        credit_sender(args.port, args.deadline)
    if args.role in ("pull", "credit-receiver"):
        sys.stdout.write(json.dumps(result) + "\n")
        return 0 if result else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
