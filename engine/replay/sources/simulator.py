"""`simulator`: engine/sim/world.py's customers, whose true P(yes) is known; each policy
shows offers, the world answers; reward per visit and the share of an oracle's reward.
Also writes an interactions CSV from the simulator, to replay as `interactions`.
"""

from __future__ import annotations

import csv
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from engine.replay.actors import Actor, EngineActor, OracleActor, RankingActor
from engine.replay.baselines import LearnerPolicy
from engine.replay.loop import DEFAULT_SEED, ReplayError, bar, make_policies, num
from engine.replay.sources.interactions import INTERACTION_COLUMNS
from engine.sim.world import World
from models.context import Context
from models.learner import Learner, LearnerConfig
from models.offer import Offer
from models.policy import PolicyConfig

WARM_UP_SHARE = 0.2  # simulator: the first 20% of visits are not scored
SIM_VISITS = 20_000
SIM_CUSTOMERS = 500
# A visit every 2 simulated minutes: 20,000 visits of 500 customers span four weeks, about
# 1.4 visits per customer a day, as regulars come. (At the demo's pace, 3 s, each would come
# 40 times in 17 hours, and the frequency cap, not taste, would decide what everyone sees.)
SIM_VISIT_EVERY_S = 120.0
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
            bought = world.buys(visit, shown)
            actor.learn(visit, ctx, shown, bought, now)
            if i >= warm_up:
                t = takings[name]
                t.rewards.append(math.fsum(catalog.offers[o].price for o in bought))
                t.purchases += bool(bought)
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
    visit shows `slots` random offers the store sells now; each purchase is reward 1, every
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
            bought = world.buys(visit, shown)
            stamp = visit.ts.strftime("%Y-%m-%dT%H:%M:%SZ")
            for offer_id in shown:
                out.writerow(
                    [
                        visit.customer.customer_id,
                        offer_id,
                        stamp,
                        int(offer_id in bought),
                        visit.store_id,
                        visit.channel,
                        ctx.weather,
                        ctx.temperature_c,
                        ctx.queue_length,
                    ]
                )
                rows += 1
    return rows


class WorldPolicy:
    """A known policy for checking off-policy estimates: ranks by the world's true
    P(yes) x price (what the oracle knows); learns nothing, so its value is fixed."""

    def __init__(self, world: World) -> None:
        self.world = world

    def scores(
        self, customer_id: str | None, offers: Sequence[Offer], ctx: Context, now: float
    ) -> list[float]:
        who = self.world.by_id[customer_id or ""]
        return [self.world.p_yes(who, o.offer_id, ctx) * o.price for o in offers]

    def p_yes(self, customer_id: str | None, offer: Offer, ctx: Context, now: float) -> float:
        return self.world.p_yes(self.world.by_id[customer_id or ""], offer.offer_id, ctx)

    def learn(
        self, customer_id: str | None, offer: Offer, ctx: Context, reward: float, now: float
    ) -> None:
        return None


def write_simulated_decisions(
    path: Path, visits: int, seed: int = DEFAULT_SEED, explore: float = 0.3
) -> tuple[World, dict[str, float]]:
    """A served-decisions log (`tailor replay decisions`' shape) from the simulator: the
    engine, exploring at `explore`, serves one offer per visit (frequency cap off, so every
    offer of the menu can be served) and learns the answers as the worker does. Returns the
    world (for `WorldPolicy`) and the true value per visit of known policies on the same
    visits, exact from the world's P(yes): "known" (`WorldPolicy`, epsilon-greedy at the
    replay's rate) and "uniform" (any offer of the menu)."""
    from config.catalog import load_catalog

    catalog = load_catalog()
    world = World(catalog, start=SIM_START, seed=seed, customers=SIM_CUSTOMERS)
    cfg = PolicyConfig(k=1, explore_rate=explore, frequency_cap=10**9)
    logger = EngineActor(LearnerPolicy(Learner(catalog, LearnerConfig(policy=cfg))), seed, "log")
    epsilon = PolicyConfig().explore_rate
    truth = {"known": 0.0, "uniform": 0.0}
    with path.open("wb") as f:
        for _ in range(visits):
            world.advance_sim(SIM_VISIT_EVERY_S)
            visit = replace(world.next_visit(), slots=1)
            ctx = replace(visit.context, store_id=visit.store_id)
            now = world.clock.ts
            decision = logger.policy.learner.decide_for(
                visit.customer.customer_id, logger.policy.customer(visit.customer.customer_id),
                visit.store_id, ctx, logger.policy.trending_for(visit.store_id), now,
                logger.rng, f"d-{visit.seq}",
            )  # fmt: skip
            shown = [decision.offers[0].offer_id]
            logger.policy.customer(visit.customer.customer_id).shown(shown[0], now, ctx)
            bought = world.buys(visit, shown)
            logger.learn(visit, ctx, shown, bought, now)
            f.write(orjson.dumps({**decision.as_json(catalog), "offers": [
                {"offer_id": shown[0], "propensity": decision.offers[0].propensity}
            ]}) + b"\n")  # fmt: skip
            for offer_id in bought:  # one shown offer: bought or not, with P(yes) exactly
                answer = {"decision_id": decision.decision_id, "offer_id": offer_id}
                f.write(orjson.dumps({**answer, "reward": catalog.offers[offer_id].price}) + b"\n")
            menu = catalog.available(visit.store_id, ctx.daypart)
            value = [world.p_yes(visit.customer, o.offer_id, ctx) * o.price for o in menu]
            top = [v for v in value if v == max(value)]
            uniform = sum(value) / len(value)
            truth["known"] += (1 - epsilon) * sum(top) / len(top) + epsilon * uniform
            truth["uniform"] += uniform
    return world, {name: total / visits for name, total in truth.items()}
