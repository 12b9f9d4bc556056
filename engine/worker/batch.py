"""What one batch of tailor.interactions learned, per customer, until its effects are written.

A batch is applied in memory first; then its effects are made durable together (table
state, Redis decisions, Kafka records), each retried until it works, and only then is
the batch acknowledged.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncGenerator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import faust
from faust.streams import _current_event
from faust.types import EventT
from mode.utils.aiter import aiter

from engine.wire.events import Rejection
from models.context import Context
from models.customer import CustomerModel


@dataclass(slots=True)
class Outgoing:
    """A Kafka record to send once the batch is applied."""

    topic: Any
    key: str | bytes | None
    value: bytes
    headers: list[tuple[str, bytes]] = field(default_factory=list)


class Batch:
    """The customers a batch touched: their live model, latest context and event."""

    def __init__(self, customers: Any, live: dict[str, CustomerModel] | None = None) -> None:
        self.customers = customers  # the worker's table of customer models
        self.live = live if live is not None else {}  # models decoded by earlier batches
        self.models: dict[str, CustomerModel] = {}
        self.pending_before: dict[str, dict[str, float]] = {}  # open questions at load
        self.latest: dict[str, tuple[Context, str | None]] = {}  # who to decide for, and in what
        self.changed: set[str] = set()  # whose state to write back
        self.entered: dict[str, float] = {}  # when the customer's oldest event arrived
        self.lag: dict[str, float] = {}  # how far their latest event arrived behind its time
        self.forgotten: set[str] = set()
        self.sends: list[Outgoing] = []
        self.refused: list[tuple[EventT[bytes], Rejection]] = []
        self.records: dict[str, EventT[bytes]] = {}  # the last record of each customer
        # Lanes a loyalty scan made personal: (store, lane) -> (customer, until epoch s).
        self.lanes: dict[tuple[str, int], tuple[str, float]] = {}

    def record(self, customer_id: str, event: EventT[bytes]) -> None:
        self.records[customer_id] = event

    def model(self, customer_id: str) -> CustomerModel:
        model = self.models.get(customer_id)
        if model is None:
            model = self.live.get(customer_id) or CustomerModel.from_state(
                self.customers.get(customer_id)
            )
            self.models[customer_id] = model
            self.pending_before[customer_id] = dict(model.pending)
        return model

    def touch(self, customer_id: str, ctx: Context, event_id: str | None, at: float) -> None:
        """Decide for this customer at the end of the batch, in this context."""
        self.latest[customer_id] = (ctx, event_id)
        self.entered.setdefault(customer_id, at)
        self.forgotten.discard(customer_id)

    def drop(self, customer_id: str) -> None:
        """The customer is forgotten: nothing of theirs is written back."""
        self.models.pop(customer_id, None)
        self.latest.pop(customer_id, None)
        self.entered.pop(customer_id, None)
        self.changed.discard(customer_id)
        self.forgotten.add(customer_id)


@contextmanager
def written_as(event: EventT[bytes] | None) -> Iterator[None]:
    """Table writes in this block belong to `event`'s partition.

    Faust's RocksDB store files a write under the partition of the stream's current
    event; a batch spans partitions, so each customer's write names the customer's own
    record (always of their partition: records are keyed by customer).
    """
    token = _current_event.set(weakref.ref(event) if event is not None else None)
    try:
        yield
    finally:
        _current_event.reset(token)


class Stream(faust.Stream):  # type: ignore[type-arg]
    """A Faust stream whose `take_events` acknowledges exactly the events it yielded.

    Faust's own can acknowledge an event that reached its buffer while the previous
    batch was being processed, without ever yielding it: its gate for the buffer is a
    single future that a late waiter resets to None, after which new events go into the
    list being acknowledged. Kafka then commits past an answer nobody learned (seen
    after a rebalance: one offset of a partition skipped, its successor committed).
    """

    async def take_events(  # type: ignore[override]
        self, max_: int, within: float
    ) -> AsyncGenerator[list[EventT[Any]], None]:
        """Batches of at most `max_` events, or what came within `within` seconds; each
        batch is acknowledged once the caller asks for the next, except events the
        caller removed from it. While a batch is being processed the next fills up (to
        `max_`, then the stream waits)."""
        pending: list[EventT[Any]] = []
        full = asyncio.Event()
        room = asyncio.Event()
        room.set()

        async def add(value: Any) -> Any:
            event = self.current_event
            if event is None:
                raise RuntimeError("take_events found no current event")
            pending.append(event)
            if len(pending) >= max_:
                full.set()
                room.clear()
                await self.wait(room)  # type: ignore[arg-type]
            return value

        enable_acks, self.enable_acks = self.enable_acks, False
        self.add_processor(add)
        self._enable_passive(aiter(self.channel))  # type: ignore[arg-type]
        try:
            while not self.should_stop:
                await self.wait_for_stopped(full, timeout=within)  # type: ignore[arg-type]
                full.clear()
                if not pending:
                    continue
                batch = pending[:max_]
                del pending[:max_]
                room.set()
                try:
                    yield batch
                finally:
                    for event in batch:
                        await self.ack(event)
        finally:
            self.enable_acks = enable_acks
            self._processors.remove(add)
