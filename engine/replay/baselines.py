"""Baseline policies and the engine behind one tiny protocol, so a replay can compare them
on the same stream with one loop.

A policy ranks candidate offers (`scores`, higher first), estimates P(yes) for one offer
(`p_yes`), and learns from an answer (`learn`, reward > 0 is a yes). Customer ids may be
None (anonymous). All of them are pure and seeded: the same calls give the same numbers.

>>> from models.offer import DAYPARTS, Offer
>>> from models.context import Context
>>> fries, pie = (Offer(i, i, "sides", 1.0, 30, frozenset(DAYPARTS)) for i in ("fries", "pie"))
>>> popular, noon = Popularity(), Context("lunch")
>>> for yes in (1.0, 1.0, 0.0):
...     popular.learn("c-1", fries, noon, yes, now=0.0)
>>> popular.scores("c-2", [fries, pie], noon, now=1.0), popular.p_yes(None, fries, noon, 1.0)
([2.0, 0.0], 0.6)
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Protocol

import numpy as np
from numpy.typing import NDArray
from river import optim, reco

from models.context import Context
from models.customer import CustomerModel
from models.learner import Learner
from models.offer import Offer
from models.trending import Trending, scopes_for

TRENDING_HALF_LIFE_S = 3600.0  # as the worker's default (TAILOR_TRENDING_HALF_LIFE_S)
P_FLOOR = 1e-3  # probabilities of score-based baselines are clipped to [P_FLOOR, 1 - P_FLOOR]


class Policy(Protocol):
    """What a replay asks of every policy, before and after each event."""

    def scores(
        self, customer_id: str | None, offers: Sequence[Offer], ctx: Context, now: float
    ) -> list[float]:
        """Ranking scores of the candidate `offers` (higher is shown first)."""
        ...

    def p_yes(self, customer_id: str | None, offer: Offer, ctx: Context, now: float) -> float:
        """The probability of a yes to `offer`, strictly between 0 and 1."""
        ...

    def learn(
        self, customer_id: str | None, offer: Offer, ctx: Context, reward: float, now: float
    ) -> None:
        """One answer: reward > 0 is a yes, anything else a no."""
        ...


def _clip(p: float) -> float:
    return min(max(p, P_FLOOR), 1 - P_FLOOR)


class RandomPolicy:
    """Uniformly random scores from a seeded generator: the floor every policy must beat."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(f"{seed}:random-policy")

    def scores(
        self, customer_id: str | None, offers: Sequence[Offer], ctx: Context, now: float
    ) -> list[float]:
        return [self._rng.random() for _ in offers]

    def p_yes(self, customer_id: str | None, offer: Offer, ctx: Context, now: float) -> float:
        return _clip(self._rng.random())

    def learn(
        self, customer_id: str | None, offer: Offer, ctx: Context, reward: float, now: float
    ) -> None:
        return None


class Popularity:
    """Ranks by how many yes-answers each offer has had, from everyone, ever; P(yes) is
    the offer's Laplace-smoothed acceptance rate, (yes + 1) / (asked + 2)."""

    def __init__(self) -> None:
        self.yes: dict[str, float] = {}
        self.asked: dict[str, float] = {}

    def scores(
        self, customer_id: str | None, offers: Sequence[Offer], ctx: Context, now: float
    ) -> list[float]:
        return [self.yes.get(o.offer_id, 0.0) for o in offers]

    def p_yes(self, customer_id: str | None, offer: Offer, ctx: Context, now: float) -> float:
        oid = offer.offer_id
        return (self.yes.get(oid, 0.0) + 1.0) / (self.asked.get(oid, 0.0) + 2.0)

    def learn(
        self, customer_id: str | None, offer: Offer, ctx: Context, reward: float, now: float
    ) -> None:
        oid = offer.offer_id
        self.asked[oid] = self.asked.get(oid, 0.0) + 1.0
        if reward > 0:
            self.yes[oid] = self.yes.get(oid, 0.0) + 1.0


