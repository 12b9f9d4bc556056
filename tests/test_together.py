"""Together: popularity of choices and what goes with what, alone and in the learner."""

from __future__ import annotations

import random

import numpy as np
import orjson

from models.context import Context
from models.customer import CustomerModel
from models.learner import Learner, LearnerConfig
from models.offer import DAYPARTS, Catalog, Offer, Store
from models.policy import PolicyConfig
from models.shared import Lesson, SharedModel
from models.together import Together

STORE = Store("s-1", "Store")
NOON = Context("lunch", store_id="s-1")


def plain(offer_id: str) -> Offer:
    return Offer(offer_id, offer_id, "offer", 1.0, 0, frozenset(DAYPARTS))


def test_goes_with_lifts_the_partner_of_what_was_chosen_and_nothing_by_chance() -> None:
    rng = np.random.default_rng(1)
    items = [f"i{k}" for k in range(20)]
    paired, independent = Together(), Together()
    for _ in range(3000):
        a = int(rng.integers(0, 10))
        paired.learn(items[2 * a + 1], "", [items[2 * a]])  # i0 with i1, i2 with i3, ...
        x, y = rng.integers(0, 20, size=2)
        independent.learn(items[y], "", [items[x]])
    at = paired.positions(items)
    lift = paired.goes_with(at, ["i0"])
    assert lift[1] > 1.0 and np.delete(lift, [0, 1]).max() < 0.0
    noise = independent.goes_with(independent.positions(items), ["i0"])
    assert np.abs(noise).max() < 0.5 < lift[1]
    assert lift[0] == 0.0  # the chosen offer itself: neither lifted nor pushed down


def test_the_weights_follow_the_data_goes_with_up_for_baskets_down_for_popularity() -> None:
    """`goes_weight` and `trust` are fitted to choices: a log whose next item follows
    the basket raises the first, one chosen by popularity alone lowers it; a log in
    which scopes differ trusts them, one in which they do not stops trusting them."""
    rng = np.random.default_rng(2)
    items = [f"i{k}" for k in range(30)]
    logs = {"baskets": Together(), "popularity": Together()}
    pop = 1.0 / np.arange(1, 31)
    pop /= pop.sum()
    for _ in range(4000):
        for name, t in logs.items():
            at = t.positions(items)
            first = items[int(rng.choice(30, p=pop))]
            nxt = items[(items.index(first) + 1) % 30] if name == "baskets" else first
            if name == "popularity":
                nxt = items[int(rng.choice(30, p=pop))]
            scope = f"s|{rng.integers(0, 3)}" if name == "popularity" else f"s|{first[-1]}"
            j = at[items.index(nxt)] if at[items.index(nxt)] >= 0 else -1
            grad = (0.0, 0.0)
            if j >= 0:
                grad = t.gradient(items.index(nxt), at, scope, [first], None)
            t.learn(first, scope, [])
            t.learn(nxt, scope, [first], grad)
    assert logs["baskets"].goes_weight > 1.5 > 0.5 > logs["popularity"].goes_weight
    assert logs["baskets"].trust > 0.8 > 0.5 > logs["popularity"].trust


def test_memory_is_bounded_and_the_state_round_trips() -> None:
    t = Together(row_cap=8)
    rng = random.Random(3)
    for _ in range(2000):
        t.learn(f"i{rng.randrange(100)}", "s|lunch", [f"i{rng.randrange(100)}" for _ in range(5)])
    assert max(len(row) for row in t.rows) <= 16
    again = Together.from_state(orjson.loads(orjson.dumps(t.to_state())))
    at = t.positions([f"i{k}" for k in range(100)])
    basket = ["i1", "i2", "i3"]
    assert np.allclose(again.goes_with(at, basket), t.goes_with(at, basket), atol=1e-3)
    assert np.allclose(again.popularity(at, "s|lunch"), t.popularity(at, "s|lunch"), atol=1e-3)
    assert Together.from_state({"v": 99}).clock == 0


def test_a_customers_choice_moves_an_offer_they_never_tried_above_an_equally_popular_one() -> None:
    """The crowd buys coffee with a croissant and tea with a scone, each pair as often;
    a new customer who buys a croissant is offered coffee before tea, though they never
    answered about either, and without 1-1 learning nothing tells them apart."""
    offers = [plain(o) for o in ("croissant", "scone", "coffee", "tea", "water", "juice")]
    catalog = Catalog.of(offers, [STORE])
    cfg = PolicyConfig(value="yes", explore_rate=0.0, k=6, max_per_category=6)
    ranks = {}
    for personal in (True, False):
        brain = Learner(catalog, LearnerConfig(personal=personal, policy=cfg))
        for n in range(60):
            who = CustomerModel()
            first, then = ("croissant", "coffee") if n % 2 else ("scone", "tea")
            brain.answer(who, catalog.offers[first], NOON, True, now=float(n), choice=True)
            brain.answer(who, catalog.offers[then], NOON, True, now=float(n), choice=True)
        me = CustomerModel()
        brain.answer(me, catalog.offers["croissant"], NOON, True, now=99.0, choice=True)
        decision = brain.decide_for("me", me, "s-1", NOON, None, 99.0, random.Random(1), "d")
        ranks[personal] = [r.offer_id for r in decision.offers]
        assert "coffee" not in me.pending and me.recent == ["croissant"]
    assert ranks[True].index("coffee") < ranks[True].index("tea")
    assert abs(ranks[False].index("coffee") - ranks[False].index("tea")) == 1


def test_a_choice_lesson_carries_its_basket_to_the_crowd_owner() -> None:
    lesson = Lesson("coffee", NOON, -1.0, True, 1.0, ("croissant",), (0.1, -0.2))
    assert Lesson.from_json(orjson.loads(orjson.dumps(lesson.as_json()))) == lesson
    old = Lesson.from_json(["coffee", NOON.as_json(), -1.0, True, 1.0])  # before baskets
    assert old.basket is None and old.gradient == (0.0, 0.0)
    owner = SharedModel()
    owner.learn_lesson(plain("coffee"), lesson)
    again = SharedModel.from_state(orjson.loads(orjson.dumps(owner.to_state())))
    assert again.together.clock == 1 and again.together.rows[again.together.index["coffee"]]
