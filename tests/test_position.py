"""Position bias is learned as position, not as preference."""

from __future__ import annotations

import random

from models.context import Context
from models.customer import CustomerModel
from models.learner import Learner, LearnerConfig
from models.offer import DAYPARTS, Catalog, Offer, Store
from models.policy import PolicyConfig

NOON = Context("lunch", store_id="s-1")
SLOT_LIFT = (3.0, 1.0, 0.6, 0.4)  # the first slot triples P(yes), whatever the offer
BASE = 0.1  # every offer alike


def _learned(with_slots: bool) -> dict[str, float]:
    """A logging policy that puts "a" first 80% of the time and "d" last 80% of the time;
    every offer is equally good. What does the crowd believe afterwards?"""
    offers = [Offer(o, o, f"cat-{o}", 1.0, 0, frozenset(DAYPARTS)) for o in "abcd"]
    catalog = Catalog.of(offers, [Store("s-1", "Store")])
    cfg = LearnerConfig(personal=False, policy=PolicyConfig(value="yes"), answer_window_s=60)
    brain, rng = Learner(catalog, cfg), random.Random(3)
    for n in range(20_000):
        me, now = CustomerModel(), n * 100.0
        order = ["a", "b", "c", "d"] if rng.random() < 0.8 else rng.sample("abcd", 4)
        for slot, offer_id in enumerate(order):
            me.shown(offer_id, now, NOON, slot if with_slots else None)
        for slot, offer_id in enumerate(order):
            if rng.random() < BASE * SLOT_LIFT[slot]:
                brain.answer(me, catalog.offers[offer_id], NOON, True, now=now + 1)
                break
        brain.expire(me, NOON, now + 61)
    return {o: brain.estimate(catalog.offers[o], NOON).p_yes for o in "abcd"}


def test_offers_shown_first_are_not_believed_better_when_impressions_carry_their_slot() -> None:
    with_slots, without = _learned(True), _learned(False)
    assert without["a"] > 3 * without["d"]  # position bias taken for taste
    assert max(with_slots.values()) < 1.5 * min(with_slots.values()), with_slots
