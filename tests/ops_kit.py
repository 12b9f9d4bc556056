"""What the dashboard and /ops tests share: steady traffic through the real API, the Grafana
dashboard's queries with its variables filled in, and instant queries on a real Prometheus.

`traffic` sends shoppers through `POST /v1/events` (impressions, and purchases of about
half of them, so both holdout groups answer yes and no), store context and one forget-me
through the API, and malformed records straight to Kafka (the API refuses them, so the
worker's dead-letter path is reached the way a broken producer reaches it).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import re
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaProducer

from config.catalog import load_catalog
from engine.wire.topics import INTERACTIONS
from tests.conftest import Pipeline

DASHBOARD = Path(__file__).resolve().parents[1] / "config" / "grafana" / "tailor.json"
# Grafana's own variables, as it would fill them in over the last 15 minutes at a 2 s scrape
# ($__rate_interval: at least four scrapes).
BUILTIN = {
    "__rate_interval": "1m",
    "__interval": "10s",
    "__interval_ms": "10000",
    "__range": "15m",
    "__range_s": "900",
    "__range_ms": "900000",
}
VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(\w+)")


def dashboard_queries(dashboard: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(panel title, PromQL) of every target of every panel, rows' panels included."""
    found = []
    panels = list(dashboard.get("panels", []))
    while panels:
        panel = panels.pop(0)
        panels[0:0] = panel.get("panels", [])  # a collapsed row keeps its panels inside
        for t in panel.get("targets", []):
            if t.get("expr"):
                found.append((str(panel.get("title", "")), str(t["expr"])))
    return found


def variables(dashboard: Mapping[str, Any]) -> dict[str, str]:
    """The dashboard's template variables at their current value ("All" as a regex)."""
    values = dict(BUILTIN)
    for var in dashboard.get("templating", {}).get("list", []):
        current = var.get("current", {}).get("value", "")
        chosen = current if isinstance(current, list) else [current]
        if not chosen or "$__all" in chosen or chosen == [""]:
            values[var["name"]] = var.get("allValue") or ".*"
        else:
            values[var["name"]] = "|".join(str(c) for c in chosen)
    return values


def substitute(expr: str, values: Mapping[str, str]) -> str:
    """`expr` with each `$name`, `${name}` or `[[name]]` replaced; an unknown one is a bug.

    >>> substitute('rate(x{store=~"$store"}[$__rate_interval])', {"store": ".*",
    ...     "__rate_interval": "1m"})
    'rate(x{store=~".*"}[1m])'
    """

    def one(match: re.Match[str]) -> str:
        name = next(g for g in match.groups() if g)
        if name not in values:
            raise KeyError(f"the dashboard uses ${name}, a variable it does not define")
        return values[name]

    return VARIABLE.sub(one, expr)


def has_data(body: Mapping[str, Any]) -> bool:
    """An instant query's answer holds at least one finite value."""
    result = body.get("data", {}).get("result", [])
    return any(math.isfinite(float(item["value"][1])) for item in result)


async def instant(client: httpx.AsyncClient, prometheus: str, query: str) -> dict[str, Any]:
    """`/api/v1/query`, which must accept the query (a refused query is a bug right away)."""
    r = await client.get(f"{prometheus}/api/v1/query", params={"query": query})
    body: dict[str, Any] = r.json()
    assert r.status_code == 200 and body["status"] == "success", f"{query}: {r.text}"
    return body


async def _shop(http: httpx.AsyncClient, rng: random.Random, customers: list[str]) -> None:
    offers = sorted(load_catalog().offers)
    stores = ["s-1", "s-2", "s-3"]
    batch = []
    for cid in rng.sample(customers, 8):  # about 30 events/s: later tests' workers replay them
        shown = rng.sample(offers, 3)
        where = {"store_id": rng.choice(stores), "channel": "app"}
        for slot, offer in enumerate(shown):
            batch.append(_event(cid, offer, "impression", slot=slot, **where))
        if rng.random() < 0.5:
            batch.append(_event(cid, rng.choice(shown), "purchase", **where))
    r = await http.post("/v1/events", content=orjson.dumps(batch))
    assert r.status_code == 202, r.text
    weather = rng.choice(["sunny", "cloudy", "rain"])
    r = await http.post(
        f"/v1/stores/{rng.choice(stores)}/context",
        json={"weather": weather, "temperature_c": rng.uniform(5, 30), "queue_length": 2},
    )
    assert r.status_code == 202, r.text


def _event(customer_id: str, offer_id: str, type_: str, **extra: Any) -> dict[str, Any]:
    return {
        "event_id": "e-" + uuid.uuid4().hex,
        "type": type_,
        "customer_id": customer_id,
        "offer_id": offer_id,
        "ts": datetime.now(UTC).isoformat(),
        **extra,
    }


async def _dead_letters(kafka: str, count: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=kafka)
    await producer.start()
    try:
        for _ in range(count):
            raw = f"not json {uuid.uuid4().hex}".encode()
            await producer.send_and_wait(INTERACTIONS, raw, key=b"c-ops-broken")
    finally:
        await producer.stop()


@contextlib.asynccontextmanager
async def traffic(pipeline: Pipeline, every_s: float = 0.5) -> AsyncIterator[Callable[[], None]]:
    """Shoppers every `every_s` until the block ends; a forget-me and dead letters at once,
    and more dead letters now and then (so the charts of them change too). Yields a check
    that raises the traffic's own failure, for loops that wait on what it causes."""
    rng = random.Random(11)
    customers = [f"c-ops-{i:03d}" for i in range(120)]
    stop = asyncio.Event()

    async def run() -> None:
        async with httpx.AsyncClient(base_url=pipeline.api, timeout=10) as http:
            r = await http.delete("/v1/customers/c-ops-forgotten")
            assert r.status_code == 202, r.text
            await _dead_letters(pipeline.settings.kafka, 3)
            rounds = 0
            while not stop.is_set():
                await _shop(http, rng, customers)
                rounds += 1
                if rounds % 20 == 0:
                    await _dead_letters(pipeline.settings.kafka, 1)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), every_s)

    task = asyncio.create_task(run())

    def check() -> None:
        if task.done():
            task.result()  # a failure of the traffic itself shows as that failure

    try:
        yield check
        check()
    finally:
        stop.set()
        await task
