"""Clean labels: a funnel is one answer, and a window's no belongs where it was asked."""

from __future__ import annotations

import random

import orjson

from config.catalog import load_catalog
from models.context import Context
from models.customer import CustomerModel
from models.learner import Learner, LearnerConfig

CATALOG = load_catalog()
BREAKFAST = Context("breakfast", weather="rain", temperature_c=8.0, store_id="s-1")
LUNCH = Context("lunch", weather="sunny", temperature_c=25.0, store_id="s-2")


def _owner_brain() -> Learner:
    """A worker's learner: the crowd's lessons are kept for its owner, so we can read them."""
    return Learner(CATALOG, LearnerConfig(crowd_learns_here=False, answer_window_s=900))


def test_a_click_add_to_cart_purchase_funnel_is_learned_once_graded() -> None:
    brain, me, rng = _owner_brain(), CustomerModel(), random.Random(1)
    first = brain.decide_for("c", me, "s-1", BREAKFAST, None, 0.0, rng, "d-1")
    shown = [o.offer_id for o in first.offers[:3]]
    for offer_id in shown:
        me.shown(offer_id, 1.0, BREAKFAST)
    chosen = CATALOG.offers[shown[0]]
    brain.answer(me, chosen, BREAKFAST, True, 0.5, now=2.0)  # a click
    assert [(les.offer_id, les.yes) for les in brain.take_lessons()] == [(shown[0], True)]
    assert set(me.pending) == set(shown[1:]), "what was shown with it: the window decides"
    later = brain.decide_for("c", me, "s-1", BREAKFAST, None, 3.0, rng, "d-2")  # after it
    others = [CATALOG.offers[o.offer_id] for o in later.offers if o.offer_id != chosen.offer_id]
    before = {o.offer_id: me.predict_one(o, BREAKFAST, 0.0) for o in others}
    brain.answer(me, chosen, BREAKFAST, True, 0.75, now=4.0)  # add to cart
    brain.answer(me, chosen, BREAKFAST, True, 0.5, now=4.5)  # a second click: nothing
    brain.answer(me, chosen, BREAKFAST, True, 1.0, now=5.0, choice=True)  # purchase
    steps = brain.take_lessons()
    assert [(les.offer_id, les.yes) for les in steps] == [(chosen.offer_id, True)] * 2
    assert sum(les.strength for les in steps) == 0.5  # 0.5 + 0.25 + 0.25: one full yes
    after = {o.offer_id: me.predict_one(o, BREAKFAST, 0.0) for o in others}
    # the later decision's offers were never asked about: no no's for them (they share
    # the customer's intercept, categories and tags with the chosen one, so may rise)
    assert all(after[o] >= before[o] for o in before), (before, after)
    brain.answer(me, chosen, BREAKFAST, True, 1.0, now=6.0, choice=True)  # buys another
    assert [les.strength for les in brain.take_lessons() if les.yes] == [1.0]


def test_a_window_no_is_learned_in_the_context_it_was_asked_in() -> None:
    brain, me = _owner_brain(), CustomerModel()
    me.shown("latte", 0.0, BREAKFAST)
    me = CustomerModel.from_state(orjson.loads(orjson.dumps(me.to_state())))  # a restart
    assert brain.expire(me, LUNCH, now=1000.0) == ["latte"]  # closed by an event at lunch
    (lesson,) = brain.take_lessons()
    assert (lesson.offer_id, lesson.yes, lesson.ctx) == ("latte", False, BREAKFAST)


def test_a_visit_that_buys_two_of_what_it_was_shown_teaches_each_offer_once() -> None:
    """Two purchases from one screen: each is a yes, and only what was left is a no (when
    the window closes), in the crowd as in the customer's own model."""
    brain, me, rng = _owner_brain(), CustomerModel(), random.Random(2)
    decision = brain.decide_for("c", me, "s-1", BREAKFAST, None, 0.0, rng, "d-1")
    shown = [o.offer_id for o in decision.offers[:3]]
    for offer_id in shown:
        me.shown(offer_id, 1.0, BREAKFAST)
    first, second, left = shown
    brain.answer(me, CATALOG.offers[first], BREAKFAST, True, now=20.0, choice=True)
    brain.answer(me, CATALOG.offers[second], BREAKFAST, True, now=21.0, choice=True)
    assert brain.expire(me, BREAKFAST, 20.0 + 900 + 1) == [left]
    taught = [(lesson.offer_id, lesson.yes) for lesson in brain.lessons]
    assert sorted(taught) == sorted([(first, True), (second, True), (left, False)]), taught
