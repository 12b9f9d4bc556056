"""What stands between Faust and a lost answer, without servers: batches that acknowledge
only what they yielded, partitions taken in order with holes read again, and a batch
that waits until Kafka has every record it sent, resending failures.

tests/test_faults.py proves the same on real Kafka with real kills; these pin the rules.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import faust
import pytest
from faust.types import TP

from engine.worker import sequence
from engine.worker.batch import Stream
from engine.worker.changelog import InFlight
from engine.worker.health import Health
from engine.worker.sequence import REAL_GAP_AFTER, Sequencer

P0 = TP("tailor.interactions", 0)
P1 = TP("tailor.interactions", 1)


def event(tp: TP, offset: int) -> Any:
    return SimpleNamespace(message=SimpleNamespace(tp=tp, offset=offset))


class Consumer:
    """What the sequencer asks of Faust's consumer: committed offsets, ends, seeks."""

    def __init__(
        self,
        committed: dict[TP, int] | None = None,
        earliest: dict[TP, int] | None = None,
        at_broker: dict[TP, int] | None = None,
    ) -> None:
        self._committed_offset = dict(committed or {})  # Faust's copy
        self.at_broker = {**(at_broker or {}), **self._committed_offset}  # the group's
        self._thread = self  # Faust's consumer thread, the aiokafka consumer: all one here
        self._paused_partitions: set[TP] = set()
        self.earliest = dict(earliest or {})  # a partition's first offset (none: unknown)
        self.ends: dict[TP, int] = {}  # as the broker has them
        self.fetched: dict[TP, int] = {}  # as the last fetch saw them (none: the broker's)
        self.seeks: list[tuple[TP, int]] = []

    def assignment(self) -> set[TP]:
        return set(self.ends)

    def highwater(self, tp: TP) -> int | None:
        return self.fetched.get(tp, self.ends.get(tp))

    async def highwaters(self, *partitions: TP) -> dict[TP, int]:
        return {tp: self.ends[tp] for tp in partitions}

    async def earliest_offsets(self, *partitions: TP) -> dict[TP, int]:
        return {tp: self.earliest[tp] for tp in partitions if tp in self.earliest}

    def _ensure_consumer(self) -> Consumer:
        return self

    async def call_thread(self, fun: Any, *args: Any) -> Any:
        return await fun(*args)

    async def committed(self, tp: TP) -> int | None:
        return self.at_broker.get(tp)

    def resume_partitions(self, tps: set[TP]) -> None:
        self._paused_partitions -= tps

    async def seek_wait(self, partitions: dict[TP, int]) -> None:
        self.seeks += list(partitions.items())


def recheck(s: Sequencer, c: Consumer, generation: int = 1, health: Health | None = None) -> None:
    asyncio.run(s.recheck(c, "tailor.interactions", generation, health or Health(1.0)))


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The sequencer's monotonic clock, at 0 until a test moves `clock[0]`."""
    now = [0.0]
    monkeypatch.setattr(sequence.time, "monotonic", lambda: now[0])
    return now


def offsets(events: list[Any]) -> list[tuple[int, int]]:
    return [(e.message.tp.partition, e.message.offset) for e in events]


def admit(s: Sequencer, c: Consumer, *evs: Any, generation: int = 1) -> list[tuple[int, int]]:
    return offsets(asyncio.run(s.admit(c, generation, list(evs))))


def test_a_hole_holds_back_its_partition_and_reads_it_again() -> None:
    s, c = Sequencer("t"), Consumer()
    assert admit(s, c, event(P0, 0), event(P0, 1), event(P1, 7)) == [(0, 0), (0, 1), (1, 7)]
    # Offset 2 of P0 never came: 3 and 4 wait (unacknowledged), P1 goes on.
    assert admit(s, c, event(P0, 3), event(P1, 8), event(P0, 4)) == [(1, 8)]
    assert c.seeks == [(P0, 2)]
    # Read again: old offsets are let through (deduped downstream), then the hole fills.
    assert admit(s, c, event(P0, 1), event(P0, 2), event(P0, 3)) == [(0, 1), (0, 2), (0, 3)]
    assert s.holes == {}


