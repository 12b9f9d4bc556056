"""P(yes) means what it says: learned from a stream whose probabilities are known."""

from __future__ import annotations

import random

import pytest

from engine.replay.metrics import ece
from models.context import Context
from models.customer import CustomerModel
from models.learner import Learner, LearnerConfig
from models.offer import DAYPARTS, Catalog, Offer, Store
from models.policy import PolicyConfig

# Each visit is shown all six; at most one is bought, offer i with probability TRUE[i]
# (so P(yes | shown) of offer i is exactly TRUE[i]; nothing is bought 40% of the time).
TRUE = {"a": 0.30, "b": 0.15, "c": 0.08, "d": 0.04, "e": 0.02, "f": 0.01}
NOON = Context("lunch", store_id="s-1")


def _bought(rng: random.Random) -> str | None:
    """What a visit buys: offer i with probability TRUE[i], nothing otherwise."""
    draw = rng.random()
    for offer_id, p in TRUE.items():
        if draw < p:
            return offer_id
        draw -= p
    return None


def _stream(personal: bool, visits: int, seed: int) -> tuple[Learner, Catalog]:
    offers = [Offer(o, o, f"cat-{o}", 1.0, 0, frozenset(DAYPARTS)) for o in TRUE]
    catalog = Catalog.of(offers, [Store("s-1", "Store")])
    cfg = LearnerConfig(personal=personal, policy=PolicyConfig(value="yes"), answer_window_s=60)
    brain = Learner(catalog, cfg)
    rng = random.Random(seed)
    customers = [CustomerModel() for _ in range(200)]
    for n in range(visits):
        me, now = rng.choice(customers), n * 100.0
        for offer_id in TRUE:
            me.shown(offer_id, now)
        bought = _bought(rng)
        if bought is not None:
            brain.answer(me, catalog.offers[bought], NOON, True, now=now + 1)
        brain.expire(me, NOON, now + 61)
    return brain, catalog


@pytest.mark.parametrize("personal", [False, True])
def test_p_yes_of_shown_offers_matches_the_known_rate(personal: bool) -> None:
    """The crowd (and the engine with its customers' models) learns a sale as a yes and
    every offer shown beside it as a no, so the P(yes) it gives an offer is the rate at
    which that offer, shown, is bought: within 0.03 of the truth for each, and a
    calibration error under 0.03 on fresh visits."""
    brain, catalog = _stream(personal, 12_000, seed=1)
    customer = CustomerModel() if personal else None
    got = {o: brain.estimate(catalog.offers[o], NOON, customer).p_yes for o in TRUE}
    off = {o: round(got[o] - p, 3) for o, p in TRUE.items() if abs(got[o] - p) > 0.03}
    assert not off, f"P(yes) - truth beyond 0.03: {off}"
    rng, labels, probs = random.Random(2), [], []
    for _ in range(3000):
        bought = _bought(rng)
        for offer_id in TRUE:
            labels.append(offer_id == bought)
            probs.append(got[offer_id])
    error = ece(labels, probs)
    assert error is not None and error < 0.03
