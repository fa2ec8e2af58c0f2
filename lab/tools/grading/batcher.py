"""Challenge 16, an adaptive batcher: the solver's rule sets the consumer's batch size from
the batches it sees, so the worker keeps up with a burst and does not make messages wait
for full batches when the load is light.

The consumer batches as Module 16 teaches (8 ms a batch + 2 ms a message) and lingers up
to 100 ms for a batch to fill, so a large batch size costs latency when few messages
arrive, and a small one cannot keep up with a burst. Each run draws when the burst comes,
how long it lasts and how big it is (350 or 400 msg/s on a base of 50), so a size that
suits one load, or one moment, fails the other rows.
"""

from __future__ import annotations

from lab.tools.grading import measures as m
from lab.tools.grading.core import Check, Evidence, MissingData
from lab.tools.grading.table import Challenge, Plan, Scenario, code_checks, flags, rng_for

NAME = "16_adaptive_batcher"
BASE_MPS = 50.0
SPIKE_ATS = (2.5, 3.0)  # seconds after the producer starts (its first second is start-up)
SPIKE_FORS = (2.0, 2.5)
SPIKE_FACTORS = (7.0, 8.0)  # 350 or 400 msg/s
TAIL_S = 3.0  # the quiet step after the burst; the latency window is the last 2 s
OVERHEAD_MS, ITEM_MS = 8.0, 2.0
LINGER_MS = 100.0
BATCH_MAX = 200  # the consumer's --batch-max, told to the solver's class
BUFFER = 500
MIN_THROUGHPUT = 95.0  # % of what was offered during the burst
MAX_QUIET_P99_MS = 60.0
CATCH_UP_S = 0.5  # after the burst: time to finish the batches it left (one batch is ~0.2 s)


def _burst(spike_at: float, spike_for: float):
    def measure(evidence: Evidence) -> float:
        # Both counts are the consumer's own, so no clock but its records' is involved; the
        # window starts while the queue is empty (batches of one) so a half-done batch of 40
        # cannot tilt it.
        start = m.producer_start_epoch(evidence.producer_records) + spike_at
        end = start + spike_for + CATCH_UP_S
        records = evidence.consumer_records
        received = m.count_between(records, start, end, "totals", "received")
        if received <= 0:
            raise MissingData("the consumer received nothing during the burst")
        return 100.0 * m.count_between(records, start, end, "totals", "processed") / received

    return measure


def _quiet_p99(spike_at: float):
    """The worse of the message-latency p99s over the 2 s before the burst and the last 2 s
    of the run (both quiet)."""

    def measure(evidence: Evidence) -> float:
        start = m.producer_start_epoch(evidence.producer_records)
        records = evidence.consumer_records
        before = [r for r in records if float(r.get("t", 0.0)) < start + spike_at]
        values = [m.dig(r, "worker", "latency_p99_s") for r in (before[-1:] + records[-1:])]
        if len(values) < 2 or any(v is None for v in values):
            raise MissingData("no message latency was recorded in a quiet step")
        return 1000.0 * max(float(v) for v in values)

    return measure


def draw(seed: int) -> Plan:
    rng = rng_for(seed, NAME)
    spike_at, spike_for = rng.choice(SPIKE_ATS), rng.choice(SPIKE_FORS)
    factor = rng.choice(SPIKE_FACTORS)
    scenario = Scenario(
        module=16,
        plugin_role="consumer",
        plugin_flag="--batcher-file",
        plugin_kind="batcher",
        consumer_flags=flags(
            mode="drop",
            buffer=BUFFER,
            batch_overhead_ms=OVERHEAD_MS,
            item_ms=ITEM_MS,
            batch_wait_ms=LINGER_MS,
            batch_max=BATCH_MAX,
        ),
        producer_flags=flags(
            mps=BASE_MPS,
            profile="spike",
            spike_at=spike_at,
            spike_duration=spike_for,
            spike_factor=factor,
            retry="none",
        ),
        duration_s=spike_at + spike_for + TAIL_S,
    )
    checks = (
        Check(
            "processed vs received, burst + 0.5 s",
            _burst(spike_at, spike_for),
            ">=",
            MIN_THROUGHPUT,
            f"the worker fell behind {BASE_MPS * factor:g} msg/s: a batch of b takes "
            f"{OVERHEAD_MS:g} ms + b x {ITEM_MS:g} ms, so find the b that keeps up, and grow "
            "when batches come back full one after another",
            unit="%",
            digits=1,
        ),
        Check(
            "message latency p99 in the quiet steps",
            _quiet_p99(spike_at),
            "<=",
            MAX_QUIET_P99_MS,
            f"at {BASE_MPS:g} msg/s a large batch waits up to {LINGER_MS:g} ms to fill: "
            "shrink the size when few messages arrive",
            unit="ms",
        ),
        Check(
            "largest batch size asked for",
            lambda ev: m.peak(ev.consumer_records, "worker", "batch_limit"),
            "<=",
            BATCH_MAX,
            f"the size grew without bound: keep it within batch_max ({BATCH_MAX})",
        ),
        *code_checks("consumer"),
    )
    facts = {"spike_at_s": spike_at, "spike_for_s": spike_for, "burst_mps": BASE_MPS * factor}
    return Plan(seed, scenario, checks, facts)


BATCHER = Challenge(
    name=NAME,
    title="Adaptive batcher",
    goal="size the consumer's batches from what it sees: keep up with a burst, stay quick after",
    plugin_role="consumer",
    plugin_flag="--batcher-file",
    plugin_kind="batcher",
    draw=draw,
)