def test_the_first_record_after_a_rebalance_must_be_the_committed_one() -> None:
    s, c = Sequencer("t"), Consumer({P0: 10})
    assert admit(s, c, event(P0, 12)) == []
    assert c.seeks == [(P0, 10)]
    assert admit(s, c, event(P0, 10), event(P0, 11), event(P0, 12)) == [(0, 10), (0, 11), (0, 12)]
    # A new generation forgets what it expected: Faust reads from the committed offset.
    c._committed_offset[P0] = 13
    assert admit(s, c, event(P0, 13), generation=2) == [(0, 13)]


def test_a_hole_that_never_fills_is_a_real_gap_after_many_rereads(
    clock: list[float],
) -> None:
    clock[0] = 100.0
    s, c = Sequencer("t"), Consumer()
    admit(s, c, event(P0, 0))
    for _ in range(REAL_GAP_AFTER):
        assert admit(s, c, event(P0, 2)) == []  # offset 1 is a transaction marker
        clock[0] += sequence.RESEEK_S
    assert len(c.seeks) == REAL_GAP_AFTER
    assert admit(s, c, event(P0, 2), event(P0, 3)) == [(0, 2), (0, 3)]


def test_rereads_of_one_hole_are_spaced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sequence.time, "monotonic", lambda: 50.0)
    s, c = Sequencer("t"), Consumer()
    admit(s, c, event(P0, 0))
    for _ in range(5):
        admit(s, c, event(P0, 5))
    assert c.seeks == [(P0, 1)]


def test_an_idle_agent_whose_partition_has_more_reads_it_again(
    clock: list[float],
) -> None:
    """A dropped last record leaves no later record to show the hole."""
    s, c = Sequencer("t"), Consumer({P1: 4})
    admit(s, c, event(P0, 0))
    c.ends = {P0: 2, P1: 4, TP("other", 0): 9}
    clock[0] += sequence.IDLE_S
    recheck(s, c)
    assert c.seeks == []  # a batch in hand, however long, is not idleness
    s.done()
    recheck(s, c)
    assert c.seeks == []  # not idle long enough yet
    clock[0] += sequence.IDLE_S
    recheck(s, c)
    assert c.seeks == [(P0, 1)]  # P1 is at its end; the other topic is not this agent's


def test_a_partition_no_longer_fetched_is_read_again_by_its_end_at_the_broker(
    clock: list[float],
) -> None:
    """The consumer's highwater is as old as its last fetch of the partition."""
    s, c = Sequencer("t"), Consumer()
    admit(s, c, event(P0, 0), event(P0, 1))
    s.done()
    c.ends, c.fetched = {P0: 9}, {P0: 2}
    c._paused_partitions = {P0}  # left paused by a recovery that a rebalance cut short
    clock[0] += sequence.IDLE_S
    recheck(s, c)
    assert c.seeks == [(P0, 2)]
    assert c._paused_partitions == set()


def test_an_agent_given_nothing_since_a_rebalance_reads_its_partitions_again(
    clock: list[float],
) -> None:
    """Faust can drop every record of a partition after a rebalance: the agent then sees
    no batch of the new generation at all, and waiting for one would wait forever."""
    s, c = Sequencer("t"), Consumer({P0: 5})
    admit(s, c, event(P0, 5))
    s.done()
    c.ends = {P0: 6}
    c._committed_offset[P0] = 6
    clock[0] += sequence.IDLE_S
    recheck(s, c)
    assert c.seeks == []  # at its end
    c.ends = {P0: 30}
    recheck(s, c, generation=2)
    assert c.seeks == []  # idleness counts from the rebalance
    clock[0] += sequence.IDLE_S
    recheck(s, c, generation=2)
    assert c.seeks == [(P0, 6)]  # from the committed offset


