"""A large catalog (candidate generation before exact scoring): the rules still hold, the
customer's favourites still come through, and 20,000 offers decide (not timed here)."""

from __future__ import annotations

import random

import pytest

from benchmarks.catalog_scale import synthetic_catalog
from models.candidates import CANDIDATES_ABOVE
from models.context import Context
from models.customer import CustomerModel
from models.learner import Learner, LearnerConfig
from models.offer import Catalog
from models.policy import EXPLORING, PolicyConfig
from models.trending import Trending, scopes_for

LARGE: Catalog = synthetic_catalog(3000, seed=11)
CTX = Context("lunch", weather="rain", temperature_c=9.0, queue_length=6, store_id="s-1")


def brain(catalog: Catalog = LARGE, **policy: object) -> Learner:
    return Learner(catalog, LearnerConfig(policy=PolicyConfig(**policy)))  # type: ignore[arg-type]


def _weakest(learner: Learner, store: str, ctx: Context) -> str:
    """The offer the crowd ranks last here: no candidate pool would hold it."""
    menu = learner.catalog.available(store, ctx.daypart)
    return min(menu, key=lambda o: learner.estimate(o, ctx).p_yes * o.price).offer_id


def test_a_customers_favourite_beyond_the_crowds_pool_comes_through() -> None:
    assert len(LARGE.available("s-1", "lunch")) > CANDIDATES_ABOVE
    learner, me = brain(k=6, explore_rate=0.0), CustomerModel()
    niche = LARGE.offers[_weakest(learner, "s-1", CTX)]
    before = learner.decide_for("c", me, "s-1", CTX, None, 0.0, random.Random(1), "d")
    assert niche.offer_id not in [r.offer_id for r in before.offers]
    for _ in range(10):
        learner.answer(me, niche, CTX, True)
    after = learner.decide_for("c", me, "s-1", CTX, None, 0.0, random.Random(1), "d")
    assert after.offers[0].offer_id == niche.offer_id
    assert "you_often_buy" in after.offers[0].reasons


def test_candidates_obey_every_rule() -> None:
    learner, me, trending = (
        brain(k=8, explore_rate=0.2, frequency_cap=1),
        CustomerModel(),
        Trending(3600),
    )
    rng = random.Random(4)
    menu = LARGE.available("s-1", "lunch")
    for offer in rng.sample(menu, 40):
        learner.answer(me, offer, CTX, True)
        trending.add(offer.offer_id, 3.0, 0.0, scopes_for("s-1", "lunch", None))
    first = learner.decide_for("c", me, "s-1", CTX, trending, 1.0, rng, "d")
    for r in first.offers:
        me.shown(r.offer_id, 1.0)  # frequency cap 1: each rests now
    stock_out = [r.offer_id for r in learner.board("s-1", CTX, trending, 1.0, rng, "b").offers]
    for seed in range(30):
        d = learner.decide_for(
            "c", me, "s-1", CTX, trending, 2.0, random.Random(seed), "d", stock_out
        )
        ids = [r.offer_id for r in d.offers]
        assert len(ids) == 8 == len(set(ids))
        per_category: dict[str, int] = {}
        for r in d.offers:
            offer = LARGE.offers[r.offer_id]
            assert "lunch" in offer.dayparts and r.offer_id not in LARGE.stores["s-1"].exclude
            assert r.offer_id not in stock_out
            assert r.offer_id not in {o.offer_id for o in first.offers}  # resting
            assert 0 < r.propensity <= 1
            if EXPLORING not in r.reasons:
                assert r.propensity >= 0.8
            per_category[offer.category] = per_category.get(offer.category, 0) + 1
        assert max(per_category.values()) <= 2
        slow = sum(LARGE.offers[o].prep_s > 120 for o in ids)  # the lane is at its peak
        assert slow <= 2


def test_exploration_propensities_stay_exact_on_a_large_catalog() -> None:
    learner = brain(k=1, explore_rate=0.3)
    rng, n = random.Random(0), 4000
    counts: dict[str, int] = {}
    recorded: dict[str, float] = {}
    for _ in range(n):
        (r,) = learner.board("s-2", CTX, None, 0.0, rng, "b").offers
        counts[r.offer_id] = counts.get(r.offer_id, 0) + 1
        recorded[r.offer_id] = r.propensity
    greedy = max(counts, key=lambda o: counts[o])
    assert counts[greedy] / n == pytest.approx(recorded[greedy], abs=0.025)
    assert len(counts) > 50  # exploring spreads over the candidates


def test_a_20000_offer_catalog_decides_correctly() -> None:
    catalog = synthetic_catalog(20_000, seed=2)
    learner, me, trending = brain(catalog, k=6, value="yes"), CustomerModel(), Trending(3600)
    ctx = Context("dinner", weather="sunny", temperature_c=30.0, store_id="s-3")
    menu = catalog.available("s-3", "dinner")
    favourite = menu[len(menu) // 2]
    for i in range(8):
        learner.answer(me, favourite, ctx, True, now=float(i), trending=trending)
        trending.add(favourite.offer_id, 1.0, float(i), scopes_for("s-3", "dinner", None))
    one = learner.decide_for("c", me, "s-3", ctx, trending, 10.0, random.Random(9), "d")
    two = learner.decide_for("c", me, "s-3", ctx, trending, 10.0, random.Random(9), "d")
    assert [r.offer_id for r in one.offers] == [r.offer_id for r in two.offers]  # seeded
    assert len(one.offers) == 6
    assert favourite.offer_id in [r.offer_id for r in one.offers]
    for r in one.offers:
        offer = catalog.offers[r.offer_id]
        assert "dinner" in offer.dayparts and r.offer_id not in catalog.stores["s-3"].exclude
        est = learner.estimate(offer, ctx, me, trending, 10.0, [o.offer_id for o in menu])
        assert r.p_yes == pytest.approx(est.p_yes, abs=1e-6)  # exact on the candidates
