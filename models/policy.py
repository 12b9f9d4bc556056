"""The policy: score offers for a touchpoint, apply the rules, explore a little, give reasons.

Score = P(yes) * price, so the engine grows what customers spend, not only clicks.
Before any data, P(yes) = base_ev / price: every offer is worth the same, and context
(weather, daypart), trending and the customer's own answers break the tie.

>>> import random
>>> from models.offer import Offer
>>> from models.context import Context
>>> menu = [Offer(f"o{i}", f"O{i}", f"cat{i % 3}", 2.0 + i, 60, frozenset({"lunch"}))
...         for i in range(6)]
>>> ranked = rank(menu, Context("lunch"), random.Random(7), PolicyConfig(k=3))
>>> [r.offer_id for r in ranked], all(0 < r.propensity <= 1 for r in ranked)
(['o0', 'o1', 'o2'], True)
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from models.context import Context
from models.customer import CustomerModel
from models.offer import Offer
from models.trending import Trending

# Reason codes a screen or a person can read.
YOU_OFTEN_BUY = "you_often_buy"
TRENDING_HERE = "trending_here"
HOT_WEATHER = "hot_weather"
COLD_WEATHER = "cold_weather"
BREAKFAST_TIME = "breakfast_time"
QUICK_AT_PEAK = "quick_at_peak"
EXPLORING = "exploring"
GOOD_VALUE = "good_value"


@dataclass(frozen=True, slots=True)
class PolicyConfig:
    k: int = 6
    explore_rate: float = 0.05
    base_ev: float = 0.5  # cold-start expected spend per offer shown
    trust_answers: float = 8.0  # after this many answers a customer's model weighs half
    max_per_category: int = 2
    weather_lift: float = 1.6
    trending_reason_at: float = 1.5
    affinity_reason_at: float = 0.5
    slow_prep_s: int = 120
    peak_penalty: float = 0.4


@dataclass(frozen=True, slots=True)
class RankedOffer:
    offer_id: str
    score: float
    p_yes: float
    propensity: float  # probability this offer was chosen for its slot
    reasons: tuple[str, ...]

    def as_json(self) -> dict[str, object]:
        return {
            "offer_id": self.offer_id,
            "score": round(self.score, 4),
            "p_yes": round(self.p_yes, 4),
            "propensity": round(self.propensity, 4),
            "reasons": list(self.reasons),
        }


def _prior(offer: Offer, ctx: Context, lift: float, cfg: PolicyConfig) -> tuple[float, list[str]]:
    """P(yes) from what everyone teaches: base rate, trending lift, weather and daypart."""
    reasons = []
    p = cfg.base_ev / max(offer.price, 0.01) * lift
    if lift >= cfg.trending_reason_at:
        reasons.append(TRENDING_HERE)
    thermal = ctx.thermal
    if thermal == "hot":
        if "cold" in offer.tags:
            p *= cfg.weather_lift
            reasons.append(HOT_WEATHER)
        elif "hot" in offer.tags:
            p /= cfg.weather_lift
    elif thermal == "cold":
        if "hot" in offer.tags:
            p *= cfg.weather_lift
            reasons.append(COLD_WEATHER)
        elif "cold" in offer.tags:
            p /= cfg.weather_lift
    if ctx.daypart == "breakfast" and offer.category == "breakfast":
        reasons.append(BREAKFAST_TIME)
    return min(max(p, 1e-4), 0.95), reasons


def rank(
    candidates: Sequence[Offer],
    ctx: Context,
    rng: random.Random,
    cfg: PolicyConfig,
    trending: Trending | None = None,
    now: float = 0.0,
    customer: CustomerModel | None = None,
) -> list[RankedOffer]:
    """The top `cfg.k` offers among `candidates` (already filtered for availability).

    Each slot takes the best remaining offer that keeps category variety, or with
    probability `explore_rate` a uniformly random one; `propensity` is the exact
    probability of the choice made, for off-policy evaluation.
    """
    ids = [o.offer_id for o in candidates]
    trust = 0.0
    if customer is not None and customer.answers:
        trust = customer.answers / (customer.answers + cfg.trust_answers)
    scored: list[tuple[float, float, Offer, list[str]]] = []
    for offer in candidates:
        lift = trending.lift(offer.offer_id, now, ids) if trending is not None else 1.0
        p, reasons = _prior(offer, ctx, lift, cfg)
        if customer is not None and trust:
            p = trust * customer.predict_one(offer, ctx) + (1 - trust) * p
            if customer.affinity(offer) >= cfg.affinity_reason_at:
                reasons.insert(0, YOU_OFTEN_BUY)
        score = p * offer.price
        if ctx.peak:
            if offer.prep_s > cfg.slow_prep_s:
                score *= cfg.peak_penalty
            elif offer.quick:
                reasons.append(QUICK_AT_PEAK)
        scored.append((score, p, offer, reasons))
    scored.sort(key=lambda s: -s[0])  # stable: ties keep catalog order

    chosen: list[RankedOffer] = []
    per_category: dict[str, int] = {}
    remaining = scored
    while len(chosen) < cfg.k:
        eligible = [
            s for s in remaining if per_category.get(s[2].category, 0) < cfg.max_per_category
        ]
        if not eligible:
            break
        explore = cfg.explore_rate > 0 and rng.random() < cfg.explore_rate
        pick = rng.choice(eligible) if explore else eligible[0]
        greedy = pick is eligible[0]
        propensity = (1 - cfg.explore_rate) * greedy + cfg.explore_rate / len(eligible)
        score, p, offer, reasons = pick
        if not greedy:
            reasons = [EXPLORING, *reasons]
        chosen.append(
            RankedOffer(offer.offer_id, score, p, propensity, tuple(reasons) or (GOOD_VALUE,))
        )
        per_category[offer.category] = per_category.get(offer.category, 0) + 1
        remaining = [s for s in remaining if s is not pick]
    return chosen
