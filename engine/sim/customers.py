"""The simulated customers and their hidden, context-dependent tastes: the ground truth a
policy must learn.

Pure and seeded: the population follows from the world's seed and the catalog alone.
`p_yes` is the oracle: the true probability that a customer says yes to an offer in a
context. Benchmarks compare a policy's picks against it.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from engine.sim.weather import chill_of, clamp, heat_of
from models.context import Context
from models.offer import Catalog, Offer

SIM_CHANNELS: tuple[str, ...] = ("drive_thru", "app", "web")
"""The channels simulated customers use; web and app fetch personal offers, lanes the board."""
CHANNEL_SHARE: tuple[float, ...] = (0.6, 0.25, 0.15)
TASTE_TAGS: tuple[str, ...] = ("sweet", "healthy", "treat")
"""Tags a customer has a personal taste for (hot/cold follow the weather instead)."""

P_MIN, P_MAX = 0.02, 0.9
"""Bounds of `p_yes`: nobody is certain, and even a disliked offer sometimes sells."""

# The logit terms of p_yes (see its docstring).
BASE_LOGIT = -4.75
FAVOURITE_BOOST = 5.5
# Tastes are partly shared: a customer's are their segment's plus their own. A segment
# loves SEGMENT_LOVED categories by SEGMENT_LOVE (and one tag by half of it), so what its
# members buy goes together; PERSONAL_TASTE_SD spreads each customer around it.
SEGMENTS = 8
SEGMENT_LOVE = 2.0
SEGMENT_LOVED = 2
PERSONAL_TASTE_SD = 0.7
OFF_DAYPART_PENALTY = 2.5
HOT_DISLIKE = 0.5  # share of a craving that turns against the opposite items
RUSH_QUICK_BOOST = 0.4
RUSH_SLOW_PENALTY = 0.4
SLOW_PREP_S = 150
WET_COMFORT = 0.3
_WET = frozenset({"rain", "snow"})


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def is_breakfast_item(offer: Offer) -> bool:
    """Breakfast food: the breakfast category, or sold at breakfast only (catalog-agnostic)."""
    return offer.category == "breakfast" or offer.dayparts == frozenset({"breakfast"})


@dataclass(frozen=True, slots=True)
class SimCustomer:
    """One simulated customer and their hidden tastes (logit offsets; 0 = indifferent)."""

    customer_id: str
    home_store: str
    channel: str  # preferred channel: drive_thru, app or web
    frequency: float  # relative visit rate: regulars come more often
    category_taste: Mapping[str, float]
    tag_taste: Mapping[str, float]  # sweet, healthy, treat
    heat_craving: float  # pull towards cold-tagged items when it is hot
    chill_craving: float  # pull towards hot-tagged items when it is cold
    breakfast_craving: float  # pull towards breakfast items at breakfast
    budget: float  # the price that feels normal to them
    price_sensitivity: float  # how much dearer than the budget hurts
    favourites: frozenset[str]  # loyal favourite offer ids: a yes most of the time
    segment: int = 0  # the taste segment their tastes are drawn around (shared tastes)

    def __hash__(self) -> int:  # the taste mappings are not hashable; the id is unique
        return hash(self.customer_id)


def p_yes(customer: SimCustomer, offer: Offer, ctx: Context) -> float:
    """The true probability that `customer` says yes to `offer` in `ctx` (the oracle).

    A logistic model, clipped to [P_MIN, P_MAX]; the logit is the sum of:
      - BASE_LOGIT (under 1 % for an offer nobody feels anything about: P_MIN);
      - the customer's taste for the offer's category, plus their taste for each of its
        TASTE_TAGS (sweet, healthy, treat): their segment's, plus their own;
      - weather: `heat_of(temperature)` * heat_craving for `cold`-tagged items (and half of
        that against `hot`-tagged ones); `chill_of(temperature)` * chill_craving for
        `hot`-tagged items (and half of that against `cold`-tagged ones); WET_COMFORT for
        `hot`-tagged items in rain or snow;
      - breakfast_craving for breakfast items (`is_breakfast_item`) in the breakfast daypart;
        OFF_DAYPART_PENALTY for any offer outside the dayparts it is sold in;
      - FAVOURITE_BOOST when the offer is one of the customer's favourites;
      - price: -price_sensitivity * ln(price / budget);
      - rush: in a drive-thru lane at peak queue (`ctx.peak`), quick items gain
        RUSH_QUICK_BOOST and slow ones (prep_s >= SLOW_PREP_S) lose RUSH_SLOW_PENALTY.
    """
    tags = offer.tags
    logit = BASE_LOGIT + customer.category_taste.get(offer.category, 0.0)
    logit += sum(customer.tag_taste.get(t, 0.0) for t in tags)
    heat, chill = heat_of(ctx.temperature_c), chill_of(ctx.temperature_c)
    if "cold" in tags:
        logit += heat * customer.heat_craving - chill * HOT_DISLIKE * customer.chill_craving
    if "hot" in tags:
        logit += chill * customer.chill_craving - heat * HOT_DISLIKE * customer.heat_craving
        if ctx.weather in _WET:
            logit += WET_COMFORT
    if ctx.daypart == "breakfast" and is_breakfast_item(offer):
        logit += customer.breakfast_craving
    if ctx.daypart not in offer.dayparts:
        logit -= OFF_DAYPART_PENALTY
    if offer.offer_id in customer.favourites:
        logit += FAVOURITE_BOOST

    logit -= customer.price_sensitivity * math.log(offer.price / customer.budget)
    if ctx.channel == "drive_thru" and ctx.peak:
        if offer.quick:
            logit += RUSH_QUICK_BOOST
        if offer.prep_s >= SLOW_PREP_S:
            logit -= RUSH_SLOW_PENALTY
    return clamp(_sigmoid(logit), P_MIN, P_MAX)


def choose(
    customer: SimCustomer,
    shown_offer_ids: Sequence[str],
    ctx: Context,
    rng: random.Random,
    catalog: Catalog,
    appetite: int = 1,
) -> tuple[str, ...]:
    """What the customer buys of the shown offers: at most `appetite` of them.

    Each shown offer gets an independent yes with probability `p_yes`; of the yeses the
    customer buys the `appetite` they want most (ties: first shown). One draw per shown id,
    in order, so the answer depends only on the rng state and what was shown, and a lone
    shown offer sells with probability exactly `p_yes`. Unknown ids are never bought.
    """
    yeses: list[tuple[float, int, str]] = []
    seen: set[str] = set()
    for i, offer_id in enumerate(shown_offer_ids):
        u = rng.random()
        offer = catalog.offers.get(offer_id)
        if offer is None or offer_id in seen:
            continue
        seen.add(offer_id)
        p = p_yes(customer, offer, ctx)
        if u < p:
            yeses.append((-p, i, offer_id))
    return tuple(offer_id for _, _, offer_id in sorted(yeses)[: max(0, appetite)])


def population(catalog: Catalog, seed: int, n: int) -> tuple[SimCustomer, ...]:
    """`n` customers with their hidden tastes, from `seed` and the catalog alone."""
    rng = random.Random(f"{seed}:population")
    offers = list(catalog.offers.values())
    categories = sorted({o.category for o in offers})
    prices = sorted(o.price for o in offers)
    median_price = prices[len(prices) // 2]
    stores = list(catalog.stores.values())
    store_weights = [max(1, s.lanes) for s in stores]
    width = max(4, len(str(n - 1)))
    # What a segment's members share: a taste for some categories and tags, against others.
    segments = []
    for _ in range(SEGMENTS):
        loved = set(rng.sample(categories, min(SEGMENT_LOVED, len(categories))))
        fond = rng.choice(TASTE_TAGS)
        segments.append(
            (
                {c: SEGMENT_LOVE if c in loved else 0.0 for c in categories},
                {t: SEGMENT_LOVE / 2 if t == fond else 0.0 for t in TASTE_TAGS},
            )
        )
    personal = PERSONAL_TASTE_SD
    out = []
    for i in range(n):
        segment = rng.randrange(SEGMENTS)
        shared_category, shared_tag = segments[segment]
        category_taste = {c: shared_category[c] + rng.gauss(0.0, personal) for c in categories}
        healthy = shared_tag["healthy"] + rng.gauss(-0.1, personal)
        tag_taste = {
            "sweet": shared_tag["sweet"] + rng.gauss(0.0, personal * 6 / 7),
            "healthy": healthy,
            "treat": shared_tag["treat"] + rng.gauss(0.0, personal * 6 / 7) - 0.4 * healthy,
        }
        # Favourites lean towards what they like anyway, but anything can be one.
        weights = [
            math.exp(2.0 * category_taste[o.category] + sum(tag_taste.get(t, 0.0) for t in o.tags))
            for o in offers
        ]
        favourites = _weighted_sample(offers, weights, rng.randint(1, 3), rng)
        out.append(
            SimCustomer(
                customer_id=f"sim{seed}-c{i:0{width}d}",
                home_store=rng.choices(stores, weights=store_weights)[0].store_id,
                channel=rng.choices(SIM_CHANNELS, weights=CHANNEL_SHARE)[0],
                frequency=rng.lognormvariate(0.0, 0.6),
                category_taste=category_taste,
                tag_taste=tag_taste,
                heat_craving=rng.uniform(1.0, 2.5),
                chill_craving=rng.uniform(1.0, 2.5),
                breakfast_craving=rng.uniform(0.3, 2.0),
                budget=median_price * rng.lognormvariate(0.0, 0.3),
                price_sensitivity=rng.uniform(0.0, 1.0),
                favourites=frozenset(o.offer_id for o in favourites),
                segment=segment,
            )
        )
    return tuple(out)


def _weighted_sample(
    items: Sequence[Offer], weights: Sequence[float], k: int, rng: random.Random
) -> list[Offer]:
    """`k` distinct items, each drawn in proportion to its weight among those left."""
    pool = list(zip(items, weights, strict=True))
    out: list[Offer] = []
    while pool and len(out) < k:
        i = rng.choices(range(len(pool)), weights=[w for _, w in pool])[0]
        out.append(pool.pop(i)[0])
    return out
