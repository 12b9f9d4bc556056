"""The learner: the layered brain that answers "how likely is a yes?" and decides.

    P(yes) = sigmoid( menu prior  +  crowd residual  +  customer residual )

The menu prior (`policy.prior`: base rate, trending in context, weather, daypart) needs no
data; the shared model learns from everyone how offers do in context; each customer's
model learns how they differ. Each layer starts at zero, so a new customer is decided for
by the crowd, and a new engine by the menu.

The learner holds only the shared model; customers' models and stores' trending belong
to the caller (Faust tables in the worker, dictionaries in a replay).

>>> import random
>>> from config.catalog import load_catalog
>>> from models.context import Context
>>> catalog = load_catalog()
>>> learner, noon = Learner(catalog), Context("lunch", temperature_c=18.0)
>>> me = CustomerModel()
>>> first = learner.decide_for("c-1", me, "s-1", noon, None, 0.0, random.Random(1), "d-1")
>>> last = catalog.offers[first.offers[-1].offer_id]
>>> for _ in range(6):
...     learner.answer(me, last, noon, True, now=0.0)
>>> again = learner.decide_for("c-1", me, "s-1", noon, None, 0.0, random.Random(1), "d-2")
>>> again.offers[0].offer_id == last.offer_id and "you_often_buy" in again.offers[0].reasons
True
"""

from __future__ import annotations

import math
import random
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

from models.context import Context
from models.customer import CustomerModel
from models.decision import ENGINE, Decision
from models.offer import Catalog, Offer
from models.policy import YOU_OFTEN_BUY, Estimate, PolicyConfig, RankedOffer, prior, rank
from models.residual import logit
from models.shared import SharedModel
from models.trending import Trending, scopes_for


@dataclass(frozen=True, slots=True)
class LearnerConfig:
    personal: bool = True  # False: the engine without 1-1 learning (a baseline)
    shared: bool = True  # False: the menu prior and trending only (the control policy)
    answer_window_s: float = 900.0  # an impression with no yes this long after is a no
    name: str = ENGINE  # recorded on every decision, for evaluation and lift
    policy: PolicyConfig = field(default_factory=PolicyConfig)


