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

    def __init__(self, committed: dict[TP, int] | None = None) -> None:
        self._committed_offset = dict(committed or {})
        self.ends: dict[TP, int] = {}
        self.seeks: list[tuple[TP, int]] = []

    def assignment(self) -> set[TP]:
        return set(self.ends)

    def highwater(self, tp: TP) -> int | None:
        return self.ends.get(tp)

    async def seek_wait(self, partitions: dict[TP, int]) -> None:
        self.seeks += list(partitions.items())


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
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [100.0]
    monkeypatch.setattr(sequence.time, "monotonic", lambda: clock[0])
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
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A dropped last record leaves no later record to show the hole."""
    clock = [0.0]
    monkeypatch.setattr(sequence.time, "monotonic", lambda: clock[0])
    s, c = Sequencer("t"), Consumer({P1: 4})
    admit(s, c, event(P0, 0))
    c.ends = {P0: 2, P1: 4, TP("other", 0): 9}
    clock[0] += sequence.IDLE_S
    asyncio.run(s.recheck(c, "tailor.interactions", 1))
    assert c.seeks == []  # a batch in hand, however long, is not idleness
    s.done()
    asyncio.run(s.recheck(c, "tailor.interactions", 1))
    assert c.seeks == []  # not idle long enough yet
    clock[0] += sequence.IDLE_S
    asyncio.run(s.recheck(c, "tailor.interactions", 2))
    assert c.seeks == []  # a rebalance since: the sequencer has not seen the new generation
    asyncio.run(s.recheck(c, "tailor.interactions", 1))
    assert c.seeks == [(P0, 1)]  # P1 is at its end; the other topic is not this agent's


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
