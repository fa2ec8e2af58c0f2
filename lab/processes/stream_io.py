"""Reading a stream's figures from the broker itself, for Module 20's producer and consumer.

One call, :func:`read_figures`, asks the broker (two pipelined round trips) for the stream's
length and ends, the consumer group's offset and pending count, the oldest pending id, the
broker's clock, memory used against ``maxmemory``, and evicted keys; the pure
:mod:`lab.core.stream_lag` turns them into lag in messages and seconds.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

from lab.core import stream_lag

DEFAULT_STREAM = "bplab:20"
DEFAULT_GROUP = "workers"


def ensure_group(client, stream: str, group: str) -> bool:
    """Create the group at the stream's start (and the stream); True if this call made it."""
    import redis

    try:
        client.xgroup_create(stream, group, id="0", mkstream=True)
        return True
    except redis.ResponseError as error:
        if "BUSYGROUP" in str(error):
            return False
        raise


def _seq_of(entry) -> Optional[int]:
    if not entry:
        return None
    _, fields = entry
    return stream_lag.entry_seq(fields or {})[1]


def read_figures(client, stream: str, group: str) -> Dict[str, Any]:
    """The broker's view of the stream and group, with lag computed (see stream_lag)."""
    import redis

    pipe = client.pipeline(transaction=False)
    pipe.time()
    pipe.info("memory")
    pipe.info("stats")
    pipe.xlen(stream)
    pipe.xinfo_groups(stream)
    pipe.xpending(stream, group)
    pipe.xrange(stream, count=1)
    pipe.xrevrange(stream, count=1)
    replies = pipe.execute(raise_on_error=False)
    seconds, micros = replies[0]
    now_ms = int(seconds) * 1000 + int(micros) // 1000
    memory, stats, length = replies[1], replies[2], replies[3]
    figures: Dict[str, Any] = {
        "broker_time_ms": now_ms,
        "used_memory": int(memory.get("used_memory", 0)),
        "maxmemory": int(memory.get("maxmemory", 0)),
        "maxmemory_policy": str(memory.get("maxmemory_policy", "")),
        "evicted_keys": int(stats.get("evicted_keys", 0)),
        "length": int(length) if isinstance(length, int) else 0,
        "stream_exists": isinstance(length, int) and length > 0,
    }
    groups = replies[4] if not isinstance(replies[4], redis.ResponseError) else []
    mine = next((g for g in groups if _text(g.get("name")) == group), None)
    if mine is None:
        figures.update(lag_messages=None, lag_s=None, pending=0, group=False)
        return figures
    pending_summary = replies[5] if isinstance(replies[5], dict) else {}
    pending = int(mine.get("pending", 0))
    delivered = stream_lag.parse_id(mine.get("last-delivered-id", "0-0"))
    first = replies[6][0] if isinstance(replies[6], list) and replies[6] else None
    newest = replies[7][0] if isinstance(replies[7], list) and replies[7] else None
    first_id = stream_lag.parse_id(first[0]) if first else None
    delivered_entry, next_unread = _around(client, stream, delivered)
    min_pending = pending_summary.get("min")
    server_lag = mine.get("lag")
    figures.update(
        group=True,
        pending=pending,
        consumers=int(mine.get("consumers", 0)),
        last_delivered_id=stream_lag.id_text(delivered),
        newest_seq=_seq_of(newest),
        lag_messages=stream_lag.lag_messages(
            pending,
            figures["length"],
            first_id,
            delivered,
            server_lag=int(server_lag) if server_lag is not None else None,
            newest_seq=_seq_of(newest),
            delivered_seq=_seq_of(delivered_entry),
            newest_id=stream_lag.parse_id(newest[0]) if newest else None,
        ),
        lag_s=stream_lag.lag_seconds(
            now_ms, stream_lag.parse_id(min_pending) if min_pending else None, next_unread
        ),
    )
    return figures


def _around(client, stream: str, delivered):
    """The entry at the group's offset (if still there) and the id of the first one after."""
    entries = client.xrange(stream, min=stream_lag.id_text(delivered), count=2)
    at = next((e for e in entries if stream_lag.parse_id(e[0]) == delivered), None)
    after = next(
        (stream_lag.parse_id(e[0]) for e in entries if stream_lag.parse_id(e[0]) > delivered),
        None,
    )
    return at, after


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
