"""The consumer core's ingest cost, without sockets: CPU ns per message of ``on_frame``.

    PYTHONPATH=TREE python scripts/core_ingest.py

300 DATA frames of 1000 records each go through ``ConsumerCore.on_frame`` at zero service
time (then ``advance`` and ``take_outgoing``, as the shell does), in drop, block and shed
mode, buffer 1000; the best of three runs is printed per mode, as JSON. With
``PYTHONPATH`` set to an unpacked commit (``git archive``), it measures that commit's core,
so two commits can be compared in one run (``docs/performance.md``, "Consumer split").
"""

from __future__ import annotations

import json
import math
import time

from lab.core import protocol
from lab.core.config import ConsumerConfig
from lab.core.consumer_core import ConsumerCore

FRAMES, RECORDS = 300, 1000


def ns_per_message(mode: str) -> float:
    core = ConsumerCore(ConsumerConfig(mode=mode, capacity=1000, process_rate=math.inf), 0.0)
    core.on_frame(b"p", protocol.encode_json(protocol.HELLO, {"producer": "p"}), 0.0)
    core.take_outgoing()
    frames = [
        protocol.encode_data(
            [protocol.Record(f * RECORDS + i, 0.0, 0.0) for i in range(RECORDS)], f * RECORDS
        )
        for f in range(FRAMES)
    ]
    now, started = 0.0, time.process_time()
    for frame in frames:
        now += 0.001
        core.on_frame(b"p", frame, now)
        core.advance(now)
        core.take_outgoing()
    elapsed = time.process_time() - started
    summary = core.summary(now)
    assert summary["processed"] == FRAMES * RECORDS and not summary["identity_errors"], summary
    return elapsed / (FRAMES * RECORDS) * 1e9


if __name__ == "__main__":
    print(
        json.dumps(
            {
                mode: min(ns_per_message(mode) for _ in range(3))
                for mode in ("drop", "block", "shed")
            }
        )
    )