class TrendingPolicy:
    """Decayed popularity in context, as a store's board without any model: ranks by the
    decayed yes-count in the narrowest scope (store x daypart x weather, store x daypart,
    store) with enough support; P(yes) is the decayed acceptance rate in that scope."""

    def __init__(self, half_life_s: float = TRENDING_HALF_LIFE_S) -> None:
        self.yes = Trending(half_life_s)
        self.asked = Trending(half_life_s)

    def _scope(self, ctx: Context, now: float) -> str:
        return self.yes.scope_for(scopes_for(ctx.store_id, ctx.daypart, ctx.weather), now)

    def scores(
        self, customer_id: str | None, offers: Sequence[Offer], ctx: Context, now: float
    ) -> list[float]:
        ids, decayed = self.yes.scores(self._scope(ctx, now), now)
        score = dict(zip(ids, decayed.tolist(), strict=True))
        return [score.get(o.offer_id, 0.0) for o in offers]

    def p_yes(self, customer_id: str | None, offer: Offer, ctx: Context, now: float) -> float:
        scope = self._scope(ctx, now)
        yes = self.yes.score(offer.offer_id, now, scope)
        return (yes + 1.0) / (self.asked.score(offer.offer_id, now, scope) + 2.0)

    def learn(
        self, customer_id: str | None, offer: Offer, ctx: Context, reward: float, now: float
    ) -> None:
        scopes = scopes_for(ctx.store_id, ctx.daypart, ctx.weather)
        self.asked.add(offer.offer_id, 1.0, now, scopes)
        if reward > 0:
            self.yes.add(offer.offer_id, 1.0, now, scopes)


class BiasedMF:
    """River's biased matrix factorization (`reco.BiasedMF`, squared loss on 0/1 answers)
    as a ranker: global mean + user bias + item bias + <user, item> factors. Context-blind;
    anonymous answers all go to one pseudo-user."""

    ANONYMOUS = "__anonymous__"

    def __init__(self, seed: int, n_factors: int = 10) -> None:
        self.model = reco.BiasedMF(
            n_factors=n_factors,
            bias_optimizer=optim.SGD(0.025),
            latent_optimizer=optim.SGD(0.05),
            latent_initializer=optim.initializers.Normal(mu=0.0, sigma=0.1, seed=seed),
            l2_bias=0.0,
            l2_latent=0.0,
            seed=seed,
        )
        self._row: dict[str, int] = {}
        self._latent = np.zeros((0, n_factors))
        self._bias = np.zeros(0)
        self._last_rows: tuple[object, NDArray[np.intp]] = (None, np.zeros(0, dtype=np.intp))

    def _predict(self, customer_id: str | None, offer: Offer) -> float:
        user = customer_id or self.ANONYMOUS
        return float(self.model.predict_one(user, offer.offer_id))  # type: ignore[no-untyped-call]

    def _rows(self, offers: Sequence[Offer]) -> NDArray[np.intp]:
        """The offers' rows in a numpy mirror of River's item biases and factors (an
        offer first seen gets River's own initial factors), for ranking in one product."""
        if self._last_rows[0] is offers and len(self._last_rows[1]) == len(offers):
            return self._last_rows[1]
        new = [o.offer_id for o in offers if o.offer_id not in self._row]
        if new:
            start = len(self._row)
            self._row.update((item, start + i) for i, item in enumerate(new))
            latents = [self.model.i_latents[item] for item in new]
            self._latent = np.vstack([self._latent, np.array(latents, dtype=np.float64)])
            self._bias = np.append(self._bias, [self.model.i_biases[item] for item in new])
        rows = np.array([self._row[o.offer_id] for o in offers], dtype=np.intp)
        self._last_rows = (offers, rows)
        return rows

    def scores(
        self, customer_id: str | None, offers: Sequence[Offer], ctx: Context, now: float
    ) -> list[float]:
        """`predict_one` of every offer, as one matrix-vector product."""
        rows, user = self._rows(offers), customer_id or self.ANONYMOUS
        base = self.model.global_mean.get() + self.model.u_biases[user]
        scores = base + self._bias[rows] + self._latent[rows] @ self.model.u_latents[user]
        out: list[float] = scores.tolist()
        return out

    def p_yes(self, customer_id: str | None, offer: Offer, ctx: Context, now: float) -> float:
        return _clip(self._predict(customer_id, offer))

    def learn(
        self, customer_id: str | None, offer: Offer, ctx: Context, reward: float, now: float
    ) -> None:
        user, item = customer_id or self.ANONYMOUS, offer.offer_id
        self.model.learn_one(user, item, 1.0 if reward > 0 else 0.0)  # type: ignore[no-untyped-call]
        if (row := self._row.get(item)) is not None:  # learning moves this item only
            self._latent[row] = self.model.i_latents[item]
            self._bias[row] = self.model.i_biases[item]


