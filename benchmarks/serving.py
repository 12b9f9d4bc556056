"""Serving latency: the API's offers lookup beside a raw Redis GET of the same key.

Starts a private Redis (and Kafka, which the API needs for writes) through the launcher,
writes decisions for many customers, starts `tailor api`, then times sequential lookups
(latency) and concurrent ones (throughput), each beside raw Redis measured in the same run.

    .venv/bin/python -m benchmarks.serving [--requests 5000] [--customers 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import redis.asyncio as aioredis

from config.catalog import load_catalog
from config.settings import Settings
from engine.dev.processes import free_ports, start_role, stop, wait_http
from engine.dev.stack import Stack
from engine.wire.serving import Serving, offers_key


def percentiles(samples: list[float]) -> tuple[float, float, float]:
    """p50, p95, p99 in milliseconds."""
    q = statistics.quantiles(samples, n=100)
    return q[49] * 1000, q[94] * 1000, q[98] * 1000


async def timed(calls: int, one: Callable[[int], Awaitable[object]]) -> list[float]:
    samples = []
    for i in range(calls):
        started = time.perf_counter()
        await one(i)
        samples.append(time.perf_counter() - started)
    return samples


async def rate(calls: int, concurrency: int, one: Callable[[int], Awaitable[object]]) -> float:
    async def worker(offset: int) -> None:
        for i in range(offset, calls, concurrency):
            await one(i)

    started = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    return calls / (time.perf_counter() - started)


async def measure(settings: Settings, requests: int, customers: int, concurrency: int) -> None:
    catalog = load_catalog()
    serving = Serving.from_url(settings.redis, 3600, 3600)
    offers = list(catalog.offers)
    rng = random.Random(1)
    for start in range(0, customers, 500):
        decisions = {
            f"c-{i}": {
                "decision_id": f"d-{i}",
                "customer_id": f"c-{i}",
                "offers": [
                    {"offer_id": o, "score": rng.random(), "reasons": ["you_often_buy"]}
                    for o in rng.sample(offers, 6)
                ],
            }
            for i in range(start, min(start + 500, customers))
        }
        await serving.write(offers=decisions)
    await serving.close()
    ids = [f"c-{rng.randrange(customers)}" for _ in range(requests)]

    raw = aioredis.from_url(settings.redis)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.api_port}") as http:

        async def api_get(i: int) -> object:
            r = await http.get(f"/v1/customers/{ids[i]}/offers")
            assert r.status_code == 200 and r.json()["source"] == "customer"
            return r

        async def redis_get(i: int) -> object:
            return await raw.get(offers_key(ids[i]))

        for one in (api_get, redis_get):  # warm both paths
            await timed(200, one)
        api_lat = percentiles(await timed(requests, api_get))
        redis_lat = percentiles(await timed(requests, redis_get))
        api_rate = await rate(requests, concurrency, api_get)
        redis_rate = await rate(requests, concurrency, redis_get)
    await raw.aclose()

    print(f"{requests} lookups over {customers} customers; one client on the same 2-core machine")
    print(f"{'path':<28} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {f'req/s @{concurrency}':>12}")
    for name, (p50, p95, p99), per_s in (
        ("API GET customer offers", api_lat, api_rate),
        ("raw Redis GET (baseline)", redis_lat, redis_rate),
    ):
        print(f"{name:<28} {p50:>8.3f} {p95:>8.3f} {p99:>8.3f} {per_s:>12.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    kafka, controller, redis_port, api_port = free_ports(4)
    with tempfile.TemporaryDirectory() as state:
        settings = Settings(
            kafka_port=kafka,
            kafka_controller_port=controller,
            redis_port=redis_port,
            api_port=api_port,
            state_dir=Path(state),
            kafka_libs=Path(__file__).resolve().parents[1] / ".cache/kafka/libs",
        )
        stack = Stack(settings)
        stack.up()
        served = settings.model_copy(
            update={"kafka_bootstrap": settings.kafka, "redis_url": settings.redis}
        )
        api = start_role("api", served, Path(state) / "api.log")
        try:
            wait_http(f"http://127.0.0.1:{api_port}/healthz", api, Path(state) / "api.log")
            asyncio.run(measure(served, args.requests, args.customers, args.concurrency))
        finally:
            stop(api)
            stack.down()


if __name__ == "__main__":
    main()
