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
idle while its partition's end (asked of the broker: a partition the consumer stopped
fetching has a stale one) is past the expected offset reads it again too, in a new
generation as well, and a stream partition Faust left paused after a rebalance is resumed.
Records waiting with nothing committed for STALL_S make the worker not ready, naming the
partition, until it moves again: never a silent stall behind a 200.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from faust.types import TP, EventT

from engine.wire import metrics
from engine.worker.health import Health

log = logging.getLogger("tailor.sequence")

RESEEK_S = 1.0  # at most one re-read per partition and hole in this time
REAL_GAP_AFTER = 10  # re-reads (spanning REAL_GAP_AFTER x RESEEK_S) before a hole is real
IDLE_S = 2.0  # an agent given nothing this long while its partitions have records is stuck
ENDS_EVERY_S = 5.0  # how often the idle check asks the broker where partitions end
BROKER_TIMEOUT_S = 5.0  # a seek or a question to the broker, in the consumer's thread
STALL_S = 15.0  # records waiting this long with nothing committed: not ready (> commit interval)


@dataclass
class Hole:
    offset: int  # the offset expected and missing
    seeks: int = 0
    last_seek: float = float("-inf")


def _never() -> bool:
    return False


@dataclass
class Sequencer:
    """The next offset expected per source partition, within one consumer generation.

    `rebalancing` tells whether a rebalance is under way: the consumer's thread is then
    busy in Faust's rebalance callback, which waits until every record handed out is
    acknowledged, so an agent must not wait on that thread (a seek, a question to the
    broker): each would wait on the other (seen: a worker hung in its rebalance)."""

    agent: str
    rebalancing: Callable[[], bool] = _never
    generation: int = -1
    expected: dict[TP, int] = field(default_factory=dict)
    holes: dict[TP, Hole] = field(default_factory=dict)
    starts: dict[TP, int] = field(default_factory=dict)  # asked of the broker, per generation
    admitted_at: dict[TP, float] = field(default_factory=dict)  # a partition's latest record
    busy: bool = False  # between `admit` and `done`: a batch in hand is not idleness
    done_at: float = field(default_factory=time.monotonic)
    # Per partition, the committed offset last seen and since when it has not moved.
    progress: dict[TP, tuple[int, float]] = field(default_factory=dict)
    broker_ends: dict[TP, int] = field(default_factory=dict)  # as last asked, and when
    broker_asked_at: float = float("-inf")

    def done(self) -> None:
        """The agent finished its batch."""
        self.busy = False
        self.done_at = time.monotonic()

    def _begin(self, generation: int) -> None:
        """After a rebalance Faust reads each partition again from its committed offset."""
        self.generation, self.expected, self.holes, self.starts = generation, {}, {}, {}
        self.done_at = max(self.done_at, time.monotonic())  # idleness counts from now
        self.admitted_at = {}

    async def recheck(self, consumer: Any, topic: str, generation: int, health: Health) -> None:
        """Report records waiting with nothing committed for STALL_S on `health`, and read
        again any partition of `topic` with records past the expected offset while the
        agent is given nothing (a timer calls this; never during a rebalance)."""
        tps = sorted(tp for tp in consumer.assignment() if tp.topic == topic)
        ends = await self._ends(consumer, tps)
        starts = {tp: await self._start(consumer, tp) for tp in tps}
        self._watch_stalls(starts, ends, health)
        if generation != self.generation and not self.busy:
            self._begin(generation)  # given nothing since the rebalance, maybe never
        if generation != self.generation:
            return
        now = time.monotonic()
        idle = not self.busy and now - self.done_at >= IDLE_S
        for tp in tps:
            expected = self.expected.get(tp, starts[tp])
            end = ends.get(tp)
            if expected is None or end is None or int(end) <= expected:
                continue
            # Busy with other partitions is not a reason for one to get nothing this long.
            if not idle and now - self.admitted_at.get(tp, self.done_at) < STALL_S:
                continue
            if tp in getattr(consumer, "_paused_partitions", ()):
                log.warning("%s: %s was left paused after a rebalance: resumed", self.agent, tp)
                consumer.resume_partitions({tp})
            await self._read_again(consumer, tp, expected)

    async def admit(
        self, consumer: Any, generation: int, events: Sequence[EventT[Any]]
    ) -> list[EventT[Any]]:
        """The events to process now, in order; the rest must not be acknowledged (their
        partition is read again from the hole)."""
        self.busy = True
        if generation != self.generation:
            self._begin(generation)
        admitted: list[EventT[Any]] = []
        blocked: set[TP] = set()
        for event in events:
            tp, offset = event.message.tp, event.message.offset
            if tp in blocked:
                continue  # nothing of a partition passes its hole
            expected = self.expected.get(tp)
            if expected is None:
                start = await self._start(consumer, tp)
                expected = start if start is not None and start < offset else offset
                self.expected[tp] = expected
            if offset > expected and not self._real_gap(tp, expected, offset):
                blocked.add(tp)
                continue
            if offset >= expected:
                self.expected[tp] = offset + 1
                self.holes.pop(tp, None)
                self.admitted_at[tp] = time.monotonic()
            admitted.append(event)  # earlier offsets are redeliveries: deduped downstream
        for tp in blocked:
            await self._read_again(consumer, tp, self.expected[tp])
        return admitted

    async def _start(self, consumer: Any, tp: TP) -> int | None:
        """Where this generation's reading of `tp` begins: its committed offset. Faust's
        own copy is empty until its seek after recovery completes, which can come after
        the first records, and it files a committed 0 as none: then the broker is asked,
        and with nothing committed there (a new group, a worker killed before its first
        commit) reading begins at the partition's first offset, so records dropped right
        after the assignment are a hole, not a silent start further on."""
        committed = consumer._committed_offset.get(tp)
        if committed is not None:
            return int(committed)
        if tp not in self.starts and not self.rebalancing():
            try:
                start = await asyncio.wait_for(_at_broker(consumer, tp), BROKER_TIMEOUT_S)
            except Exception as exc:  # the broker away: the first record read sets it
                log.warning("%s: no committed or first offset of %s (%r)", self.agent, tp, exc)
                return None
            if start is None:
                return None
            log.info("%s: %s begins at %d (asked of the broker)", self.agent, tp, start)
            self.starts[tp] = start
        return self.starts.get(tp)

    async def _ends(self, consumer: Any, tps: Sequence[TP]) -> dict[TP, int]:
        """Each partition's end: as the last fetch saw it, or as the broker had it when last
        asked (every ENDS_EVERY_S: a partition no longer fetched has a stale highwater, and
        the broker answers only after the fetch waiting on the same connection)."""
        now = time.monotonic()
        if tps and now - self.broker_asked_at >= ENDS_EVERY_S:
            self.broker_asked_at = now
            try:
                ends = await asyncio.wait_for(consumer.highwaters(*tps), BROKER_TIMEOUT_S)
                self.broker_ends = {tp: int(end) for tp, end in ends.items()}
            except Exception as exc:  # the broker away: the worker says so elsewhere
                log.debug("end offsets of %s: %r", tps, exc)
        out = {}
        for tp in tps:
            fetched, asked = consumer.highwater(tp), self.broker_ends.get(tp)
            known = [int(end) for end in (fetched, asked) if end is not None]
            if known:
                out[tp] = max(known)
        return out

    def _watch_stalls(
        self, starts: Mapping[TP, int | None], ends: Mapping[TP, int], health: Health
    ) -> None:
        """Name on `health` the partitions whose records wait while their committed offset
        has not moved for STALL_S (an outage, a stuck batch, a partition not fetched)."""
        now = time.monotonic()
        stalled = []
        for tp, committed in starts.items():
            end = ends.get(tp)
            if committed is None or end is None:
                continue
            seen = self.progress.get(tp)
            if seen is None or seen[0] != committed:
                self.progress[tp] = seen = (committed, now)
            if end > committed and now - seen[1] >= STALL_S:
                stalled.append(f"{tp.partition} ({end - committed} at offset {committed})")
        for tp in set(self.progress) - set(starts):
            del self.progress[tp]
        metrics.STALLED.labels(self.agent).set(len(stalled))
        what = f"stalled {self.agent}"
        if stalled:
            if what not in health.failing:
                log.error("%s: records waiting, nothing committed: %s", self.agent, stalled)
            health.failing[what] = (
                f"records wait with nothing committed for {STALL_S:.0f}s or more on "
                f"partitions {', '.join(stalled)}"
            )
        elif health.failing.pop(what, None) is not None:
            log.info("%s: moving again", self.agent)

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
        if now - hole.last_seek < RESEEK_S or self.rebalancing():
            return  # after a rebalance Faust reads from the committed offset anyway
        hole.seeks += 1
        hole.last_seek = now
        # In the consumer's own thread (Faust's `seek` runs aiokafka's from this one, which
        # races the fetcher: measured, a KeyError that stopped the worker).
        try:
            await asyncio.wait_for(consumer.seek_wait({tp: expected}), BROKER_TIMEOUT_S)
        except Exception as exc:  # a rebalance began meanwhile: the hole is read again later
            log.warning("%s: reading %s again from %d failed: %r", self.agent, tp, expected, exc)


async def _at_broker(consumer: Any, tp: TP) -> int | None:
    """The group's committed offset of `tp` at the broker, else the partition's first
    offset (where `auto_offset_reset=earliest` reads from); in the consumer's thread."""
    thread = consumer._thread
    client = thread._ensure_consumer()
    committed = await thread.call_thread(client.committed, tp)
    if committed is not None:
        return int(committed)
    first = (await consumer.earliest_offsets(tp)).get(tp)
    return None if first is None else int(first)


def watch(app: Any, health: Health, sequencer: Sequencer, topic: str) -> None:
    """A timer that reads again any partition of `topic` whose agent sits idle while
    records wait (a dropped last record, a partition no longer fetched) and reports a
    stall on /ready, never during a rebalance or recovery."""

    metrics.STALLED.labels(sequencer.agent).set(0)  # a series from the start

    async def recheck() -> None:
        if not (app.rebalancing or app.in_recovery):
            await sequencer.recheck(app.consumer, topic, app.rebalancing_count, health)

    app.timer(1.0, name=f"{sequencer.agent}.recheck")(health.guarded(f"recheck {topic}", recheck))