class LearnerPolicy:
    """The engine as a replay sees it: a `Learner` (shared model) plus what the worker keeps
    beside it, the customers' models and each store's trending (updated with yes-answers).
    Scores are P(yes) x the offer's value, as the policy ranks; anonymous answers teach
    only the crowd."""

    def __init__(
        self, learner: Learner, half_life_s: float = TRENDING_HALF_LIFE_S, choices: bool = False
    ) -> None:
        self.learner = learner
        self.choices = choices  # a logged yes was chosen from the menu (not answered)
        self.half_life_s = half_life_s
        self.customers: dict[str, CustomerModel] = {}
        self.trending: dict[str, Trending] = {}
        self._menu: tuple[object, dict[str, int], tuple[list[float], list[float]]] | None = None

    def customer(self, customer_id: str) -> CustomerModel:
        """The customer's model, created on first use."""
        model = self.customers.get(customer_id)
        if model is None:
            model = self.customers[customer_id] = CustomerModel()
        return model

    def trending_for(self, store_id: str | None) -> Trending:
        """The store's trending (one pseudo-store for events without a store)."""
        key = store_id or ""
        trending = self.trending.get(key)
        if trending is None:
            trending = self.trending[key] = Trending(self.half_life_s)
        return trending

    def scores(
        self, customer_id: str | None, offers: Sequence[Offer], ctx: Context, now: float
    ) -> list[float]:
        return self._vectors(customer_id, offers, ctx, now, 1)

    def p_yes(self, customer_id: str | None, offer: Offer, ctx: Context, now: float) -> float:
        return self._vectors(customer_id, [offer], ctx, now, 0)[0]

    def _vectors(
        self, customer_id: str | None, offers: Sequence[Offer], ctx: Context, now: float, which: int
    ) -> list[float]:
        """P(yes) (`which` 0) or ranking scores (1) of `offers`, from the learner's
        whole-menu vectors (one pass per event: kept until the next answer is learned);
        an offer off the menu, one at a time (its P(yes) x value)."""
        key = (customer_id, ctx, now)
        if self._menu is None or self._menu[0] != key:
            customer = self.customers.get(customer_id) if customer_id else None
            trending = self.trending_for(ctx.store_id)
            menu, p, score = self.learner.menu_p_yes(ctx, customer, trending, now)
            self._menu = (key, menu.position, (p.tolist(), score.tolist()))
        _, position, vectors = self._menu
        kind = self.learner.cfg.policy.value
        return [
            vectors[which][position[o.offer_id]]
            if o.offer_id in position
            else self._one(customer_id, o, ctx, now) * (o.value(kind) if which else 1.0)
            for o in offers
        ]

    def _one(self, customer_id: str | None, offer: Offer, ctx: Context, now: float) -> float:
        customer = self.customers.get(customer_id) if customer_id else None
        return self.learner.estimate(
            offer, ctx, customer, self.trending_for(ctx.store_id), now
        ).p_yes

    def learn(
        self, customer_id: str | None, offer: Offer, ctx: Context, reward: float, now: float
    ) -> None:
        yes, self._menu = reward > 0, None
        customer = self.customer(customer_id) if customer_id else None
        trending = self.trending_for(ctx.store_id)
        self.learner.answer(customer, offer, ctx, yes, 1.0, now, trending, self.choices)
        if yes:
            trending.add(
                offer.offer_id, 1.0, now, scopes_for(ctx.store_id, ctx.daypart, ctx.weather)
            )
