"""Module 20's numbers, measured with real processes: time to OOM under the default 64 MB
cap, what the broker held then, eviction under allkeys-lru, and the lab's producer against
raw redis-py pipelined XADD in the same run, and drain times. Prints one JSON object.

    .venv/bin/python scripts/broker_measure.py                        # every part
    .venv/bin/python scripts/broker_measure.py drain --broker-server valkey

``--broker-server`` picks the private server as the consumer's flag does (auto, redis,
valkey or a binary's path).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from lab.processes.broker import PrivateBroker, connect, server_version
from lab.processes.stream_io import DEFAULT_STREAM


def lab_producer(url: str, *args: str) -> dict:
    argv = [sys.executable, "-m", "lab", "producer", "-m", "20", "--redis-url", url]
    out = subprocess.run([*argv, *args, "--json", "--quiet"], capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def raw_xadd(url: str, count: int, batch: int = 500, payload: int = 100) -> float:
    client = connect(url, timeout_s=5.0)
    fields = {"p": "raw", "s": 0, "d": b"x" * payload}
    started = time.perf_counter()
    for _ in range(count // batch):
        pipe = client.pipeline(transaction=False)
        for _ in range(batch):
            pipe.xadd("raw", fields)
        pipe.execute()
    return count / (time.perf_counter() - started)


SERVER = "auto"  # --broker-server, set by main()


def private(**options) -> PrivateBroker:
    return PrivateBroker(server=SERVER, **options)


def drain_time(consumers: int, backlog: int = 20_000, per_member: float = 1000.0) -> dict:
    """A backlog is built with no consumer running; then a group of ``consumers`` members at
    ``per_member`` msg/s each starts, and the time until the lag is 0 is measured."""
    from lab.processes.net import free_port_block
    from lab.processes.stream_io import DEFAULT_GROUP, read_figures

    with private() as server:
        lab_producer(server.url, "--mps", "max", "--count", str(backlog))
        port = free_port_block(5)
        argv = [sys.executable, "-m", "lab", "consumer", "-m", "20", "--port", str(port)]
        argv += ["--redis-url", server.url, "--process-rate", f"{per_member:g}"]
        client = connect(server.url, timeout_s=5.0)
        consumer = subprocess.Popen([*argv, "--consumers", str(consumers), "--quiet"])
        try:
            while not client.xinfo_consumers(DEFAULT_STREAM, DEFAULT_GROUP):
                time.sleep(0.01)  # the clock starts when the first member has joined
            started = time.monotonic()
            while read_figures(client, DEFAULT_STREAM, DEFAULT_GROUP)["lag_messages"] > 0:
                time.sleep(0.02)
            measured = time.monotonic() - started
        finally:
            consumer.terminate()
            consumer.wait()
    return {
        "consumers": consumers,
        "backlog": backlog,
        "measured_s": measured,
        "computed_s": backlog / (consumers * per_member),
    }


PARTS = ("oom", "lru", "throughput", "drain")


def main() -> None:
    global SERVER
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("parts", nargs="*", help=f"some of {', '.join(PARTS)} (default: all)")
    parser.add_argument("--broker-server", default="auto", help="auto, redis, valkey or a path")
    args = parser.parse_args()
    SERVER, parts = args.broker_server, set(args.parts or PARTS)
    if parts - set(PARTS):
        parser.error(f"unknown part(s) {', '.join(sorted(parts - set(PARTS)))}: choose {PARTS}")
    with private() as server:
        result = {"server": server_version(connect(server.url))}
    if "oom" in parts:
        result["oom"] = oom()
    if "lru" in parts:
        result["allkeys_lru"] = lru()
    if "throughput" in parts:
        result["throughput"] = throughput()
    if "drain" in parts:
        result["drain"] = [drain_time(n) for n in (1, 2, 4)]
    print(json.dumps(result, indent=1))


def oom() -> dict:
    with private() as server:  # the module's defaults: 64 MB, noeviction
        run = lab_producer(server.url, "--mps", "max", "--duration", "30")
        memory = connect(server.url).info("memory")
        return {
            "first_refusal_s": run["first_refusal_s"],
            "held": connect(server.url).xlen(DEFAULT_STREAM),
            "added": run["added"],
            "refused": run["refused"],
            "used_memory_mb": memory["used_memory"] / 2**20,
            "error": run["last_error"],
        }


def lru() -> dict:
    with private(maxmemory_mb=16, policy="allkeys-lru") as server:
        run = lab_producer(server.url, "--mps", "max", "--duration", "8")
        client = connect(server.url)
        return {
            "added": run["added"],
            "refused": run["refused"],
            "evicted_keys": client.info("stats")["evicted_keys"],
            "left_in_stream": client.xlen(DEFAULT_STREAM),
        }


def throughput() -> dict:
    with private(maxmemory_mb=512) as server:
        raw = raw_xadd(server.url, 200_000)
        lab = lab_producer(server.url, "--mps", "max", "--count", "200000")["added_per_s"]
        raw_after = raw_xadd(server.url, 200_000)
        return {
            "raw_before_per_s": raw,
            "lab_per_s": lab,
            "raw_after_per_s": raw_after,
            "lab_over_raw": lab / max(raw, raw_after),
        }


if __name__ == "__main__":
    main()
