"""Policies acting in the simulated world (engine/sim/world.py): what each shows a visit,
and what it learns from the answer. The engine acts as the worker does; the baselines and
the oracle (which knows every customer's true P(yes)) keep the same business rules.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Protocol

from engine.replay.baselines import LearnerPolicy, Policy
from engine.replay.tasks import Answers
from engine.sim.world import Visit, World
from models.context import Context
from models.customer import CustomerModel
from models.offer import Catalog, Offer
from models.policy import PolicyConfig


class Actor(Protocol):
    """A policy acting in the simulated world: what it shows, and what it learns."""

    def show(self, visit: Visit, ctx: Context, now: float) -> list[str]: ...

    def learn(
        self, visit: Visit, ctx: Context, shown: Sequence[str], bought: Sequence[str], now: float
    ) -> None: ...


class EngineActor:
    """The worker's loop without Kafka: decide_for, impressions, each purchase as a yes (a
    no to the others shown), impressions with no yes as no's when their window ends."""

    def __init__(self, policy: LearnerPolicy, seed: int, name: str) -> None:
        self.policy = policy
        self.rng = random.Random(f"{seed}:{name}")
        self.answers = Answers()  # each shown offer's P(yes) beside whether it was bought
        self.scoring = False  # past the warm-up: answers are recorded
        self._p_shown: dict[str, float] = {}

    def show(self, visit: Visit, ctx: Context, now: float) -> list[str]:
        cid = visit.customer.customer_id
        model = self.policy.customer(cid)
        decision = self.policy.learner.decide_for(
            cid,
            model,
            visit.store_id,
            ctx,
            self.policy.trending_for(visit.store_id),
            now,
            self.rng,
            f"d-{visit.seq}",
        )
        shown = [o.offer_id for o in decision.offers][: visit.slots]
        self._p_shown = {o.offer_id: o.p_yes for o in decision.offers[: visit.slots]}
        for offer_id in shown:
            model.shown(offer_id, now, ctx)
        return shown

    def learn(
        self, visit: Visit, ctx: Context, shown: Sequence[str], bought: Sequence[str], now: float
    ) -> None:
        learner = self.policy.learner
        cid = visit.customer.customer_id
        model = self.policy.customer(cid)
        if self.scoring:
            for offer_id, p in self._p_shown.items():
                self.answers.add(offer_id in bought, p)
        for offer_id in bought:
            self.policy.learn(cid, learner.catalog.offers[offer_id], ctx, 1.0, now)
        window = learner.cfg.answer_window_s
        learner.expire(
            model,
            ctx,
            now + window + 1.0,
            self.policy.trending_for(visit.store_id),
        )


def pick_within_rules(
    ranked: Sequence[Offer],
    cap: CustomerModel,
    cfg: PolicyConfig,
    now: float,
    slots: int,
) -> list[str]:
    """The first `slots` of `ranked` that the business rules allow (the frequency cap, at
    most `max_per_category` per category), recorded as shown. The oracle and every
    baseline keep the rules the engine keeps, so their rewards compare."""
    shown: list[str] = []
    per_category: dict[str, int] = {}
    for offer in ranked:
        if len(shown) == slots:
            break
        if (
            cap.times_unanswered(offer.offer_id, now, cfg.frequency_cap_period_s)
            >= cfg.frequency_cap
        ):
            continue
        if per_category.get(offer.category, 0) < cfg.max_per_category:
            shown.append(offer.offer_id)
            per_category[offer.category] = per_category.get(offer.category, 0) + 1
    for offer_id in shown:
        cap.shown(offer_id, now)
    return shown


class RankingActor:
    """A baseline shows its top offers among those the store sells now (within the rules),
    and learns each shown offer as a yes (bought) or a no."""

    def __init__(self, policy: Policy, catalog: Catalog, cfg: PolicyConfig) -> None:
        self.policy = policy
        self.catalog = catalog
        self.cfg = cfg
        self.caps: dict[str, CustomerModel] = {}  # only its frequency-cap bookkeeping

    def show(self, visit: Visit, ctx: Context, now: float) -> list[str]:
        offers = self.catalog.available(visit.store_id, ctx.daypart)
        scores = self.policy.scores(visit.customer.customer_id, offers, ctx, now)
        order = sorted(range(len(offers)), key=lambda i: -scores[i])  # stable on ties
        cap = self.caps.setdefault(visit.customer.customer_id, CustomerModel())
        return pick_within_rules([offers[i] for i in order], cap, self.cfg, now, visit.slots)

    def learn(
        self, visit: Visit, ctx: Context, shown: Sequence[str], bought: Sequence[str], now: float
    ) -> None:
        for offer_id in shown:
            reward = 1.0 if offer_id in bought else 0.0
            self.policy.learn(
                visit.customer.customer_id, self.catalog.offers[offer_id], ctx, reward, now
            )
        for offer_id in bought:
            self.caps[visit.customer.customer_id].close(offer_id, True, shown)


class OracleActor:
    """Knows every customer's true P(yes): shows the top offers by P(yes) x price within the
    rules, so its reward is the best any rule-abiding policy could earn here."""

    def __init__(self, world: World, cfg: PolicyConfig) -> None:
        self.world = world
        self.cfg = cfg
        self.caps: dict[str, CustomerModel] = {}  # only its frequency-cap bookkeeping

    def show(self, visit: Visit, ctx: Context, now: float) -> list[str]:
        offers = list(self.world.catalog.available(visit.store_id, ctx.daypart))
        offers.sort(key=lambda o: -self.world.p_yes(visit.customer, o.offer_id, ctx) * o.price)
        cap = self.caps.setdefault(visit.customer.customer_id, CustomerModel())
        return pick_within_rules(offers, cap, self.cfg, now, visit.slots)

    def learn(
        self, visit: Visit, ctx: Context, shown: Sequence[str], bought: Sequence[str], now: float
    ) -> None:
        for offer_id in bought:
            self.caps[visit.customer.customer_id].close(offer_id, True, shown)
