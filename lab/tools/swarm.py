"""A room of producers in a few processes: the load helper for classroom scale runs.

``python -m lab.tools.swarm --count 10 --mps 500 --port P [--server-key KEY]`` runs ten
complete producers (each a :class:`~lab.processes.producer.ProducerProcess`: its own core,
zmq context, DEALER and CURVE key pair, exactly what ``bplab join`` runs) on ten threads of
one process. Forty attendees are then four processes, not forty interpreters on a 2-core
machine. The threads share one GIL, so a swarm measures the consumer, not the producers:
each producer's own achieved rate is in its summary, and a swarm that cannot keep up shows
it there.

At the end it prints one JSON object: every producer's summary, keyed by name.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import threading
from typing import Any, Dict, List, Optional

from lab.core.config import ProducerConfig
from lab.core.modules import get_module
from lab.processes import security
from lab.processes.producer import ProducerProcess, ProducerRun
from lab.processes.runtime import StopSignal


def producer_config(module: int, mps: float, name: str, seed: int) -> ProducerConfig:
    """A producer with the module's defaults at ``mps`` (what ``bplab join --mps`` makes)."""
    defaults = get_module(module).producer
    return ProducerConfig(
        module=module,
        rate=mps,
        profile="steady",
        priority_mix=tuple(defaults.get("priority_mix", (1.0,))),
        seed=seed,
        name=name,
    )


def run_swarm(
    count: int,
    mps: float,
    port: int,
    host: str = "127.0.0.1",
    server_key: Optional[bytes] = None,
    duration: Optional[float] = None,
    module: int = 12,
    prefix: str = "swarm",
) -> Dict[str, Dict[str, Any]]:
    """Run ``count`` producers until ``duration`` or a signal; their summaries by name."""
    stop = StopSignal().install()
    processes: List[ProducerProcess] = []
    for i in range(count):
        keys = security.ClientKeys.fresh(server_key) if server_key else None
        run = ProducerRun(port=port, host=host, duration=duration, quiet=True, keys=keys)
        config = producer_config(module, mps, f"{prefix}-{i:02d}", seed=i)
        processes.append(ProducerProcess(config, run))
    summaries: Dict[str, Dict[str, Any]] = {}

    def serve(process: ProducerProcess) -> None:
        process.stop = stop  # one Ctrl-C stops the whole room
        summaries[process.core.name] = process.serve()

    threads = [threading.Thread(target=serve, args=(p,), daemon=True) for p in processes]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            while thread.is_alive():
                thread.join(0.2)  # short joins: the main thread must stay free for signals
    finally:
        for process in processes:
            process.close()
    return summaries


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.tools.swarm", description=__doc__)
    parser.add_argument("--count", type=int, default=10)
    parser.add_argument("--mps", type=float, default=50.0, help="each producer's rate")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--server-key", default=None, help="a classroom consumer's z85 key")
    parser.add_argument("--duration", type=float, default=None)
    parser.add_argument("--module", type=int, default=12)
    parser.add_argument("--prefix", default="swarm")
    args = parser.parse_args(argv)
    if not 1 <= args.count <= 200 or not 0 < args.mps < math.inf:
        parser.error("--count is 1..200 and --mps a positive number")
    key = args.server_key.encode("ascii") if args.server_key else None
    summaries = run_swarm(
        args.count, args.mps, args.port, args.host, key, args.duration, args.module, args.prefix
    )
    json.dump(summaries, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
