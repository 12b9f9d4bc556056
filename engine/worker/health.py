"""The worker's health: outages become backpressure and "not ready", never a skipped batch.

Every write to Redis or Kafka goes through `Health.retry`: a failure is retried with
bounded exponential backoff while the agent holds its batch (so it consumes nothing more
and acknowledges nothing), and `/ready` answers 503 naming what is failing until it
succeeds. `ready` gathers every reason the worker cannot serve fresh decisions.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiokafka.errors import KafkaError
from redis.exceptions import RedisError

from engine.wire import metrics
from engine.wire.topics import INTERACTIONS

T = TypeVar("T")
log = logging.getLogger("tailor.health")

# What an outage raises: a server away, restarting or loading. Anything else is a bug
# and is not retried here (the caller dead-letters the record it came from).
RETRYABLE = (RedisError, KafkaError, OSError, asyncio.TimeoutError)


class Health:
    """What is failing now, and retries that wait it out."""

    def __init__(self, retry_max_s: float) -> None:
        self.retry_max_s = retry_max_s
        self.failing: dict[str, str] = {}  # what -> the last error, while it fails

    async def retry(self, what: str, op: Callable[[], Awaitable[T]]) -> T:
        """Run `op` until it succeeds; while it fails, the worker reports not ready."""
        delay = 0.05
        while True:
            try:
                result = await op()
            except RETRYABLE as exc:
                if what not in self.failing:
                    log.warning("%s failing, retrying until it works: %r", what, exc)
                self.failing[what] = f"{type(exc).__name__}: {exc}"[:300]
                metrics.RETRIES.labels(what).inc()
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.retry_max_s)
                continue
            if self.failing.pop(what, None) is not None:
                log.info("%s works again", what)
            return result

    def guarded(
        self, name: str, tick: Callable[[], Awaitable[None]]
    ) -> Callable[[], Awaitable[None]]:
        """A timer body that survives any error: logged and counted, tried again next tick."""

        async def run() -> None:
            try:
                await tick()
            except Exception as exc:  # a timer must never crash the worker
                self.failing[f"timer {name}"] = f"{type(exc).__name__}: {exc}"[:300]
                metrics.TIMER_ERRORS.labels(name).inc()
                log.exception("timer %s failed; it runs again next tick", name)
            else:
                self.failing.pop(f"timer {name}", None)

        return run


def lag(app: Any) -> int:
    """Records of tailor.interactions on this worker's partitions not yet committed."""
    consumer = app.consumer
    behind = 0
    for tp in consumer.assignment():
        if tp.topic != INTERACTIONS:
            continue
        end = consumer.highwater(tp)
        done = consumer._committed_offset.get(tp)
        if end is not None:
            behind += max(0, int(end) - int(done or 0))
    return behind


def agents_down(app: Any) -> list[str]:
    """Agents whose every actor has stopped: nothing consumes their topic any more."""
    down = []
    for name, agent in app.agents.items():
        actors = list(getattr(agent, "_actors", ()))
        tasks = [a.actor_task for a in actors if getattr(a, "actor_task", None) is not None]
        if tasks and all(t.done() for t in tasks):
            down.append(name)
    return down


async def kafka_reachable(app: Any, timeout_s: float = 1.0) -> bool:
    """A metadata round trip to the brokers, bounded."""
    try:
        client = app.producer._ensure_producer().client
        return bool(await asyncio.wait_for(client.force_metadata_update(), timeout_s))
    except Exception:
        return False


async def redis_reachable(ping: Callable[[], Awaitable[bool]], timeout_s: float = 1.0) -> bool:
    """A PING round trip, bounded: an outage shows at the next probe, not at the next write."""
    try:
        return bool(await asyncio.wait_for(ping(), timeout_s))
    except Exception:
        return False


async def ready(
    app: Any,
    health: Health,
    max_lag: int,
    redis_ping: Callable[[], Awaitable[bool]] | None = None,
) -> tuple[bool, dict[str, Any]]:
    """Whether this worker serves fresh decisions now, and every reason it does not."""
    started = time.perf_counter()
    reasons: list[str] = []
    recovered = app.tables.recovery.completed.is_set()
    if not recovered or app.in_recovery:
        reasons.append("recovering tables from their changelogs")
    if app.rebalancing:
        reasons.append("rebalancing partitions")
    reasons += [f"{what}: {error}" for what, error in sorted(health.failing.items())]
    reasons += [f"agent {name} is down" for name in agents_down(app)]
    behind = lag(app) if recovered else 0
    if behind > max_lag:
        reasons.append(f"lagging: {behind} records behind (TAILOR_READY_MAX_LAG={max_lag})")
    if not await kafka_reachable(app):
        reasons.append("kafka unreachable")
    if redis_ping is not None and not await redis_reachable(redis_ping):
        reasons.append("redis unreachable")
    body = {
        "ready": not reasons,
        "recovered": recovered,
        "rebalancing": bool(app.rebalancing),
        "lag": behind,
        "reasons": reasons,
        "checked_in_ms": round((time.perf_counter() - started) * 1000, 1),
    }
    return not reasons, body
