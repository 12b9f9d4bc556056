"""Speed of the pure core (no Kafka, no Redis): learning an answer and deciding, per event.

Prints the engine's figures beside a simple recommender measured in the same run (a
popularity count, the floor any engine's per-event cost is compared with).

    .venv/bin/python -m benchmarks.core_speed [--events 20000] [--customers 2000] [--purchases]

`--purchases`: every yes is a purchase, a choice among the menu (as a till reports it),
so `Together` learns it and each decision reads it too.
"""

from __future__ import annotations

import argparse
import random
import time

from config.catalog import load_catalog
from models.context import Context
from models.customer import CustomerModel
from models.learner import Learner
from models.trending import Trending, scopes_for


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--customers", type=int, default=2_000)
    parser.add_argument("--purchases", action="store_true", help="yeses are choices")
    args = parser.parse_args()
    catalog = load_catalog()
    offers = list(catalog.offers.values())
    rng = random.Random(1)
    stream = [
        (
            f"c-{rng.randrange(args.customers)}",
            rng.choice(offers),
            Context(
                rng.choice(["lunch", "dinner"]), temperature_c=rng.uniform(0, 35), store_id="s-1"
            ),
            rng.random() < 0.3,
        )
        for _ in range(args.events)
    ]

    learner, trending = Learner(catalog), Trending(3600)
    customers: dict[str, CustomerModel] = {}
    started = time.perf_counter()
    for i, (cid, offer, ctx, yes) in enumerate(stream):
        model = customers.setdefault(cid, CustomerModel())
        if yes:
            learner.answer(model, offer, ctx, True, 1.0, float(i), trending, args.purchases)
            trending.add(offer.offer_id, 1.0, float(i), scopes_for("s-1", ctx.daypart, None))
        else:
            model.shown(offer.offer_id, float(i))
        learner.decide_for(cid, model, "s-1", ctx, trending, float(i), rng, "d")
    engine_s = time.perf_counter() - started

    counts: dict[str, int] = {}
    started = time.perf_counter()
    for _, offer, ctx, yes in stream:
        if yes:
            counts[offer.offer_id] = counts.get(offer.offer_id, 0) + 1
        available = catalog.available("s-1", ctx.daypart)
        sorted(available, key=lambda o: -counts.get(o.offer_id, 0))[:6]
    popularity_s = time.perf_counter() - started

    n = args.events
    print(f"{n} events, {args.customers} customers, {len(offers)} offers, one core")
    print(f"{'policy':<12} {'events/s':>10} {'us/event':>10}")
    print(f"{'engine':<12} {n / engine_s:>10.0f} {engine_s / n * 1e6:>10.1f}")
    print(f"{'popularity':<12} {n / popularity_s:>10.0f} {popularity_s / n * 1e6:>10.1f}")


if __name__ == "__main__":
    main()