def test_with_nothing_committed_reading_must_begin_at_the_partitions_first_offset(
    clock: list[float],
) -> None:
    """A new group, or a worker killed before its first commit, leaves nothing committed
    (and Faust files a committed 0 as nothing): reading begins at the partition's start,
    so records Faust drops right after the assignment are a hole like any other."""
    s, c = Sequencer("t"), Consumer(earliest={P0: 0, P1: 0})
    assert admit(s, c, event(P0, 30), event(P1, 0)) == [(1, 0)]
    assert c.seeks == [(P0, 0)]
    assert admit(s, c, event(P0, 0), event(P0, 1)) == [(0, 0), (0, 1)]
    # Every record of a never-committed partition dropped: nothing arrives to show it.
    s, c = Sequencer("t"), Consumer(earliest={P0: 0})
    admit(s, c, generation=1)
    s.done()
    c.ends = {P0: 76}
    clock[0] += sequence.IDLE_S
    recheck(s, c)
    assert c.seeks == [(P0, 0)]


def test_before_faust_has_its_committed_offsets_the_brokers_are_the_start() -> None:
    """Faust's copy of the committed offsets is filled by its seek after recovery, which
    can come after the first records (seen: a new worker's first batch, on half its
    partitions): the group's offset at the broker is where reading begins, not offset 0."""
    s, c = Sequencer("t"), Consumer(at_broker={P0: 800}, earliest={P0: 0})
    assert admit(s, c, event(P0, 800), event(P0, 801)) == [(0, 800), (0, 801)]
    assert c.seeks == []
    s, c = Sequencer("t"), Consumer(at_broker={P0: 800}, earliest={P0: 0})
    assert admit(s, c, event(P0, 803)) == []  # 800..802 dropped: a hole
    assert c.seeks == [(P0, 800)]


def test_during_a_rebalance_the_agent_never_waits_on_the_consumers_thread() -> None:
    """Faust's rebalance callback runs in the consumer's thread and waits until every
    record handed out is acknowledged: an agent waiting on that thread (a seek, asking
    the broker) would wait forever (seen: a worker hung in its rebalance)."""
    rebalancing = [True]
    s = Sequencer("t", lambda: rebalancing[0])
    c = Consumer({P0: 800}, at_broker={P1: 3})

    async def no_thread(*_: Any) -> Any:
        raise AssertionError("waited on the consumer's thread during a rebalance")

    c.call_thread = no_thread  # type: ignore[method-assign]
    c.seek_wait = no_thread  # type: ignore[method-assign]
    # P0: a hole, held back unacknowledged; P1: Faust has no committed offset yet and the
    # broker is not asked (Faust reads from the committed offsets after the rebalance).
    assert admit(s, c, event(P0, 803), event(P1, 4)) == [(1, 4)]
    assert admit(s, c, event(P0, 805)) == []  # still held back, still no seek
    rebalancing[0] = False
    c.seek_wait = Consumer.seek_wait.__get__(c)  # type: ignore[method-assign]
    assert admit(s, c, event(P0, 805)) == []
    assert c.seeks == [(P0, 800)]


def test_a_partition_given_nothing_while_the_agent_is_busy_with_others_is_read_again(
    clock: list[float],
) -> None:
    s, c = Sequencer("t"), Consumer({P0: 0, P1: 0})
    c.ends = {P0: 50, P1: 900}
    s.done()
    for second in range(int(sequence.STALL_S) + 1):
        clock[0] = float(second)
        admit(s, c, event(P1, second))  # P1 keeps the agent busy, P0 gets nothing
        recheck(s, c)
    assert c.seeks == [(P0, 0)]


