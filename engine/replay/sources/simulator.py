"""`simulator`: engine/sim/world.py's customers, whose true P(yes) is known; each policy
shows offers, the world answers; reward per visit and the share of an oracle's reward.
Also writes an interactions CSV from the simulator, to replay as `interactions`.
"""

from __future__ import annotations

import csv
import math
import random
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engine.replay.actors import Actor, EngineActor, OracleActor, RankingActor
from engine.replay.baselines import LearnerPolicy
from engine.replay.loop import DEFAULT_SEED, ReplayError, bar, make_policies, num
from engine.replay.sources.interactions import INTERACTION_COLUMNS
from engine.sim.world import World
from models.policy import PolicyConfig

WARM_UP_SHARE = 0.2  # simulator: the first 20% of visits are not scored
SIM_VISITS = 20_000
SIM_CUSTOMERS = 500
SIM_VISIT_EVERY_S = 3.0  # as the demo: 20 visits/s at 60x simulated time
SIM_START = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)  # a Monday, breakfast


@dataclass(slots=True)
class _Takings:
    rewards: list[float] = field(default_factory=list)
    purchases: int = 0


def replay_simulator(
    catalog_path: Path | None = None,
    *,
    limit: int | None = None,
    seed: int = DEFAULT_SEED,
    progress: bool = False,
) -> dict[str, Any]:
    """Every policy meets the same visits (customers, stores, weather, queues); each shows
    its offers and the world answers, with a generator seeded per visit, so the policies
    are compared on common random numbers and none disturbs another's answers."""
    from config.catalog import CatalogError, load_catalog

    try:
        catalog = load_catalog(catalog_path)
    except CatalogError as exc:
        raise ReplayError(str(exc)) from None
    visits = SIM_VISITS if limit is None else limit
    world = World(catalog, start=SIM_START, seed=seed, customers=SIM_CUSTOMERS)
    cfg = PolicyConfig()
    policies = make_policies(catalog, seed, cfg)
    actors: dict[str, Actor] = {}
    for name, policy in policies.items():
        if isinstance(policy, LearnerPolicy):
            actors[name] = EngineActor(policy, seed, name)
        else:
            actors[name] = RankingActor(policy, catalog, PolicyConfig())
    actors["oracle"] = OracleActor(world, PolicyConfig())
    takings = {name: _Takings() for name in actors}
    warm_up = int(visits * WARM_UP_SHARE)
    for i in bar(range(visits), visits, "simulator", progress):
        world.advance_sim(SIM_VISIT_EVERY_S)
        visit = world.next_visit()
        ctx = replace(visit.context, store_id=visit.store_id)
        now = world.clock.ts
        for name, actor in actors.items():
            if isinstance(actor, EngineActor):
                actor.scoring = i >= warm_up
            shown = actor.show(visit, ctx, now)
            bought = world.choose(visit.customer, shown, ctx, random.Random(visit.answer_seed))
            actor.learn(visit, ctx, shown, bought, now)
            if i >= warm_up:
                t = takings[name]
                t.rewards.append(catalog.offers[bought].price if bought else 0.0)
                t.purchases += bought is not None
    oracle = takings.pop("oracle")
    oracle_mean = math.fsum(oracle.rewards) / len(oracle.rewards) if oracle.rewards else 0.0
    results: dict[str, dict[str, Any]] = {}
    for name, t in takings.items():
        scored = len(t.rewards)
        mean = math.fsum(t.rewards) / scored if scored else math.nan
        results[name] = {
            "reward_per_event": num(mean),
            "purchase_rate": num(t.purchases / scored) if scored else None,
            "oracle_share": num(mean / oracle_mean) if oracle_mean > 0 else None,
        }
        actor = actors[name]
        if isinstance(actor, EngineActor):  # P(yes) of each shown offer against the sale
            results[name].update(actor.answers.figures())
    return {
        "source": "simulator",
        "events": visits,
        "policies": results,
        "reference": {
            "oracle": {
                "reward_per_event": num(oracle_mean),
                "purchase_rate": num(oracle.purchases / len(oracle.rewards))
                if oracle.rewards
                else None,
            },
            "warm_up_visits": warm_up,
            "customers": SIM_CUSTOMERS,
            "sim_hours": round(visits * SIM_VISIT_EVERY_S / 3600.0, 1),
        },
    }


def write_simulated_interactions(path: Path, visits: int, seed: int = DEFAULT_SEED) -> int:
    """An interactions CSV from the simulator under a uniformly random logging policy (each
    visit shows `slots` random offers the store sells now; the purchase is reward 1, every
    other shown offer 0), to replay with `tailor replay interactions`. Returns its rows."""
    from config.catalog import load_catalog

    catalog = load_catalog()
    world = World(catalog, start=SIM_START, seed=seed, customers=SIM_CUSTOMERS)
    rng = random.Random(f"{seed}:interactions-log")
    rows = 0
    with path.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(
            [
                *INTERACTION_COLUMNS,
                "store_id",
                "channel",
                "weather",
                "temperature_c",
                "queue_length",
            ]
        )
        for _ in range(visits):
            world.advance_sim(SIM_VISIT_EVERY_S)
            visit = world.next_visit()
            ctx = visit.context
            offers = catalog.available(visit.store_id, ctx.daypart)
            shown = [o.offer_id for o in rng.sample(offers, min(visit.slots, len(offers)))]
            bought = world.choose(visit.customer, shown, ctx, random.Random(visit.answer_seed))
            stamp = visit.ts.strftime("%Y-%m-%dT%H:%M:%SZ")
            for offer_id in shown:
                out.writerow(
                    [
                        visit.customer.customer_id,
                        offer_id,
                        stamp,
                        int(offer_id == bought),
                        visit.store_id,
                        visit.channel,
                        ctx.weather,
                        ctx.temperature_c,
                        ctx.queue_length,
                    ]
                )
                rows += 1
    return rows
