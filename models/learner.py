"""The learner: the layered brain that answers "how likely is a yes?" and decides.

    P(yes) = sigmoid( menu prior  +  crowd residual  +  customer residual )
    score  = sigmoid( menu prior  +  crowd residual  +  together  +  customer residual ) x value

The menu prior (`policy.prior`: base rate, trending in context, weather, daypart) needs no
data; the shared model learns from everyone how offers do in context; `Together` (kept
with it) what everyone chooses and what goes with what a customer chose lately; each
customer's model learns how they differ. Each layer starts at zero, so a new customer is
decided for by the crowd, and a new engine by the menu.

The learner holds only the shared model; customers' models and stores' trending belong
to the caller (Faust tables in the worker, dictionaries in a replay).

A decision scores its menu as vectors (`models.layers`): the prior, the crowd and the
customer's residual are each a few numpy operations over the menu, and a large menu
(over `CANDIDATES_ABOVE` offers) is first cut to candidates (`models.candidates`), so a
decision costs about the same for 24 offers as for 20,000. `estimate` is the same
arithmetic for one offer, on dicts: the reference the vectors are tested against.

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

import random
from collections.abc import Collection, Sequence
from dataclasses import replace

import numpy as np

from models.candidates import CANDIDATES_ABOVE, candidates
from models.context import Context
from models.customer import ALTERNATIVE_WEIGHT, CustomerModel
from models.decision import Decision
from models.layers import Layers, LearnerConfig
from models.offer import Offer
from models.policy import (
    YOU_OFTEN_BUY,
    Estimate,
    RankedOffer,
    prior,
)
from models.residual import logit, sigmoid
from models.shared import Lesson, choice_scope
from models.shelf import pick
from models.trending import Trending, scopes_for

__all__ = ["PASSED_OVER", "Learner", "LearnerConfig"]

PASSED_OVER = 6  # a till purchase is a weak no to this many of the best other offers


class Learner(Layers):
    def take_lessons(self) -> list[Lesson]:
        """The crowd's lessons since the last call (see `LearnerConfig.crowd_learns_here`)."""
        taken, self.lessons = self.lessons, []
        return taken

    # --- estimating -----------------------------------------------------------------

    def _lifts(
        self, ctx: Context, trending: Trending | None, now: float, among: Sequence[str]
    ) -> dict[str, float]:
        """Trending lifts of the offers `among`, in the narrowest scope with support; the
        last answer is kept, so estimating each offer of a menu in turn costs one pass."""
        if trending is None:
            return {}
        tau = self.shared.together.trend_weight
        key = (trending.token, trending.version, ctx.store_id, ctx.daypart, ctx.weather, now, tau)
        if self._last_lifts[0] == (key, tuple(among)):
            return self._last_lifts[1]
        scope = trending.scope_for(scopes_for(ctx.store_id, ctx.daypart, ctx.weather), now)
        lifts = {o: v**tau for o, v in trending.lifts(among, now, scope).items()}
        self._last_lifts = ((key, tuple(among)), lifts)
        return lifts

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
        menu = self._prior(offer, ctx, self._lifts(ctx, trending, now, among))
        if customer is None or not self.cfg.personal:
            crowd = self._crowd_logit(offer, ctx, menu)
            return Estimate(min(max(sigmoid(crowd), 1e-4), 1 - 1e-4), menu.reasons)
        p = customer.predict_one(offer, ctx, self._crowd_logit(offer, ctx, menu))
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
        choice: bool = False,
    ) -> None:
        """Learn one answer in every layer. What was shown with a yes stays open: a visit
        may buy several, and each left is a full no, in every layer, when the window
        closes (so P(yes) stays calibrated); with nothing else shown, a soft no (the
        customer's only) to the latest decision, or for a `choice` (a purchase, as from
        a till) to what the engine would offer now."""
        personal = customer is not None and self.cfg.personal
        passed: list[str] = []
        later_step = False
        if yes and customer is not None:
            fresh = customer.funnel(offer.offer_id, strength, now, self.cfg.answer_window_s)
            if fresh <= 0.0:  # a weaker later step of a funnel already learned
                return
            later_step, strength = fresh < strength, fresh
        if yes and customer is not None and personal and not later_step:
            open_ = customer.pending  # shown with it: each a full no when the window closes
            if choice:  # what it passed over, but for what the window will answer for
                passed = [
                    o
                    for o in self._passed_over(customer, offer, ctx, trending, now)
                    if o not in open_
                ]
            elif not any(o != offer.offer_id for o in open_):
                passed = customer.alternatives(offer.offer_id)
        lifts = self._menu_lifts(ctx, trending, now, [offer.offer_id, *passed])
        menu = self._prior(offer, ctx, lifts)
        basket, gradient = None, (0.0, 0.0)
        if choice:  # what everyone chooses (if not always likes), with what was chosen before
            basket = tuple(customer.recent) if customer is not None else ()
            gradient = self._gradient(offer, ctx, customer, trending, now)

        def where(offer_id: str) -> Context:  # the crowd learns the slot it was shown in
            slot = customer.slots.get(offer_id) if customer is not None else None
            return ctx if slot is None else replace(ctx, slot=slot)

        offset = logit(menu.p_yes)
        lesson = Lesson(
            offer.offer_id, where(offer.offer_id), offset, yes, strength, basket, gradient
        )
        if self.cfg.shared and self.cfg.crowd_learns_here:
            self.shared.learn_lesson(offer, lesson)
        elif self.cfg.shared:
            self.lessons.append(lesson)
        if customer is None:
            return
        if basket is not None and yes:
            customer.chose(offer.offer_id)
        if not personal:
            customer.close(offer.offer_id, yes)
            return
        alternatives = [
            (alt, self._crowd_logit(alt, ctx, self._prior(alt, ctx, lifts)))
            for alt in (self.catalog.offers.get(o) for o in passed)
            if alt is not None
        ]
        offset = self._crowd_logit(offer, ctx, menu)
        customer.learn(offer, ctx, offset, yes, strength, alternatives, ALTERNATIVE_WEIGHT)

    def _gradient(
        self,
        offer: Offer,
        ctx: Context,
        who: CustomerModel | None,
        trending: Trending | None,
        now: float,
    ) -> tuple[float, float]:
        """How this choice moves `Together`'s weights (`Together.gradient`)."""
        menu, _ = self._menu(ctx.store_id, ctx.daypart)
        chosen = menu.position.get(offer.offer_id)
        if chosen is None or not self.cfg.shared:
            return 0.0, 0.0
        lift = self._lift(menu, np.arange(len(menu)), ctx, trending, now, (), power=False)
        basket = who.recent if who is not None and self.cfg.personal else ()
        log_lift = None if lift is None else np.log(lift)
        return self.shared.together.gradient(
            chosen, self._ids(menu), choice_scope(ctx), basket, log_lift
        )

    def _passed_over(
        self, who: CustomerModel, offer: Offer, ctx: Context, trending: Trending | None, now: float
    ) -> list[str]:
        """What a choice passed over: the customer's best `PASSED_OVER` other offers of
        the menu by score, so a till feed teaches as surely as a screen does."""
        menu, rows = self._menu(ctx.store_id, ctx.daypart)
        keep = np.ones(len(menu), dtype=bool)
        if len(menu) > CANDIDATES_ABOVE:
            pool = self._pool(ctx.store_id, menu, rows, ctx, trending, now)
            keep = candidates(menu, pool, who)
        if (bought := menu.position.get(offer.offer_id)) is not None:
            keep[bought] = False
        at = np.flatnonzero(keep)
        lift = self._lift(menu, at, ctx, trending, now, ())
        score = self._scores(menu, rows, at, ctx, who, lift)[1]
        return [menu.offers[i].offer_id for i in at[np.argsort(-score)[:PASSED_OVER]]]

    def expire(
        self,
        customer: CustomerModel,
        ctx: Context,
        now: float,
        trending: Trending | None = None,
    ) -> list[str]:
        """Offers shown to the customer with no yes within the answer window are no's,
        learned in the context they were shown in (not the one of the event that is
        closing the window)."""
        gone = customer.expired(now, self.cfg.answer_window_s)
        asked = customer.asked_in or ctx
        for offer_id in gone:
            offer = self.catalog.offers.get(offer_id)
            if offer is not None:
                self.answer(customer, offer, asked, False, now=now, trending=trending)
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
        """Rules first (availability, stock, frequency cap), then scores, then slots."""
        cfg = self.cfg.policy
        menu, rows = self._menu(store_id, ctx.daypart)
        excluded = {menu.position[o] for o in stock_out if o in menu.position}
        if customer is not None:
            excluded.update(
                menu.position[o]
                for o in customer.unanswered
                if o in menu.position
                and customer.times_unanswered(o, now, cfg.frequency_cap_period_s)
                >= cfg.frequency_cap
            )
        keep = np.ones(len(menu), dtype=bool)
        if len(menu) > CANDIDATES_ABOVE:
            pool = self._pool(store_id, menu, rows, ctx, trending, now)
            keep = candidates(menu, pool, customer)
        if excluded:
            keep[list(excluded)] = False
        at = np.flatnonzero(keep)
        if not len(at):
            return []
        lift = self._lift(menu, at, ctx, trending, now, excluded)
        p, score = self._scores(menu, rows, at, ctx, customer, lift)
        who = customer if customer is not None and self.cfg.personal else None
        return pick(menu, at, p, score, lift, ctx, who, rng, cfg)

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
            decision_id, "customer", customer_id, store_id, ctx, tuple(offers), now,
            customer.answers, self.cfg.name,
        )  # fmt: skip
