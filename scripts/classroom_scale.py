"""Classroom scale on loopback: 40 producers into one block-mode consumer, CURVE against plain.

    python scripts/classroom_scale.py --producers 40 --mps 500 --duration 20

For each variant (``curve``: ``--classroom`` with CURVE on every socket; ``plain``: the same
without), one consumer process, the producers in ``lab.tools.swarm`` processes of ten, and
the instructor's dashboard drawing live at 160x48 (to /dev/null, as if on a terminal) in this
process. The variants run one after the other, so they do not share the two cores. CPU is
each child's own user+system time (``getrusage`` of the reaped children), so the figures
are CPU cost, not wall time. Prints one JSON object per variant.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Dict, List

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import psutil  # noqa: E402
from rich.console import Console  # noqa: E402

from lab.processes import net, security  # noqa: E402
from lab.processes.visualizer import Visualizer, VisualizerRun  # noqa: E402


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def start(argv: List[str]) -> subprocess.Popen:
    out = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (read back in finish)
    proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    proc.out_file = out  # type: ignore[attr-defined]
    return proc


def output(proc: subprocess.Popen) -> str:
    proc.out_file.seek(0)  # type: ignore[attr-defined]
    return proc.out_file.read()  # type: ignore[attr-defined]


def last_json(text: str) -> Dict[str, Any]:
    for line in reversed(text.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise SystemExit(f"no JSON in:\n{text[-2000:]}")


def dashboard(port: int, keys, duration: float) -> Visualizer:
    console = Console(
        file=open(os.devnull, "w"),  # noqa: SIM115 (lives as long as the run)
        force_terminal=True,
        width=160,
        height=48,
    )
    run = VisualizerRun(module=12, port=port, duration=duration, keys=keys, refresh=4.0)
    return Visualizer(run, console=console)


def steady_window(consumer, swarms, viz: Visualizer, args) -> Dict[str, Any]:
    """CPU and messages between 3 s after the producers start and 1 s before they stop:
    the steady state, without start-up (imports, joins) or the drain."""
    procs = [psutil.Process(consumer.pid)] + [psutil.Process(s.pid) for s in swarms]
    began = time.monotonic()

    def sample():
        times = [sum(p.cpu_times()[:2]) for p in procs]
        totals = (viz.state.consumer or {}).get("totals", {})
        return time.monotonic(), times, totals.get("received", 0)

    time.sleep(3.0)
    t0, cpu0, received0 = sample()
    time.sleep(max(1.0, began + args.duration - 1.0 - time.monotonic()))
    t1, cpu1, received1 = sample()
    seconds, messages = t1 - t0, received1 - received0
    consumer_cpu = cpu1[0] - cpu0[0]
    swarm_cpu = sum(cpu1[1:]) - sum(cpu0[1:])
    return {
        "steady_s": round(seconds, 1),
        "steady_received_mps": round(messages / seconds),
        "steady_consumer_cpu_pct": round(100 * consumer_cpu / seconds, 1),
        "steady_consumer_cpu_us_per_msg": round(1e6 * consumer_cpu / max(1, messages), 1),
        "steady_swarms_cpu_pct": round(100 * swarm_cpu / seconds, 1),
        "steady_swarms_cpu_us_per_msg": round(1e6 * swarm_cpu / max(1, messages), 1),
    }


def run_variant(name: str, args: argparse.Namespace) -> Dict[str, Any]:
    port = net.free_port_block()
    with tempfile.TemporaryDirectory() as tmp:
        room = security.load_or_create(Path(tmp) / "keys.json") if name == "curve" else None
        argv = [sys.executable, "-m", "lab", "consumer", "--port", str(port)]
        argv += ["--mode", "block", "--buffer", str(args.buffer)]
        argv += ["--process-rate", str(args.process_rate), "--json", "--quiet"]
        if room is not None:
            argv += ["--classroom", "--key-file", str(Path(tmp) / "keys.json")]
            argv += ["--per-producer-limit", str(args.share_cap)]
        cpu0 = children_cpu()
        consumer = start(argv)
        time.sleep(1.0)  # the consumer binds before the producers knock (they retry anyway)
        viewer_keys = security.ClientKeys.instructor(room) if room is not None else None
        viz = dashboard(port, viewer_keys, args.duration + 2.0)
        viz_result: Dict[str, Any] = {}
        thread = threading.Thread(target=lambda: viz_result.update(viz.serve()), daemon=True)
        thread.start()
        swarms = []
        per_swarm = 10
        for i in range(0, args.producers, per_swarm):
            swarm = [sys.executable, "-m", "lab.tools.swarm", "--port", str(port)]
            swarm += ["--count", str(min(per_swarm, args.producers - i)), "--mps", str(args.mps)]
            swarm += ["--duration", str(args.duration), "--prefix", f"{name}{i // per_swarm}"]
            if room is not None:
                swarm += ["--server-key", room.server_public.decode()]
            swarms.append(start(swarm))
        window = steady_window(consumer, swarms, viz, args)
        producers: Dict[str, Dict[str, Any]] = {}
        for swarm in swarms:
            swarm.wait(args.duration + 60)
            producers.update(last_json(output(swarm)))
        cpu_swarms = children_cpu() - cpu0
        thread.join(args.duration + 10)
        consumer.send_signal(signal.SIGTERM)
        consumer.wait(30)
        cpu_consumer = children_cpu() - cpu0 - cpu_swarms
        summary = last_json(output(consumer))
        viz.close()
    accepted = [p["accepted"] for p in producers.values()]
    fair = sum(accepted) / len(accepted)
    errors = [e for p in producers.values() for e in p["identity_errors"]]
    return {
        "variant": name,
        "producers": len(producers),
        "asked_mps": args.mps * args.producers,
        "produced_mps": round(sum(p["produced"] for p in producers.values()) / args.duration),
        "consumer_received": summary["received"],
        "consumer_received_mps": round(summary["received"] / args.duration),
        "consumer_processed": summary["processed"],
        "dropped": summary["dropped"],
        "over_credit": summary["over_credit"],
        "min_share_of_fair": round(min(accepted) / fair, 3) if fair else None,
        "max_share_of_fair": round(max(accepted) / fair, 3) if fair else None,
        "consumer_identity_errors": summary["identity_errors"],
        "producer_identity_errors": errors,
        "consumer_cpu_s": round(cpu_consumer, 2),
        "swarms_cpu_s": round(cpu_swarms, 2),
        "consumer_cpu_us_per_msg": round(1e6 * cpu_consumer / max(1, summary["received"]), 1),
        "swarm_cpu_us_per_msg": round(1e6 * cpu_swarms / max(1, sum(accepted)), 1),
        **window,
        "dashboard_redraws": viz_result.get("refreshes", viz.refreshes),
        "security": summary.get("security", {}).get("refused_total"),
    }


def socket_cost(curve: bool, messages: int, size: int) -> Dict[str, Any]:
    """ZeroMQ alone: ``messages`` frames of ``size`` bytes DEALER -> ROUTER over loopback TCP
    in this process, CPU time of every thread (libzmq's I/O threads included) per frame."""
    import zmq

    ctx = zmq.Context()
    server, client = ctx.socket(zmq.ROUTER), ctx.socket(zmq.DEALER)
    guard = None
    if curve:
        with tempfile.TemporaryDirectory() as tmp:
            room = security.load_or_create(Path(tmp) / "keys.json")
        guard = security.ServerGuard(ctx, room)
        guard.secure(server, security.DATA)
        security.secure_client(client, security.ClientKeys.fresh(room.server_public))
    port = net.free_port_block(1)
    server.bind(net.endpoint("127.0.0.1", port))
    client.connect(net.endpoint("127.0.0.1", port))
    client.send(b"hello")
    server.recv_multipart()  # the handshake is done: time the data path only
    payload = b"x" * size
    cpu0, wall0 = time.process_time(), time.monotonic()
    sent = received = 0
    while received < messages:
        while sent < messages and sent - received < 1000:
            client.send(payload)
            sent += 1
        server.recv_multipart()
        received += 1
    cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    if guard is not None:
        guard.close()
    for sock in (server, client):
        sock.close(linger=0)
    ctx.term()
    return {
        "variant": "curve" if curve else "plain",
        "frame_bytes": size,
        "frames": messages,
        "cpu_us_per_frame": round(1e6 * cpu / messages, 2),
        "frames_per_s": round(messages / wall),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--producers", type=int, default=40)
    parser.add_argument("--mps", type=float, default=500.0, help="each producer's rate")
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--buffer", type=int, default=2000)
    parser.add_argument("--process-rate", type=float, default=30000.0)
    parser.add_argument("--share-cap", type=float, default=0.05)
    parser.add_argument("--variants", default="curve,plain")
    parser.add_argument(
        "--socket-cost", type=int, default=0, help="N: also time N frames on bare sockets"
    )
    args = parser.parse_args()
    for size in (48, 4096) if args.socket_cost else ():
        for curve in (False, True, False, True):
            print(json.dumps(socket_cost(curve, args.socket_cost, size)), flush=True)
    for name in filter(None, args.variants.split(",")):
        print(json.dumps(run_variant(name, args)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
