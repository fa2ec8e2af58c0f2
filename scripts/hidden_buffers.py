"""Module 18: how many messages hide in the transport's buffers, and how many a crash loses.

For each ``--hwm`` and message size, this starts a ``--mode transport`` consumer (one worker
at ``--process-rate``, a ``--ledger`` of what it processed) and a producer sending as fast
as the socket takes them, both real processes on loopback. It waits for the producer's first
refused send and reads, at that moment:

* hidden: the producer's sent minus the consumer's received at its latest refused send,
  ``--settle`` seconds after the first (the kernel grows its TCP buffers while they fill);
  the consumer computes it from its receive times and the producer's block time, both
  published in their snapshots;
* the kernel's queues of the data connection (``ss``: the producer's Send-Q, the consumer's
  Recv-Q, in bytes; "n/a" where not available) and the messages those bytes make.

Right then it SIGKILLs the consumer with the buffers full, stops the producer, and counts what was
lost: sent (the producer's own count) minus processed (the dead consumer's ledger).

    .venv/bin/python scripts/hidden_buffers.py                       # 3 x 3 cells, ~40 s
    .venv/bin/python scripts/hidden_buffers.py --hwm 1000 --sizes 100 --json
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import zmq  # noqa: E402

from lab.core.transport import crash_loss, wire_bytes  # noqa: E402
from lab.processes import net  # noqa: E402
from lab.processes.transport_io import kernel_source, read_kernel_queues  # noqa: E402

START_TIMEOUT_S = 20.0
BLOCK_TIMEOUT_S = 30.0


def _lab(role: str, port: int, *args: str) -> subprocess.Popen:
    argv = [sys.executable, "-m", "lab", role, "--mode", "transport", "--port", str(port)]
    return subprocess.Popen(
        [*argv, "--quiet", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        cwd=str(REPO),
    )


def _latest_consumer(sub: zmq.Socket, latest: Optional[Dict[str, Any]]):
    for snap in net.waiting_snapshots(sub):
        if snap is not None and snap["role"] == "consumer":
            latest = snap
    return latest


def _wait(sub: zmq.Socket, proc: subprocess.Popen, condition, timeout: float, what: str):
    deadline, snap = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the consumer exited early: {proc.stderr.read().strip()}")
        snap = _latest_consumer(sub, snap)
        if snap is not None and condition(snap):
            return snap
        sub.poll(50)
    raise RuntimeError(f"no {what} within {timeout:g} s")


def _blocked(snap: Dict[str, Any]) -> bool:
    figures = snap.get("transport") or {}
    return bool(figures.get("producer_blocked")) and figures.get("hidden_at_block") is not None


def measure_cell(hwm: int, size: int, rate: float, settle_s: float) -> Dict[str, Any]:
    """One consumer and one producer: the hidden figure at the block, then the crash."""
    port = net.free_port_block()
    ledger = Path(tempfile.mkdtemp(prefix="bplab-hidden-")) / "processed.txt"
    ctx = zmq.Context()
    sub = net.telemetry_subscriber(ctx)
    sub.connect(net.endpoint("127.0.0.1", port + net.TELEMETRY_OUT_OFFSET))
    common = ("--hwm", str(hwm))
    rate_flag = ("--process-rate", f"{rate:g}")
    consumer = _lab("consumer", port, *common, *rate_flag, "--ledger", str(ledger))
    producer = None
    try:
        _wait(sub, consumer, lambda snap: True, START_TIMEOUT_S, "consumer snapshot")
        producer = _lab(
            "producer", port, *common, "--mps", "max", "--payload-bytes", str(size), "--json"
        )
        first = _wait(sub, consumer, _blocked, BLOCK_TIMEOUT_S, "refused send")
        # the kernel grows its buffers while they fill: let it settle, then read a block
        time.sleep(settle_s)
        snap = _wait(sub, consumer, _blocked, BLOCK_TIMEOUT_S, "refused send after settling")
        kernel = read_kernel_queues(port)  # the producer is blocked: the queues are full
        figures = dict(snap["transport"])
        figures["first"] = first["transport"]["hidden_at_first_block"]
        consumer.send_signal(signal.SIGKILL)
        consumer.wait(timeout=10)
        producer.send_signal(signal.SIGTERM)
        out, err = producer.communicate(timeout=15)
        sent = json.loads(out)
    finally:
        for proc in (producer, consumer):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
        sub.close(linger=0)
        ctx.term()
    processed = len(ledger.read_text(encoding="utf-8").split())
    os.unlink(ledger)
    os.rmdir(ledger.parent)
    return _row(hwm, size, figures, kernel, sent, processed)


def _row(hwm, size, figures, kernel, sent, processed) -> Dict[str, Any]:
    hidden = figures["hidden_at_block"]
    in_kernel = None
    if kernel is not None:
        in_kernel = round((kernel.send_q + kernel.recv_q) / wire_bytes(size))
    return {
        "hwm": hwm,
        "payload_bytes": size,
        "hidden": hidden,
        "hidden_at_first_block": figures["first"],
        "sent_at_block": figures["sent_at_block"],
        "send_q": None if kernel is None else kernel.send_q,
        "recv_q": None if kernel is None else kernel.recv_q,
        "in_kernel": in_kernel,
        "in_zmq": None if in_kernel is None else hidden - in_kernel,
        "sent": sent["produced"],
        "processed": processed,
        "lost": crash_loss(sent["produced"], processed),
    }


def _cell(value: Optional[int]) -> str:
    return "n/a" if value is None else f"{value:,}"


def table(rows: Sequence[Dict[str, Any]]) -> str:
    head = (
        "| hwm | message | hidden at the block | Send-Q (B) | Recv-Q (B) | in the kernel "
        "| in ZeroMQ | sent | processed | lost on SIGKILL |"
    )
    lines = [head, "|" + "---|" * 10]
    for row in rows:
        cells = [
            f"{row['hwm']:,}",
            f"{row['payload_bytes']:,} B",
            *(
                _cell(row[key])
                for key in ("hidden", "send_q", "recv_q", "in_kernel", "in_zmq", "sent")
            ),
            _cell(row["processed"]),
            _cell(row["lost"]),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _ints(text: str) -> List[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hwm", default="10,100,1000", help="high-water marks (comma list)")
    parser.add_argument("--sizes", default="100,1000,10000", help="payload bytes (comma list)")
    parser.add_argument("--process-rate", type=float, default=100.0, help="consumer msg/s")
    parser.add_argument("--settle", type=float, default=1.0, help="s of blocking before reading")
    parser.add_argument("--json", dest="json_out", action="store_true", help="JSON rows")
    args = parser.parse_args(argv)
    try:
        hwms, sizes = _ints(args.hwm), _ints(args.sizes)
    except ValueError:
        parser.error("--hwm and --sizes take comma-separated whole numbers")
    if not hwms or not sizes or min(hwms) < 1 or min(sizes) < 0 or args.process_rate <= 0:
        parser.error("--hwm >= 1, --sizes >= 0 and --process-rate > 0, at least one of each")
    try:
        rows = [measure_cell(h, s, args.process_rate, args.settle) for h in hwms for s in sizes]
    except (RuntimeError, subprocess.TimeoutExpired, ValueError) as error:
        print(f"hidden_buffers: {error}", file=sys.stderr)
        return 1
    if args.json_out:
        print(json.dumps({"kernel_source": kernel_source(), "rows": rows}, indent=1))
    else:
        print(f"consumer at {args.process_rate:g} msg/s; kernel queues: {kernel_source()}")
        print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
