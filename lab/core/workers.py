"""The one place that chooses the consumer's worker from its config.

Three workers share one interface (``advance(buffer, now)``, ``next_event()``,
``charge``, ``stall``, ``status``, ``summary``), so the consumer core drives any of them:

* ``service.Worker``: one message at a time (Modules 12-15);
* ``batching.BatchWorker``: batches of O + b*I (Module 16), when the config gives a batch
  overhead or an item time;
* ``pool.WorkerPool``: several workers, optionally autoscaled, split into bulkheads, behind a
  shared database (Module 17), when the config asks for more than one worker, a database,
  autoscaling or bulkheads.

``build_worker`` returns the service model with it: what the shell slows down (``slowdown``)
and what the dashboard reads as the worker's speed (``effective_rate``).
"""

from __future__ import annotations

import random
from typing import Any, Tuple

from lab.core.batching import BatchServiceModel, BatchWorker, make_batcher
from lab.core.pool import (
    ALL_CLASSES,
    LagAutoscaler,
    PoolGroup,
    RuleAutoscaler,
    WorkerPool,
    parse_bulkheads,
)
from lab.core.service import ServiceModel, Worker


def build_worker(config: Any, rng: random.Random, now: float) -> Tuple[Any, Any]:
    if config.batching:
        return _batch_worker(config, now)
    if config.pooled:
        pool = WorkerPool(
            _groups(config),
            config.process_rate,
            db_capacity=config.db_capacity,
            db_coherence=config.db_coherence,
            start=now,
        )
        return pool, pool
    service = ServiceModel(config.process_rate, config.service_dist, rng)
    return service, Worker(service, start=now)


def _batch_worker(config: Any, now: float) -> Tuple[BatchServiceModel, BatchWorker]:
    overhead_s, item_s = (config.batch_overhead_ms or 0.0) / 1e3, (config.item_ms or 0.0) / 1e3
    model = BatchServiceModel(overhead_s, item_s)
    batcher = config.batcher_plugin or make_batcher(
        config.batch,
        config.batch_size,
        config.batch_target_ms / 1e3,
        config.batch_min,
        config.batch_max,
    )
    return model, BatchWorker(model, batcher, start=now, linger_s=config.batch_wait_ms / 1e3)


def _groups(config: Any):
    if config.bulkhead:
        return [PoolGroup(name, (cls,), n) for name, cls, n in parse_bulkheads(config.bulkhead)]
    scaler = None
    workers = config.workers
    if config.autoscale:
        low, high = config.autoscale
        scaler = LagAutoscaler(config.lag_target_s, low, high, config.scale_cooldown_s)
        if config.autoscaler_plugin is not None:
            scaler = RuleAutoscaler(config.autoscaler_plugin, low, high)
        workers = min(max(workers, low), high)
    return [PoolGroup("all", ALL_CLASSES, workers, scaler)]
