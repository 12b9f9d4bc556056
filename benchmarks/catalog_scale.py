"""Decision speed against catalog size: synthetic catalogs of 24, 1,000 and 20,000 offers.

Each catalog has categories, tags, dayparts and three stores (each leaving a few offers
out); a seeded stream of customers visits them: a decision, then a yes (learned by every
layer and by the store's trending) or impressions (no's once their window ends). Only
`decide_for` is timed for the decision figures; events/s counts the learning too. A
popularity ranker (numpy top-k of yes-counts over the same menu) is measured beside it.

    .venv/bin/python -m benchmarks.catalog_scale [--json] [--sizes 24,1000,20000]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from typing import Any

import numpy as np

from models.context import Context
from models.customer import CustomerModel
from models.learner import Learner
from models.offer import DAYPARTS, Catalog, Offer, Store
from models.trending import Trending, scopes_for

TAGS = ("hot", "cold", "quick", "vegan", "spicy", "sweet", "kids", "new", "local", "light")
WEATHER = (None, "sunny", "rain", "cloudy", "snow")
SECONDS_PER_EVENT = 0.01  # 100 events a second reach this worker's partitions


def synthetic_catalog(n: int, seed: int = 1) -> Catalog:
    """`n` offers in about n / 40 categories (at least 8), 1 to 3 tags each, sold in 2 to
    5 dayparts; three stores, each excluding about 2% of the offers."""
    rng = random.Random(seed)
    categories = [f"cat-{i}" for i in range(max(8, n // 40))]
    offers = [
        Offer(
            f"offer-{i:05d}",
            f"Offer {i}",
            rng.choice(categories),
            round(rng.uniform(1.0, 9.0), 2),
            rng.choice((20, 45, 90, 150, 240)),
            frozenset(rng.sample(DAYPARTS, rng.randint(2, 5))),
            frozenset(rng.sample(TAGS, rng.randint(1, 3))),
        )
        for i in range(n)
    ]
    ids = [o.offer_id for o in offers]
    stores = [
        Store(f"s-{s}", f"Store {s}", exclude=frozenset(rng.sample(ids, n // 50)))
        for s in range(1, 4)
    ]
    return Catalog.of(offers, stores)


def _stream(catalog: Catalog, n: int, customers: int, seed: int) -> list[tuple[str, Context]]:
    rng = random.Random(seed)
    return [
        (
            f"c-{rng.randrange(customers)}",
            Context(
                rng.choice(DAYPARTS),
                weather=rng.choice(WEATHER),
                temperature_c=float(rng.randrange(-5, 36)),
                queue_length=rng.randrange(8),
                store_id=f"s-{rng.randint(1, 3)}",
            ),
        )
        for _ in range(n)
    ]


def _figures(times: list[float], total_s: float) -> dict[str, float]:
    ms = np.array(times) * 1e3
    return {
        "decisions_per_s": round(len(times) / (ms.sum() / 1e3), 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p99_ms": round(float(np.percentile(ms, 99)), 3),
        "events_per_s": round(len(times) / total_s, 1),
    }


def engine_run(catalog: Catalog, n: int, customers: int, seed: int) -> dict[str, float]:
    """The engine as the worker runs it, one core; the first 10% of the stream warms up."""
    learner, rng = Learner(catalog), random.Random(seed)
    trending = {s: Trending(3600) for s in catalog.stores}
    models: dict[str, CustomerModel] = {}
    times: list[float] = []
    warm = n // 10
    started = 0.0
    for i, (cid, ctx) in enumerate(_stream(catalog, n + warm, customers, seed)):
        if i == warm:
            started = time.perf_counter()
        now, store = i * SECONDS_PER_EVENT, ctx.store_id or ""
        model = models.setdefault(cid, CustomerModel())
        learner.expire(model, ctx, now, trending[store])
        t0 = time.perf_counter()
        decision = learner.decide_for(cid, model, store, ctx, trending[store], now, rng, "d")
        if i >= warm:
            times.append(time.perf_counter() - t0)
        shown = [o.offer_id for o in decision.offers]
        for offer_id in shown:
            model.shown(offer_id, now)
        if shown and rng.random() < 0.3:
            offer = catalog.offers[rng.choice(shown)]
            learner.answer(model, offer, ctx, True, 1.0, now, trending[store])
            trending[store].add(offer.offer_id, 1.0, now, scopes_for(store, ctx.daypart, None))
    return _figures(times, time.perf_counter() - started)


def popularity_run(catalog: Catalog, n: int, customers: int, seed: int) -> dict[str, float]:
    """Yes-counts per offer, the top 6 of the store's menu by numpy's argpartition."""
    rng = random.Random(seed)
    index = {o: i for i, o in enumerate(catalog.offers)}
    counts = np.zeros(len(index))
    menus: dict[tuple[str, str], np.ndarray[Any, np.dtype[np.intp]]] = {}
    times: list[float] = []
    started = time.perf_counter()
    for cid, ctx in _stream(catalog, n, customers, seed):
        del cid
        t0 = time.perf_counter()
        key = (ctx.store_id or "", ctx.daypart)
        menu = menus.get(key)
        if menu is None:
            ids = catalog.available(ctx.store_id, ctx.daypart)
            menu = menus[key] = np.array([index[o.offer_id] for o in ids], dtype=np.intp)
        k = min(6, len(menu))
        top = menu[np.argpartition(-counts[menu], k - 1)[:k]]
        times.append(time.perf_counter() - t0)
        if rng.random() < 0.3:
            counts[rng.choice(top.tolist())] += 1
    return _figures(times, time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="24,1000,20000")
    parser.add_argument("--decisions", type=int, default=4000)
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = parser.parse_args(argv)
    rows: list[dict[str, Any]] = []
    for size in (int(s) for s in args.sizes.split(",")):
        print(f"catalog_scale | {size} offers ...", file=sys.stderr, flush=True)
        catalog = synthetic_catalog(size, args.seed)
        rows.append(
            {
                "offers": size,
                "engine": engine_run(catalog, args.decisions, args.customers, args.seed),
                "popularity": popularity_run(catalog, args.decisions, args.customers, args.seed),
            }
        )
    if args.json:
        print(json.dumps({"decisions": args.decisions, "cores": 1, "sizes": rows}))
        return 0
    print(f"{args.decisions} decisions per catalog, {args.customers} customers, one core")
    head = ("decisions/s", "p50 ms", "p99 ms", "events/s")
    print(f"{'offers':>7} {'policy':<11} {head[0]:>12} {head[1]:>8} {head[2]:>8} {head[3]:>9}")
    for row in rows:
        for policy in ("engine", "popularity"):
            f = row[policy]
            print(
                f"{row['offers']:>7} {policy:<11} {f['decisions_per_s']:>12.0f} "
                f"{f['p50_ms']:>8.3f} {f['p99_ms']:>8.3f} {f['events_per_s']:>9.0f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