def test_records_waiting_with_nothing_committed_make_the_worker_not_ready_until_they_move(
    clock: list[float],
) -> None:
    health = Health(1.0)
    s, c = Sequencer("t"), Consumer({P0: 10, P1: 3})
    c.ends = {P0: 37, P1: 3}
    s.busy = True  # a batch stuck in hand: no re-read, but a stall all the same
    recheck(s, c, health=health)
    clock[0] += sequence.STALL_S - 1
    recheck(s, c, health=health)
    assert health.failing == {}  # not yet: a commit comes every few seconds
    clock[0] += 1
    recheck(s, c, health=health)
    assert "partitions 0 (27 at offset 10)" in health.failing["stalled t"]
    c._committed_offset[P0] = 20
    recheck(s, c, health=health)
    assert health.failing == {}
    clock[0] += sequence.STALL_S
    c.ends = {P0: 20, P1: 3}
    recheck(s, c, health=health)
    assert health.failing == {}  # at the end: nothing waits


# ---------------------------------------------------------------- durable before done


class Sent(asyncio.Future[Any]):
    """A FutureMessage: a future with the message it sends."""

    def __init__(self, key: bytes) -> None:
        super().__init__()
        self.message = SimpleNamespace(key=key, partition=0, value=b"v")


class Table:
    def __init__(self) -> None:
        self.name = "customers"
        self.sent: list[Sent] = []
        self.resent: list[bytes] = []

    def resend(self, fut: Sent) -> Sent:
        self.resent.append(fut.message.key)
        again = Sent(fut.message.key)
        again.set_result("ok")
        return again


def test_a_failed_record_is_resent_and_a_stale_changelog_record_is_not() -> None:
    async def scenario() -> tuple[list[bytes], list[str], dict[str, str]]:
        health = Health(retry_max_s=0.01)
        table = Table()
        flight = InFlight(health, [table])  # type: ignore[list-item]
        old_a, new_a, only_b = Sent(b"a"), Sent(b"a"), Sent(b"b")
        table.sent += [old_a, new_a, only_b]
        sent, resent = Sent(b"d"), []

        async def send_again() -> Any:
            resent.append("decision")
            again = Sent(b"d")
            again.set_result("ok")
            return again

        flight.add(sent, send_again)
        old_a.set_exception(OSError("broker away"))  # superseded by new_a: not resent
        new_a.set_result("ok")
        only_b.set_exception(OSError("broker away"))  # the latest of b: resent
        sent.set_exception(OSError("broker away"))  # not a table record: resent
        await flight.settle()
        return table.resent, resent, dict(health.failing)

    table_resent, resent, failing = asyncio.run(scenario())
    assert table_resent == [b"b"]
    assert resent == ["decision"]
    assert failing == {}  # recovered: ready again


def test_settle_waits_for_what_is_still_on_its_way() -> None:
    async def scenario() -> bool:
        flight = InFlight(Health(retry_max_s=0.01), [])
        fut = Sent(b"x")
        flight.add(fut, lambda: asyncio.sleep(0))  # type: ignore[arg-type, return-value]
        task = asyncio.ensure_future(flight.settle())
        await asyncio.sleep(0.05)
        waiting = not task.done()
        fut.set_result("ok")
        await asyncio.wait_for(task, 1.0)
        return waiting

    assert asyncio.run(scenario())


# ---------------------------------------------------------------- batches


def test_take_events_yields_every_event_once_in_order_and_acks_only_what_it_kept() -> None:
    app = faust.App("test-delivery", Stream=Stream, autodiscover=False)
    seen: list[int] = []
    kept: list[Any] = []
    held: list[Any] = []

    @app.agent()
    async def agent(stream: Any) -> None:
        async for events in stream.take_events(5, within=0.01):
            held.extend(e for e in events if e.value == 7)
            events[:] = [e for e in events if e.value != 7]
            seen.extend(e.value for e in events)
            kept.extend(events)
            await asyncio.sleep(0.005)  # processing: more arrive meanwhile

    async def scenario() -> None:
        async with agent.test_context() as ctx:
            for i in range(23):
                await ctx.put(i)
            for _ in range(200):
                if len(seen) == 22:
                    break
                await asyncio.sleep(0.01)

    asyncio.run(scenario())
    assert seen == [i for i in range(23) if i != 7]
    assert [e.message.acked for e in held] == [False]
    assert all(e.message.acked for e in kept[:-5])  # all but the last batch, still open
