"""`tailor decisions export`: the served-decisions log `tailor replay decisions` reads, from
Kafka: every decision the API served (`"served": true` records of tailor.decisions; a
decision served twice is one question, asked when first served) and every answer to one
(tailor.interactions events carrying its `decision_id`: a purchase earns its `value`, else
the offer's price; a click or add-to-cart earns 0, being no sale).

Reads both topics from their beginning to the end offsets they had when it started, so it
ends by itself; what is still retained is what is exported.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer

from engine.wire.topics import DECISIONS, INTERACTIONS
from models.offer import Catalog

ASSIGN_WITHIN_S = 10.0


async def _read_all(bootstrap: str, topics: tuple[str, ...]) -> dict[str, list[bytes]]:
    """Every retained record value of each topic, up to the end offsets at the start."""
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        group_id=None,
        auto_offset_reset="earliest",  # no group, no committed offsets: from the beginning
    )
    await consumer.start()
    values: dict[str, list[bytes]] = {t: [] for t in topics}
    try:
        deadline = time.monotonic() + ASSIGN_WITHIN_S
        while not consumer.assignment() and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.1)  # without a group, every partition, once metadata is in
        partitions = list(consumer.assignment())
        if partitions:
            ends = await consumer.end_offsets(partitions)

            async def behind() -> bool:
                return any([await consumer.position(tp) < ends[tp] for tp in partitions])

            while await behind():
                for tp, records in (await consumer.getmany(timeout_ms=1000)).items():
                    values[tp.topic] += [r.value for r in records if r.value is not None]
    finally:
        try:
            await consumer.stop()
        except asyncio.CancelledError:  # aiokafka#647: a consumer without a group, stopped
            task = asyncio.current_task()  # soon after it started; not our cancellation
            if task is not None and task.cancelling():
                raise
    return values


def join(served: list[bytes], events: list[bytes], catalog: Catalog) -> list[dict[str, Any]]:
    """The log's lines: each served decision once (its first serve), then the answers."""
    lines: list[dict[str, Any]] = []
    asked: set[str] = set()
    for raw in served:
        try:
            record = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue
        if not isinstance(record, dict) or not record.get("served"):
            continue  # the worker's own decisions: made, not necessarily shown
        decision_id = str(record.get("decision_id"))
        if decision_id in asked:
            continue
        asked.add(decision_id)
        lines.append({**record, "created_at": record.get("served_at")})
    for raw in events:
        try:
            event = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue
        if not isinstance(event, dict) or str(event.get("decision_id")) not in asked:
            continue
        offer = catalog.offers.get(str(event.get("offer_id")))
        if offer is None:
            continue
        sale = event.get("type") == "purchase"
        value = event.get("value")
        reward = (float(value) if value is not None else offer.price) if sale else 0.0
        lines.append(
            {"decision_id": event["decision_id"], "offer_id": offer.offer_id, "reward": reward}
        )
    return lines


async def export(bootstrap: str, catalog: Catalog, out: Path) -> tuple[int, int]:
    """Write the log to `out`; returns (decisions, answers)."""
    read = await _read_all(bootstrap, (DECISIONS, INTERACTIONS))
    lines = join(read[DECISIONS], read[INTERACTIONS], catalog)
    with out.open("wb") as f:
        for line in lines:
            f.write(orjson.dumps(line) + b"\n")
    decisions = sum(1 for line in lines if "offers" in line)
    return decisions, len(lines) - decisions


def main(bootstrap: str, catalog: Catalog, out: Path) -> int:
    decisions, answers = asyncio.run(export(bootstrap, catalog, out))
    print(
        f"tailor decisions export: {decisions} served decisions and {answers} answers to {out}",
        file=sys.stderr,
    )
    return 0
