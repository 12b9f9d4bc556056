"""Each partition's records in order, none skipped: the guard against a record Faust drops.

Faust's consumer can drop a record it has already fetched (around rebalances, seeks and
flow control: its fetch loop stops early or skips a partition that is paused for a
moment) and then, seeing the next offset, files the hole as a gap it treats as
acknowledged. Measured here: one record in a few hundred lost after a takeover, its
customer's position then marking it as seen. So agents take each source partition's
records contiguously: a record past the offset expected next is set aside
unacknowledged, and the partition is read again from the expected offset. A hole that
stays after many re-reads is a real gap (a transaction marker) and is let through,
logged as an error. A dropped last record leaves no later one to show the hole: an agent
idle between batches while its partition's end is past the expected offset reads it again too.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from faust.types import TP, EventT

from engine.wire import metrics
from engine.worker.health import Health

log = logging.getLogger("tailor.sequence")

RESEEK_S = 1.0  # at most one re-read per partition and hole in this time
REAL_GAP_AFTER = 10  # re-reads (spanning REAL_GAP_AFTER x RESEEK_S) before a hole is real
IDLE_S = 2.0  # an agent given nothing this long while its partitions have records is stuck


@dataclass
class Hole:
    offset: int  # the offset expected and missing
    seeks: int = 0
    last_seek: float = float("-inf")


@dataclass
class Sequencer:
    """The next offset expected per source partition, within one consumer generation."""

    agent: str
    generation: int = -1
    expected: dict[TP, int] = field(default_factory=dict)
    holes: dict[TP, Hole] = field(default_factory=dict)
    busy: bool = False  # between `admit` and `done`: a batch in hand is not idleness
    done_at: float = field(default_factory=time.monotonic)

    def done(self) -> None:
        """The agent finished its batch."""
        self.busy = False
        self.done_at = time.monotonic()

    async def recheck(self, consumer: Any, topic: str, generation: int) -> None:
        """Read again any partition of `topic` that has records past the expected offset
        while the agent is given nothing (a timer calls this; never during a rebalance)."""
        idle = not self.busy and time.monotonic() - self.done_at >= IDLE_S
        if generation != self.generation or not idle:
            return
        for tp in consumer.assignment():
            if tp.topic != topic:
                continue
            expected = self.expected.get(tp, consumer._committed_offset.get(tp))
            end = consumer.highwater(tp)
            if expected is not None and end is not None and int(end) > int(expected):
                await self._read_again(consumer, tp, int(expected))

    async def admit(
        self, consumer: Any, generation: int, events: Sequence[EventT[Any]]
    ) -> list[EventT[Any]]:
        """The events to process now, in order; the rest must not be acknowledged (their
        partition is read again from the hole)."""
        self.busy = True
        if generation != self.generation:
            # After a rebalance Faust reads each partition again from its committed offset.
            self.generation, self.expected, self.holes = generation, {}, {}
        admitted: list[EventT[Any]] = []
        blocked: set[TP] = set()
        for event in events:
            tp, offset = event.message.tp, event.message.offset
            if tp in blocked:
                continue  # nothing of a partition passes its hole
            expected = self.expected.get(tp)
            if expected is None:
                committed = consumer._committed_offset.get(tp)
                expected = committed if committed is not None and committed < offset else offset
                self.expected[tp] = expected
            if offset > expected and not self._real_gap(tp, expected, offset):
                blocked.add(tp)
                continue
            if offset >= expected:
                self.expected[tp] = offset + 1
                self.holes.pop(tp, None)
            admitted.append(event)  # earlier offsets are redeliveries: deduped downstream
        for tp in blocked:
            await self._read_again(consumer, tp, self.expected[tp])
        return admitted

    def _real_gap(self, tp: TP, expected: int, offset: int) -> bool:
        hole = self.holes.get(tp)
        if hole is None or hole.offset != expected or hole.seeks < REAL_GAP_AFTER:
            return False
        log.error(
            "%s: %s offsets %d..%d never arrived after %d re-reads: taken as a real gap",
            self.agent,
            tp,
            expected,
            offset - 1,
            hole.seeks,
        )
        metrics.GAPS.labels(self.agent, "accepted").inc()
        return True

    async def _read_again(self, consumer: Any, tp: TP, expected: int) -> None:
        hole = self.holes.get(tp)
        if hole is None or hole.offset != expected:
            hole = self.holes[tp] = Hole(expected)
            log.warning("%s: %s skipped offset %d: reading it again", self.agent, tp, expected)
            metrics.GAPS.labels(self.agent, "reread").inc()
        now = time.monotonic()
        if now - hole.last_seek < RESEEK_S:
            return
        hole.seeks += 1
        hole.last_seek = now
        # In the consumer's own thread (Faust's `seek` runs aiokafka's from this one, which
        # races the fetcher: measured, a KeyError that stopped the worker).
        await consumer.seek_wait({tp: expected})


def watch(app: Any, health: Health, sequencer: Sequencer, topic: str) -> None:
    """A timer that reads again any partition of `topic` whose agent sits idle while
    records wait (a dropped last record), never during a rebalance or recovery."""

    async def recheck() -> None:
        if not (app.rebalancing or app.in_recovery):
            await sequencer.recheck(app.consumer, topic, app.rebalancing_count)

    app.timer(1.0, name=f"{sequencer.agent}.recheck")(health.guarded(f"recheck {topic}", recheck))
