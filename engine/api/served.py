"""What the API served, logged to tailor.decisions for off-policy evaluation.

Each read of a customer's offers or a store's board is one record, `"served": true`,
with the decision's id and policy, where and when, and the offers in the slots they were
shown in with the propensity each was chosen with (boards included). Answers (events with
that `decision_id`) join it later: `tailor decisions export` writes both as the log that
`tailor replay decisions` reads.

Best effort, never on the read's path: records wait in a bounded queue and a background
task sends them in batches; when Kafka is away or the queue is full they are dropped and
counted (`tailor_served_dropped_total`), so serving stays as fast and as available as
Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import orjson

from engine.api.producer import KafkaUnavailable, Producer, Record
from engine.wire import metrics
from engine.wire.topics import DECISIONS

log = logging.getLogger("tailor.api")

QUEUE_MAX = 10_000
BATCH_MAX = 500
STOP_WAIT_S = 2.0


def served_record(decision: dict[str, Any], kind: str, k: int, subject: str) -> dict[str, Any]:
    """The served-decision record: the first `k` offers as shown, slot by slot."""
    offers = [
        {"offer_id": o["offer_id"], "slot": slot, "propensity": o.get("propensity")}
        for slot, o in enumerate(decision.get("offers", [])[:k])
    ]
    record = {
        "served": True,
        "kind": kind,
        "decision_id": decision.get("decision_id"),
        "policy": decision.get("policy"),
        "store_id": decision.get("store_id"),
        "context": decision.get("context") or {},
        "created_at": decision.get("created_at"),
        "served_at": round(time.time(), 3),
        "offers": offers,
    }
    if kind == "customer":
        record["customer_id"] = subject
    return record


class ServedLog:
    def __init__(self, producer: Producer) -> None:
        self.producer = producer
        self.queue: asyncio.Queue[Record] = asyncio.Queue(QUEUE_MAX)
        self._task: asyncio.Task[None] | None = None

    def note(self, decision: dict[str, Any], kind: str, k: int, subject: str) -> None:
        """Log one served decision (without waiting); a global fallback has no propensities
        and is not a policy's decision, so it is not logged."""
        if kind == "global" or not decision.get("decision_id"):
            return
        value = orjson.dumps(served_record(decision, kind, k, subject))
        try:
            self.queue.put_nowait(Record(DECISIONS, value, subject.encode()))
        except asyncio.QueueFull:
            metrics.SERVED_DROPPED.inc()
            return
        metrics.SERVED.labels(kind).inc()

    async def _drain(self) -> None:
        while True:
            batch = [await self.queue.get()]
            while len(batch) < BATCH_MAX and not self.queue.empty():
                batch.append(self.queue.get_nowait())
            try:
                await self.producer.send(batch)
            except KafkaUnavailable as exc:
                metrics.SERVED_DROPPED.inc(len(batch))
                log.warning("served decisions not logged (%d): %s", len(batch), exc)
            finally:
                for _ in batch:
                    self.queue.task_done()

    def start(self) -> None:
        self._task = asyncio.create_task(self._drain(), name="tailor.served-log")

    async def stop(self) -> None:
        """Send what is queued (within the producer's timeout), then stop."""
        if self._task is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.queue.join(), STOP_WAIT_S)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
