"""``bplab consumer`` and ``bplab producer`` with ``--mode transport`` (Module 18's hidden
buffers): a PUSH/PULL pair with ``--hwm`` on both sides and no application flow control.

The commands keep their shape; the flags that mean something here (ports, ``--hwm``, the
worker's rate and distribution, the producer's rate, payload and count, ``--ledger``,
duration, JSON, recording) go to the transport processes, the others are not used. A bad
value is a ``ValueError`` from the run options, which the CLI reports as one line, exit 2.
"""

from __future__ import annotations

import math
from typing import Any, Dict

import typer

from lab.core.config import ConsumerConfig, default_of, messages_per_s, parse_rate_word
from lab.core.modules import get_module

CONSUMER_FLAGS = ("port", "bind", "hwm", "service_dist", "seed", "ledger")
PRODUCER_FLAGS = ("host", "port", "hwm", "payload_bytes", "count", "name")
COMMON_FLAGS = ("duration", "json_out", "quiet", "record", "parent_pid")


def _given(flags: Dict[str, Any], names) -> Dict[str, Any]:
    return {name: flags.get(name) for name in (*names, *COMMON_FLAGS) if name in flags}


def consumer(flags: Dict[str, Any]) -> None:
    """Run the transport consumer (ends the program)."""
    from lab.processes.net import PortInUse
    from lab.processes.transport_consumer import TransportConsumerRun, run_transport_consumer

    spec = get_module(flags["module"])
    rate = parse_rate_word(flags.get("process_rate"), "--process-rate")
    if rate is None:
        rate = spec.consumer.get("process_rate", default_of(ConsumerConfig, "process_rate"))
    if math.isinf(rate):
        raise ValueError("--mode transport needs a finite --process-rate (msg/s)")
    run = TransportConsumerRun.for_module(spec, process_rate=rate, **_given(flags, CONSUMER_FLAGS))
    try:
        code = run_transport_consumer(run)
    except PortInUse as error:
        raise ValueError(str(error)) from None
    raise typer.Exit(code)


def producer(flags: Dict[str, Any]) -> None:
    """Run the transport producer (ends the program)."""
    from lab.processes.transport_producer import TransportProducerRun, run_transport_producer

    spec = get_module(flags["module"])
    rate = messages_per_s(flags.get("rate"), flags.get("mps"))
    if rate is None:
        rate = spec.producer.get("messages_per_s", math.inf)
    run = TransportProducerRun.for_module(spec, rate=rate, **_given(flags, PRODUCER_FLAGS))
    raise typer.Exit(run_transport_producer(run))
