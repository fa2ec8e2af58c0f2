"""Module 20's numbers, measured with real processes: time to OOM under the default 64 MB
cap, what the broker held then, eviction under allkeys-lru, and the lab's producer against
raw redis-py pipelined XADD in the same run. Prints one JSON object.

    .venv/bin/python scripts/broker_measure.py
"""

from __future__ import annotations

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


def drain_time(consumers: int, backlog: int = 20_000, per_member: float = 1000.0) -> dict:
    """A backlog is built with no consumer running; then a group of ``consumers`` members at
    ``per_member`` msg/s each starts, and the time until the lag is 0 is measured."""
    from lab.processes.net import free_port_block
    from lab.processes.stream_io import DEFAULT_GROUP, read_figures

    with PrivateBroker() as server:
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


def main() -> None:
    result = {}
    with PrivateBroker() as server:  # the module's defaults: 64 MB, noeviction
        result["server"] = server_version(connect(server.url))
        oom = lab_producer(server.url, "--mps", "max", "--duration", "30")
        memory = connect(server.url).info("memory")
        result["oom"] = {
            "first_refusal_s": oom["first_refusal_s"],
            "held": connect(server.url).xlen(DEFAULT_STREAM),
            "added": oom["added"],
            "refused": oom["refused"],
            "used_memory_mb": memory["used_memory"] / 2**20,
            "error": oom["last_error"],
        }
    with PrivateBroker(maxmemory_mb=16, policy="allkeys-lru") as server:
        lru = lab_producer(server.url, "--mps", "max", "--duration", "8")
        client = connect(server.url)
        result["allkeys_lru"] = {
            "added": lru["added"],
            "refused": lru["refused"],
            "evicted_keys": client.info("stats")["evicted_keys"],
            "left_in_stream": client.xlen(DEFAULT_STREAM),
        }
    with PrivateBroker(maxmemory_mb=512) as server:
        raw = raw_xadd(server.url, 200_000)
        lab = lab_producer(server.url, "--mps", "max", "--count", "200000")["added_per_s"]
        raw_after = raw_xadd(server.url, 200_000)
        result["throughput"] = {
            "raw_before_per_s": raw,
            "lab_per_s": lab,
            "raw_after_per_s": raw_after,
            "lab_over_raw": lab / max(raw, raw_after),
        }
    result["drain"] = [drain_time(n) for n in (1, 2, 4)]
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
