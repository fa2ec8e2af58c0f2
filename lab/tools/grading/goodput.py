"""Challenge 19, goodput: the solver's discipline chooses which waiting message the worker
takes next and which it drops at dequeue, so the worker's time goes to callers who still
wait.

The consumer is Module 19's: one worker of 100 msg/s (10 ms a message, the lab's simulated
service, so the figures do not depend on the machine's load) behind a queue of 500, in drop
mode. Each run draws how hard it is overloaded (150 or 200 msg/s) and how long callers wait
(a deadline of 300 or 500 ms in every message), so a fixed queue length or age that suits
one draw fails the other. Plain FIFO serves only messages whose callers have left.
"""

from __future__ import annotations

from lab.tools.grading import measures as m
from lab.tools.grading.core import Check, Evidence, MissingData
from lab.tools.grading.table import Challenge, Plan, Scenario, code_checks, flags, rng_for

NAME = "19_goodput"
PROCESS_RATE = 100.0  # the worker's capacity, msg/s
LOAD_FACTORS = (1.5, 2.0)  # times the capacity
DEADLINES_MS = (300.0, 500.0)
BUFFER = 500
DURATION_S = 7.0
WARM_S = 2.0  # seconds after the producer starts: a FIFO queue is past every deadline by then
END_S = 6.5  # the window ends before the producer's last message
MIN_GOODPUT = 80.0  # % of capacity, over the window
MAX_WASTED = 10.0  # % of processed, over the window


def _window(evidence: Evidence, key: str) -> float:
    start = m.producer_start_epoch(evidence.producer_records)
    return m.count_between(evidence.consumer_records, start + WARM_S, start + END_S, "totals", key)


def _goodput(evidence: Evidence) -> float:
    if not evidence.consumer_records:
        raise MissingData("the consumer recorded nothing")
    return 100.0 * _window(evidence, "goodput") / ((END_S - WARM_S) * PROCESS_RATE)


def _wasted(evidence: Evidence) -> float:
    processed = _window(evidence, "processed")
    if processed <= 0:
        raise MissingData("the consumer processed nothing in the window")
    return 100.0 * _window(evidence, "wasted") / processed


def draw(seed: int) -> Plan:
    rng = rng_for(seed, NAME)
    factor, deadline_ms = rng.choice(LOAD_FACTORS), rng.choice(DEADLINES_MS)
    scenario = Scenario(
        module=19,
        plugin_role="consumer",
        plugin_flag="--discipline-file",
        plugin_kind="discipline",
        consumer_flags=flags(mode="drop", buffer=BUFFER, process_rate=PROCESS_RATE),
        producer_flags=flags(mps=PROCESS_RATE * factor, deadline_ms=deadline_ms, retry="none"),
        duration_s=DURATION_S,
    )
    window = f"{WARM_S:g}-{END_S:g} s"
    checks = (
        Check(
            f"goodput vs capacity, {window}",
            _goodput,
            ">=",
            MIN_GOODPUT,
            f"too few messages finished by their deadline ({deadline_ms:g} ms): serve the ones "
            "whose callers still wait, and do not drop the ones that can still make it",
            unit="%",
            digits=1,
        ),
        Check(
            f"wasted vs processed, {window}",
            _wasted,
            "<=",
            MAX_WASTED,
            "the worker spent its time on messages that finished after their deadline: drop "
            "them at dequeue instead (each message carries its deadline)",
            unit="%",
            digits=1,
        ),
        *code_checks("consumer"),
    )
    facts = {"offered_mps": PROCESS_RATE * factor, "deadline_ms": deadline_ms}
    return Plan(seed, scenario, checks, facts)


GOODPUT = Challenge(
    name=NAME,
    title="Goodput under overload",
    goal="choose what the worker takes next and drops, so its work reaches callers who wait",
    plugin_role="consumer",
    plugin_flag="--discipline-file",
    plugin_kind="discipline",
    draw=draw,
)
