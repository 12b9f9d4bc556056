"""Event-to-decision latency of a running worker, measured from outside, live.

Events are sent at a steady rate, each for a customer of its own, and Redis is watched
for that customer's decision naming the event (`event_id`): the latency is from the send
to the decision being readable, which is what a screen waiting on it sees. Used by
`benchmarks.throughput` after its backlog is drained (a backlog's "freshness" measures
the queue, not the worker).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from typing import Any

import orjson
import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer

from engine.wire.serving import offers_key
from engine.wire.topics import INTERACTIONS

WATCH_EVERY_S = 0.005


def live_events(template: Sequence[dict[str, Any]], run_id: str) -> list[dict[str, Any]]:
    """`template`'s events, each for a new customer and with a new id."""
    return [
        {**e, "customer_id": f"live-{run_id}-{i}", "event_id": f"live-{run_id}-{i}"}
        for i, e in enumerate(template)
    ]


def percentile(values: Sequence[float], q: float) -> float:
    """The `q` quantile (0..1) by nearest rank; 0.0 for no values."""
    if not values:
        return 0.0
    ranked = sorted(values)
    return ranked[min(len(ranked) - 1, max(0, round(q * len(ranked)) - 1))]


async def event_to_decision(
    kafka: str, redis_url: str, events: Sequence[dict[str, Any]], rate: float, timeout_s: float
) -> tuple[list[float], int]:
    """Send `events` at `rate` per second; seconds from each send to its decision in Redis,
    and how many never got one within `timeout_s` after the last send."""
    producer = AIOKafkaProducer(bootstrap_servers=kafka, linger_ms=0, acks="all")
    client = aioredis.from_url(redis_url)
    waiting: dict[str, tuple[str, float]] = {}  # customer -> (event id, sent at)
    latencies: list[float] = []
    sending = True

    async def watch() -> None:
        while sending or waiting:
            customers = list(waiting)
            if customers:
                found = await client.mget([offers_key(c) for c in customers])
                now = time.monotonic()
                for cid, raw in zip(customers, found, strict=True):
                    if raw and orjson.loads(raw).get("event_id") == waiting[cid][0]:
                        latencies.append(now - waiting.pop(cid)[1])
            await asyncio.sleep(WATCH_EVERY_S)

    await producer.start()
    watcher = asyncio.ensure_future(watch())
    try:
        started = time.monotonic()
        for i, event in enumerate(events):
            await asyncio.sleep(max(0.0, started + i / rate - time.monotonic()))
            waiting[event["customer_id"]] = (event["event_id"], time.monotonic())
            await producer.send(
                INTERACTIONS, orjson.dumps(event), key=event["customer_id"].encode()
            )
        sending = False
        with contextlib.suppress(TimeoutError):  # the rest count as missed
            await asyncio.wait_for(asyncio.shield(watcher), timeout_s)
        return latencies, len(waiting)
    finally:
        sending = False
        waiting.clear()
        watcher.cancel()
        await producer.stop()
        await client.aclose()