class Learner:
    def __init__(
        self, catalog: Catalog, cfg: LearnerConfig | None = None, shared: SharedModel | None = None
    ) -> None:
        self.catalog = catalog
        self.cfg = cfg or LearnerConfig()
        self.shared = shared or SharedModel()

    # --- estimating -----------------------------------------------------------------

    def _lifts(
        self, ctx: Context, trending: Trending | None, now: float, among: Sequence[str]
    ) -> dict[str, float]:
        """Trending lifts of the offers `among`, in the narrowest scope with support; once
        per decision, not once per offer."""
        if trending is None:
            return {}
        scope = trending.scope_for(scopes_for(ctx.store_id, ctx.daypart, ctx.weather), now)
        return trending.lifts(among, now, scope)

    def _prior(self, offer: Offer, ctx: Context, lifts: dict[str, float]) -> Estimate:
        return prior(offer, ctx, lifts.get(offer.offer_id, 1.0), self.cfg.policy)

    def _crowd_logit(self, offer: Offer, ctx: Context, menu: Estimate) -> float:
        offset = logit(menu.p_yes)
        if not self.cfg.shared:
            return offset
        return logit(self.shared.predict_one(offer, ctx, offset))

    def estimate(
        self,
        offer: Offer,
        ctx: Context,
        customer: CustomerModel | None = None,
        trending: Trending | None = None,
        now: float = 0.0,
        among: Sequence[str] = (),
    ) -> Estimate:
        """P(yes) for this offer in this context (for this customer), with reasons."""
        return self._estimate(offer, ctx, customer, self._lifts(ctx, trending, now, among))

    def _estimate(
        self,
        offer: Offer,
        ctx: Context,
        customer: CustomerModel | None,
        lifts: dict[str, float],
    ) -> Estimate:
        menu = self._prior(offer, ctx, lifts)
        crowd = self._crowd_logit(offer, ctx, menu)
        if customer is None or not self.cfg.personal:
            return Estimate(min(max(_sigmoid(crowd), 1e-4), 1 - 1e-4), menu.reasons)
        p = customer.predict_one(offer, ctx, crowd)
        reasons = menu.reasons
        if customer.affinity(offer) >= self.cfg.policy.affinity_reason_at:
            reasons = (YOU_OFTEN_BUY, *reasons)
        return Estimate(p, reasons)

    # --- learning -------------------------------------------------------------------

    def answer(
        self,
        customer: CustomerModel | None,
        offer: Offer,
        ctx: Context,
        yes: bool,
        strength: float = 1.0,
        now: float = 0.0,
        trending: Trending | None = None,
    ) -> None:
        """Learn one answer in every layer; a yes is a soft no to what was asked with it."""
        among = [o.offer_id for o in self.catalog.available(ctx.store_id, ctx.daypart)]
        lifts = self._lifts(ctx, trending, now, among)
        menu = self._prior(offer, ctx, lifts)
        if self.cfg.shared:
            self.shared.learn(offer, ctx, logit(menu.p_yes), yes, strength)
        if customer is None:
            return
        if not self.cfg.personal:
            customer.close(offer.offer_id, yes, customer.alternatives(offer.offer_id))
            return
        alternatives = []
        if yes:
            for offer_id in customer.alternatives(offer.offer_id):
                alt = self.catalog.offers.get(offer_id)
                if alt is not None:
                    alt_menu = self._prior(alt, ctx, lifts)
                    alternatives.append((alt, self._crowd_logit(alt, ctx, alt_menu)))
        customer.learn(offer, ctx, self._crowd_logit(offer, ctx, menu), yes, strength, alternatives)

    def expire(
        self,
        customer: CustomerModel,
        ctx: Context,
        now: float,
        trending: Trending | None = None,
    ) -> list[str]:
        """Offers shown to the customer with no yes within the answer window are no's."""
        gone = customer.expired(now, self.cfg.answer_window_s)
        for offer_id in gone:
            offer = self.catalog.offers.get(offer_id)
            if offer is not None:
                self.answer(customer, offer, ctx, False, now=now, trending=trending)
        return gone

    # --- deciding -------------------------------------------------------------------

    def _rank(
        self,
        store_id: str | None,
        ctx: Context,
        customer: CustomerModel | None,
        trending: Trending | None,
        now: float,
        rng: random.Random,
        stock_out: Collection[str],
    ) -> list[RankedOffer]:
        cap, period = self.cfg.policy.frequency_cap, self.cfg.policy.frequency_cap_period_s
        candidates = [
            o
            for o in self.catalog.available(store_id, ctx.daypart)
            if o.offer_id not in stock_out
            and (customer is None or customer.times_unanswered(o.offer_id, now, period) < cap)
        ]
        lifts = self._lifts(ctx, trending, now, [o.offer_id for o in candidates])
        return rank(
            candidates,
            ctx,
            rng,
            self.cfg.policy,
            lambda offer: self._estimate(offer, ctx, customer, lifts),
        )

    def board(
        self,
        store_id: str,
        ctx: Context,
        trending: Trending | None,
        now: float,
        rng: random.Random,
        decision_id: str,
        stock_out: Collection[str] = (),
    ) -> Decision:
        """What a store's screens show everyone now: the crowd in context, no one's taste."""
        offers = self._rank(store_id, ctx, None, trending, now, rng, stock_out)
        return Decision(
            decision_id, "board", store_id, store_id, ctx, tuple(offers), now, policy=self.cfg.name
        )

    def decide_for(
        self,
        customer_id: str,
        customer: CustomerModel,
        store_id: str | None,
        ctx: Context,
        trending: Trending | None,
        now: float,
        rng: random.Random,
        decision_id: str,
        stock_out: Collection[str] = (),
    ) -> Decision:
        """The customer's next best offers; remembered in their model as the open question."""
        offers = self._rank(store_id, ctx, customer, trending, now, rng, stock_out)
        customer.ask([o.offer_id for o in offers])
        return Decision(
            decision_id,
            "customer",
            customer_id,
            store_id,
            ctx,
            tuple(offers),
            now,
            customer.answers,
            self.cfg.name,
        )


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))
