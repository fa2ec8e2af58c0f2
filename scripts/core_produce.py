"""The producer core's cost per message, without sockets: CPU ns per message of its hot path.

    PYTHONPATH=TREE python scripts/core_produce.py [--mode drop|block] [--messages N]

An unpaced producer core and a consumer core (zero service time, buffer 1000) are wired
together in one process, the frames passed through lists. The loop is the shell's
(``ProducerProcess.serve``): ``advance``, up to 64 ``pull_frame``/``mark_sent``, the
consumer's verdicts to ``on_frame``, ``next_deadline``. Only the producer's calls are
timed (CPU time, ``time.process_time``, around each call, a few calls per frame of up to 1000
records). The best of three runs is printed per mode, as JSON. With ``PYTHONPATH`` set to
an unpacked commit (``git archive``), it measures that commit's cores, so two commits can
be compared in one run, alternating (``docs/performance.md``, "The producer's hot path").
"""

from __future__ import annotations

import argparse
import json
import math
import time

from lab.core.config import ConsumerConfig, ProducerConfig
from lab.core.consumer_core import ConsumerCore
from lab.core.producer_core import ProducerCore

FRAMES_PER_TURN = 64  # lab/processes/producer.py MAX_FRAMES_PER_TURN
TURN_S = 0.0002  # simulated time per loop turn


def unpaced_config() -> ProducerConfig:
    """An unpaced producer; the rate field was named ``rate`` before ``messages_per_s``."""
    fields = ProducerConfig.__dataclass_fields__
    rate_field = "messages_per_s" if "messages_per_s" in fields else "rate"
    return ProducerConfig(name="p", **{rate_field: math.inf})


def ns_per_message(mode: str, messages: int) -> float:
    consumer = ConsumerCore(ConsumerConfig(mode=mode, capacity=1000, process_rate=math.inf), 0.0)
    producer = ProducerCore(unpaced_config(), 0.0)
    clock = time.process_time  # CPU time: a neighbour taking the core does not count
    spent = 0.0
    now = 0.0
    while producer.counts.produced < messages:
        now += TURN_S
        started = clock()
        producer.advance(now)
        to_consumer = list(producer.take_control_frames())
        for _ in range(FRAMES_PER_TURN):
            out = producer.pull_frame(now)
            if out is None:
                break
            producer.mark_sent(out, now)
            to_consumer.append(bytes(out.data))
        spent += clock() - started
        for frame in to_consumer:
            consumer.on_frame(b"p", frame, now)
        consumer.advance(now)
        answers = [frame for _peer, frame in consumer.take_outgoing()]
        started = clock()
        for frame in answers:
            producer.on_frame(frame, now)
        producer.next_deadline(now)
        spent += clock() - started
    return spent / producer.counts.produced * 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", action="append", choices=("drop", "block"))
    parser.add_argument("--messages", type=int, default=300_000)
    args = parser.parse_args()
    modes = args.mode or ["drop", "block"]
    print(json.dumps({m: min(ns_per_message(m, args.messages) for _ in range(3)) for m in modes}))


if __name__ == "__main__":
    main()
