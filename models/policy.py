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
from collections import Counter
from collections.abc import Callable, Hashable, Sequence
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
    picks = choose([s[2].category for s in scored], rng, cfg)
    chosen = []
    for i, propensity, greedy in picks:
        score, p, offer, reasons = scored[i]
        if not greedy:
            reasons = (EXPLORING, *reasons)
        chosen.append(RankedOffer(offer.offer_id, score, p, propensity, reasons or (GOOD_VALUE,)))
    return chosen


def reasons(
    offer: Offer, ctx: Context, lift: float, affinity: float, greedy: bool, cfg: PolicyConfig
) -> tuple[str, ...]:
    """Why an offer was picked: the prior's reasons (trending, weather, daypart), the
    customer's own taste (`affinity`, their logit above the crowd's), a quick offer at
    peak, and exploring when the slot explored."""
    why = prior(offer, ctx, lift, cfg).reasons
    if affinity >= cfg.affinity_reason_at:
        why = (YOU_OFTEN_BUY, *why)
    if ctx.peak and offer.prep_s <= cfg.slow_prep_s and offer.quick:
        why = (*why, QUICK_AT_PEAK)
    if not greedy:
        why = (EXPLORING, *why)
    return why or (GOOD_VALUE,)


def choose(
    categories: Sequence[Hashable], rng: random.Random, cfg: PolicyConfig
) -> list[tuple[int, float, bool]]:
    """Fill `cfg.k` slots from offers ranked best first (given by their categories):
    (index, propensity, greedy) per slot.

    Each slot takes the best remaining offer that keeps category variety, or with
    probability `explore_rate` a uniformly random eligible one; the propensity is the
    exact probability of the choice made. The eligible are counted, not listed, unless
    the slot explores: a slot costs O(offers) at worst, not a list copy per slot.
    """
    remaining = list(range(len(categories)))
    left = Counter(categories)
    per_category: Counter[Hashable] = Counter()
    full: set[Hashable] = set(left) if cfg.max_per_category <= 0 else set()
    out: list[tuple[int, float, bool]] = []
    while len(out) < cfg.k:
        eligible = len(remaining) - sum(left[c] for c in full)
        if eligible <= 0:
            break
        explore = cfg.explore_rate > 0 and rng.random() < cfg.explore_rate
        first = next(i for i in remaining if categories[i] not in full)
        pick = first
        if explore:
            pick = rng.choice([i for i in remaining if categories[i] not in full])
        greedy = pick == first
        out.append((pick, (1 - cfg.explore_rate) * greedy + cfg.explore_rate / eligible, greedy))
        category = categories[pick]
        left[category] -= 1
        per_category[category] += 1
        if per_category[category] >= cfg.max_per_category:
            full.add(category)
        remaining.remove(pick)
    return out
