"""Durable before acknowledged: what a batch sent to Kafka is there before the batch ends.

Faust acknowledges a batch when the agent asks for the next one, and commits offsets
after `producer.flush()`. That flush gives up after 0.1 s in which no message went out
(a busy event loop is enough), so two things can happen to table writes still in Faust's
buffer: a commit covers them and a kill -9 loses them, or a rebalance's recovery reads
the changelog without them and writes the older records it finds over newer local state
(the answers in between are then lost on the partition's next write). So each batch
waits on the futures of its own records, changelog records included, resending any that
failed, before it returns.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import faust
from faust.types import FutureMessage

from engine.worker.health import Health

log = logging.getLogger("tailor.changelog")

SLOW_S = 1.0  # waiting longer than this for Kafka is an outage: say so on /ready


class Table(faust.Table[Any, Any]):
    """A Faust table that keeps the futures of the changelog records it sends."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sent: list[FutureMessage] = []

    def send_changelog(
        self,
        partition: int | None,
        key: Any,
        value: Any,
        key_serializer: Any = None,
        value_serializer: Any = None,
    ) -> FutureMessage:
        fut: FutureMessage = super().send_changelog(
            partition, key, value, key_serializer, value_serializer
        )
        self.sent.append(fut)
        return fut

    def resend(self, fut: FutureMessage) -> FutureMessage:
        """Send a failed changelog record again, bytes as they were."""
        m = fut.message
        return self.send_changelog(m.partition, m.key, m.value, "raw", "raw")


Resend = Callable[[], Awaitable[FutureMessage]]


class InFlight:
    """Records sent and not yet known to be in Kafka, each with how to send it again.

    Every agent and timer of the worker shares one: `settle` waits for all of them,
    whoever sent them, so no batch ends while a record it wrote is still on its way.
    """

    def __init__(self, health: Health, tables: Sequence[Table]) -> None:
        self.health = health
        self.tables = tables
        self.records: dict[FutureMessage, tuple[Any, Resend]] = {}
        # A table key's latest record: only that one is resent if it fails (an older one
        # resent after a newer landed would leave the changelog on stale state).
        self.newest: dict[Any, FutureMessage] = {}

    def add(self, fut: FutureMessage, resend: Resend, identity: Any = None) -> None:
        self.records[fut] = (identity, resend)
        if identity is not None:
            self.newest[identity] = fut

    async def settle(self) -> None:
        """Wait until every record sent so far is acknowledged by Kafka, resending any
        that failed (with backoff, reporting not-ready meanwhile). Records sent after
        the call are left to their own sender's `settle`."""
        waiting = self._collect()
        delay = 0.05
        while waiting:
            await _wait(self.health, waiting)
            failed: list[tuple[BaseException, Resend]] = []
            for fut in waiting:
                if fut not in self.records:
                    continue  # settled by another waiter
                identity, again = self.records.pop(fut)
                exc = _failure(fut)
                newest = identity is None or self.newest.get(identity) is fut
                if newest and identity is not None and exc is None:
                    del self.newest[identity]
                if exc is not None and newest:
                    failed.append((exc, again))
            if not failed:
                break
            error = f"{len(failed)} records failed, resending: {failed[0][0]!r}"
            self.health.failing["kafka delivery"] = error
            log.warning(error)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.health.retry_max_s)
            waiting = [await again() for _, again in failed]
            self._collect()  # a table's resend is filed there
        self.health.failing.pop("kafka delivery", None)

    def _collect(self) -> list[FutureMessage]:
        """Everything in flight now, the tables' changelog records included."""
        for table in self.tables:
            sent, table.sent = table.sent, []
            for fut in sent:
                self.add(fut, _resend(table, fut), (table.name, fut.message.key))
        return list(self.records)


def _resend(table: Table, fut: FutureMessage) -> Resend:
    async def again() -> FutureMessage:
        return table.resend(fut)

    return again


def _failure(fut: FutureMessage) -> BaseException | None:
    if fut.cancelled():
        return asyncio.CancelledError("send cancelled")
    return fut.exception()


async def _wait(health: Health, futures: list[FutureMessage]) -> None:
    """All of `futures` done; while Kafka is slow to take them, /ready says so."""
    remaining: set[asyncio.Future[Any]] = set(futures)
    waited = False
    while remaining:
        _, remaining = await asyncio.wait(remaining, timeout=SLOW_S)
        if remaining:
            waited = True
            health.failing["kafka delivery"] = (
                f"{len(remaining)} records not yet acknowledged by Kafka"
            )
    if waited:
        log.info("Kafka acknowledged every record again")
