"""The policy: score offers for a touchpoint, apply the rules, explore a little, give reasons.

Score = P(yes) * value (price by default), so the engine grows what customers spend, not
only clicks. The menu's prior before any data: P(yes) = base_ev / price, every offer
worth the same; trending, weather and daypart move it (see `prior`), and the learned
models move it further (see `models.learner`).

>>> import random
>>> from models.offer import Offer
>>> from models.context import Context
>>> menu = [Offer(f"o{i}", f"O{i}", f"cat{i % 3}", 2.0 + i, 60, frozenset({"lunch"}))
...         for i in range(6)]
>>> flat = lambda offer: Estimate(0.1, ())
>>> ranked = rank(menu, Context("lunch"), random.Random(7), PolicyConfig(k=3), flat)
>>> [r.offer_id for r in ranked], all(0 < r.propensity <= 1 for r in ranked)
(['o5', 'o4', 'o3'], True)
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from models.context import Context
from models.offer import Offer

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
    value: str = "price"  # what a yes is worth: "price", "margin" or "yes"
    base_ev: float = 0.5  # the menu prior's expected value of showing any offer
    max_per_category: int = 2
    frequency_cap: int = 3  # shown this many times without a yes: rest it...
    frequency_cap_period_s: float = 86400.0  # ...until this long after it was last shown
    weather_lift: float = 1.6
    trending_reason_at: float = 1.5
    affinity_reason_at: float = 0.5
    slow_prep_s: int = 120
    peak_penalty: float = 0.4


@dataclass(frozen=True, slots=True)
class Estimate:
    p_yes: float
    reasons: tuple[str, ...]


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


def prior(offer: Offer, ctx: Context, lift: float, cfg: PolicyConfig) -> Estimate:
    """P(yes) from the menu itself: base rate, trending lift, weather and daypart.

    Lifts multiply the odds, not the probability, so a strong trend stays distinguishable
    from a stronger one instead of saturating.
    """
    reasons = []
    p0 = min(cfg.base_ev / max(offer.value(cfg.value), 0.01), 0.5)
    odds = p0 / (1 - p0) * lift
    if lift >= cfg.trending_reason_at:
        reasons.append(TRENDING_HERE)
    thermal = ctx.thermal
    if thermal == "hot":
        if "cold" in offer.tags:
            odds *= cfg.weather_lift
            reasons.append(HOT_WEATHER)
        elif "hot" in offer.tags:
            odds /= cfg.weather_lift
    elif thermal == "cold":
        if "hot" in offer.tags:
            odds *= cfg.weather_lift
            reasons.append(COLD_WEATHER)
        elif "cold" in offer.tags:
            odds /= cfg.weather_lift
    if ctx.daypart == "breakfast" and offer.category == "breakfast":
        reasons.append(BREAKFAST_TIME)
    return Estimate(min(max(odds / (1 + odds), 1e-4), 1 - 1e-4), tuple(reasons))


def rank(
    candidates: Sequence[Offer],
    ctx: Context,
    rng: random.Random,
    cfg: PolicyConfig,
    estimate: Callable[[Offer], Estimate],
) -> list[RankedOffer]:
    """The top `cfg.k` offers among `candidates` (already filtered by the rules of who
    may be shown what: availability, stock, frequency cap).

    Each slot takes the best remaining offer that keeps category variety, or with
    probability `explore_rate` a uniformly random one; `propensity` is the exact
    probability of the choice made, for off-policy evaluation.
    """
    scored: list[tuple[float, float, Offer, tuple[str, ...]]] = []
    for offer in candidates:
        est = estimate(offer)
        score = est.p_yes * offer.value(cfg.value)
        reasons = est.reasons
        if ctx.peak:
            if offer.prep_s > cfg.slow_prep_s:
                score *= cfg.peak_penalty
            elif offer.quick:
                reasons = (*reasons, QUICK_AT_PEAK)
        scored.append((score, est.p_yes, offer, reasons))
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
            reasons = (EXPLORING, *reasons)
        chosen.append(RankedOffer(offer.offer_id, score, p, propensity, reasons or (GOOD_VALUE,)))
        per_category[offer.category] = per_category.get(offer.category, 0) + 1
        remaining = [s for s in remaining if s is not pick]
    return chosen
