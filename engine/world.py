"""The simulated world behind `tailor simulate`: stores with weather and lane queues, and
customers whose hidden, context-dependent tastes are the ground truth a policy must learn.

Pure and seeded: no I/O, no wall clock, no global random. The driver (engine/simulate.py)
tells the world how much real time passed; everything else follows from the seed, so the
same seed and the same calls give the same weather, visits and answers. Weather and queues
change on a fixed grid of simulated time (`TICK_S`), so they do not depend on how often the
driver happens to call `advance`.

`p_yes` is the oracle: the true probability that a customer says yes to an offer in a
context. Benchmarks compare a policy's picks against it.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from models.context import COLD_AT_C, HOT_AT_C, Context, daypart_at
from models.offer import Catalog, Offer

SIM_CHANNELS: tuple[str, ...] = ("drive_thru", "app", "web")
"""The channels simulated customers use; web and app fetch personal offers, lanes the board."""
CHANNEL_SHARE: tuple[float, ...] = (0.6, 0.25, 0.15)
TASTE_TAGS: tuple[str, ...] = ("sweet", "healthy", "treat")
"""Tags a customer has a personal taste for (hot/cold follow the weather instead)."""

TICK_S = 300.0
"""Weather, temperature and queues change every 5 simulated minutes."""
P_MIN, P_MAX = 0.02, 0.9
"""Bounds of `p_yes`: nobody is certain, and even a disliked offer sometimes sells."""

# The logit terms of p_yes (see its docstring).
BASE_LOGIT = -2.9
FAVOURITE_BOOST = 3.5
OFF_DAYPART_PENALTY = 2.5
HOT_DISLIKE = 0.5  # share of a craving that turns against the opposite items
RUSH_QUICK_BOOST = 0.4
RUSH_SLOW_PENALTY = 0.4
SLOW_PREP_S = 150
WET_COMFORT = 0.3
_WET = frozenset({"rain", "snow"})

# How long the lanes get: Gaussian bumps at the meal peaks (local hour, width, height).
MEAL_PEAKS: tuple[tuple[float, float, float], ...] = (
    (8.0, 1.0, 0.65),  # breakfast
    (12.5, 0.9, 1.0),  # lunch
    (18.5, 1.1, 0.85),  # dinner
)


def _clamp(x: float, lo: float, hi: float) -> float:
    return lo if x < lo else hi if x > hi else x


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _poisson(rng: random.Random, lam: float) -> int:
    """A Poisson draw (Knuth): queues are counts of cars, so they are never negative."""
    if lam <= 0:
        return 0
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def _local_hour(ts: float, utc_offset_h: float) -> float:
    return ((ts / 3600.0) + utc_offset_h) % 24.0


def is_breakfast_item(offer: Offer) -> bool:
    """Breakfast food: the breakfast category, or sold at breakfast only (catalog-agnostic)."""
    return offer.category == "breakfast" or offer.dayparts == frozenset({"breakfast"})


def heat_of(temperature_c: float | None) -> float:
    """0..1, how hot it feels: 0 at `HOT_AT_C` - 4 °C or below, 1 at `HOT_AT_C` and above."""
    if temperature_c is None:
        return 0.0
    return _clamp((temperature_c - (HOT_AT_C - 4.0)) / 4.0, 0.0, 1.0)


def chill_of(temperature_c: float | None) -> float:
    """0..1, how cold it feels: 0 at `COLD_AT_C` + 4 °C or above, 1 at `COLD_AT_C` and below."""
    if temperature_c is None:
        return 0.0
    return _clamp(((COLD_AT_C + 4.0) - temperature_c) / 4.0, 0.0, 1.0)


def meal_intensity(local_hour: float) -> float:
    """How busy the lanes are at a local hour: ~0.1 off-peak by day, ~1 at the lunch peak."""
    bumps = sum(
        height * math.exp(-((local_hour - mu) ** 2) / (2 * width**2))
        for mu, width, height in MEAL_PEAKS
    )
    awake = 0.1 if 6.0 <= local_hour < 23.0 else 0.0
    return awake + bumps


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

    def __hash__(self) -> int:  # the taste mappings are not hashable; the id is unique
        return hash(self.customer_id)


def p_yes(customer: SimCustomer, offer: Offer, ctx: Context) -> float:
    """The true probability that `customer` says yes to `offer` in `ctx` (the oracle).

    A logistic model, clipped to [P_MIN, P_MAX]; the logit is the sum of:
      - BASE_LOGIT (about 8 % for an offer nobody feels anything about);
      - the customer's taste for the offer's category, plus their taste for each of its
        TASTE_TAGS (sweet, healthy, treat);
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
    return _clamp(_sigmoid(logit), P_MIN, P_MAX)


def choose(
    customer: SimCustomer,
    shown_offer_ids: Sequence[str],
    ctx: Context,
    rng: random.Random,
    catalog: Catalog,
) -> str | None:
    """Which shown offer the customer buys, if any (at most one per visit).

    Each shown offer gets an independent yes with probability `p_yes`; of the yeses the
    customer buys the one they want most. One draw per shown id, in order, so the answer
    depends only on the rng state and what was shown. Unknown ids are never bought.
    """
    best: str | None = None
    best_p = 0.0
    seen: set[str] = set()
    for offer_id in shown_offer_ids:
        u = rng.random()
        offer = catalog.offers.get(offer_id)
        if offer is None or offer_id in seen:
            continue
        seen.add(offer_id)
        p = p_yes(customer, offer, ctx)
        if u < p and p > best_p:
            best, best_p = offer_id, p
    return best


@dataclass(frozen=True, slots=True)
class StoreWeather:
    """A store's conditions at a moment: what its sensors report to Tailor."""

    store_id: str
    weather: str  # sunny, cloudy, rain or snow
    temperature_c: float
    queue_length: int
    spell: str | None = None  # "hot_spell" or "cold_snap" while one is on (hidden)

    def as_json(self) -> dict[str, object]:
        """The body of `POST /v1/stores/{store_id}/context` and an event's `context`."""
        return {
            "weather": self.weather,
            "temperature_c": self.temperature_c,
            "queue_length": self.queue_length,
        }


@dataclass(frozen=True, slots=True)
class Visit:
    """One customer at one touchpoint: who, where, through which channel, when, in what."""

    seq: int
    customer: SimCustomer
    store_id: str
    channel: str
    ts: datetime
    conditions: StoreWeather
    context: Context
    slots: int  # how many offers the screen shows (3..6)
    answer_seed: int  # seeds this visit's answers, whatever order visits complete in


@dataclass(frozen=True, slots=True)
class Answer:
    """How a customer reacted to what they were shown."""

    purchase: str | None = None
    clicks: tuple[str, ...] = ()
    dismissed: tuple[str, ...] = ()


class SimClock:
    """Simulated time: `start` plus real seconds * `speed` (simulated seconds per real one)."""

    def __init__(self, start: datetime, speed: float = 60.0) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be > 0, got {speed}")
        self.start = start.replace(tzinfo=UTC) if start.tzinfo is None else start
        self.speed = speed
        self.elapsed_s = 0.0  # simulated seconds since start

    def advance(self, real_seconds: float) -> datetime:
        """Move on by `real_seconds` of real time; returns the new simulated time."""
        return self.advance_sim(max(0.0, real_seconds) * self.speed)

    def advance_sim(self, sim_seconds: float) -> datetime:
        self.elapsed_s += max(0.0, sim_seconds)
        return self.now

    @property
    def now(self) -> datetime:
        return self.start + timedelta(seconds=self.elapsed_s)

    @property
    def ts(self) -> float:
        """The simulated time as a UNIX timestamp (what `daypart_at` takes)."""
        return self.start.timestamp() + self.elapsed_s


@dataclass(frozen=True, slots=True)
class _Climate:
    """A store's hidden climate: where its temperature curve sits and how busy it is."""

    base_c: float
    amplitude_c: float
    busyness: float


@dataclass(slots=True)
class _Spell:
    kind: str  # hot_spell | cold_snap
    start: int  # tick
    ticks: int
    delta_c: float

    def offset(self, tick: int) -> float:
        """A trapezoid: one hour in, a plateau, one hour out, so temperature moves smoothly."""
        ramp = max(1, min(12, self.ticks // 3))
        k = tick - self.start
        envelope = _clamp(min(k / ramp, (self.ticks - k) / ramp), 0.0, 1.0)
        return self.delta_c * envelope


@dataclass(slots=True)
class _StoreState:
    rng: random.Random
    noise_c: float
    cloud: float
    queue: float
    spell: _Spell | None = None
    history: list[str] = field(default_factory=list)  # spells so far, for the curious


class World:
    """Stores, weather, queues, customers and a clock, all from one seed."""

    def __init__(
        self,
        catalog: Catalog,
        *,
        start: datetime,
        seed: int = 7,
        customers: int = 500,
        speed: float = 60.0,
        spell_chance: float = 1 / 144,
    ) -> None:
        if not catalog.offers or not catalog.stores:
            raise ValueError("the world needs a catalog with at least one offer and one store")
        if customers < 1:
            raise ValueError(f"customers must be >= 1, got {customers}")
        self.catalog = catalog
        self.seed = seed
        self.clock = SimClock(start, speed)
        self.spell_chance = spell_chance
        self.store_ids: tuple[str, ...] = tuple(catalog.stores)
        self.customers: tuple[SimCustomer, ...] = self._population(customers)
        self.by_id: dict[str, SimCustomer] = {c.customer_id: c for c in self.customers}
        self._cum_freq = list(_cumsum(c.frequency for c in self.customers))
        self._visit_rng = random.Random(f"{seed}:visits")
        self.answer_rng = random.Random(f"{seed}:answers")
        self._seq = 0
        self._climate: dict[str, _Climate] = {}
        self._state: dict[str, _StoreState] = {}
        self._now: dict[str, StoreWeather] = {}
        for store_id in self.store_ids:
            rng = random.Random(f"{seed}:store:{store_id}")
            self._climate[store_id] = _Climate(
                base_c=rng.uniform(11.0, 21.0),
                amplitude_c=rng.uniform(4.0, 7.0),
                busyness=rng.uniform(0.8, 1.25),
            )
            self._state[store_id] = _StoreState(
                rng=rng, noise_c=rng.gauss(0.0, 1.0), cloud=rng.uniform(0.2, 0.8), queue=0.0
            )
        self._tick = 0
        for store_id in self.store_ids:
            self._now[store_id] = self._step(store_id, 0, first=True)

    # ---- population --------------------------------------------------------------------

    def _population(self, n: int) -> tuple[SimCustomer, ...]:
        rng = random.Random(f"{self.seed}:population")
        offers = list(self.catalog.offers.values())
        categories = sorted({o.category for o in offers})
        prices = sorted(o.price for o in offers)
        median_price = prices[len(prices) // 2]
        stores = list(self.catalog.stores.values())
        store_weights = [max(1, s.lanes) for s in stores]
        width = max(4, len(str(n - 1)))
        out = []
        for i in range(n):
            category_taste = {c: rng.gauss(0.0, 0.7) for c in categories}
            healthy = rng.gauss(-0.1, 0.7)
            tag_taste = {
                "sweet": rng.gauss(0.0, 0.6),
                "healthy": healthy,
                "treat": rng.gauss(0.0, 0.6) - 0.4 * healthy,
            }
            # Favourites lean towards what they like anyway, but anything can be one.
            weights = [
                math.exp(
                    2.0 * category_taste[o.category] + sum(tag_taste.get(t, 0.0) for t in o.tags)
                )
                for o in offers
            ]
            favourites = _weighted_sample(offers, weights, rng.randint(1, 3), rng)
            out.append(
                SimCustomer(
                    customer_id=f"sim{self.seed}-c{i:0{width}d}",
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
                )
            )
        return tuple(out)

    # ---- time, weather, queues ---------------------------------------------------------

    def advance(self, real_seconds: float) -> tuple[str, ...]:
        """Let `real_seconds` of real time pass; returns the stores whose conditions changed."""
        return self.advance_sim(max(0.0, real_seconds) * self.clock.speed)

    def advance_sim(self, sim_seconds: float) -> tuple[str, ...]:
        """Let `sim_seconds` of simulated time pass; returns the stores whose conditions changed."""
        self.clock.advance_sim(sim_seconds)
        target = int(self.clock.elapsed_s // TICK_S)
        before = dict(self._now)
        while self._tick < target:
            self._tick += 1
            for store_id in self.store_ids:
                self._now[store_id] = self._step(store_id, self._tick)
        return tuple(s for s in self.store_ids if before[s].as_json() != self._now[s].as_json())

    def _step(self, store_id: str, tick: int, *, first: bool = False) -> StoreWeather:
        """The store's conditions at `tick`: a daily curve, noise, spells, clouds, queue."""
        st, cl = self._state[store_id], self._climate[store_id]
        store = self.catalog.stores[store_id]
        rng = st.rng
        ts = self.clock.start.timestamp() + tick * TICK_S
        hour = _local_hour(ts, store.utc_offset_h)
        if not first:
            st.noise_c = 0.97 * st.noise_c + rng.gauss(0.0, 0.25)
        if st.spell is not None and tick >= st.spell.start + st.spell.ticks:
            st.spell = None
        if st.spell is None and not first and rng.random() < self.spell_chance:
            hot = rng.random() < 0.5
            st.spell = _Spell(
                kind="hot_spell" if hot else "cold_snap",
                start=tick,
                ticks=rng.randint(36, 96),  # 3 to 8 hours
                delta_c=(1 if hot else -1) * rng.uniform(8.0, 12.0),
            )
            st.history.append(st.spell.kind)
        spell = st.spell.offset(tick) if st.spell else 0.0
        diurnal = cl.amplitude_c * math.cos(2 * math.pi * (hour - 15.0) / 24.0)
        temperature = round(_clamp(cl.base_c + diurnal + st.noise_c + spell, -40.0, 50.0), 1)

        target = 0.5
        if st.spell is not None:
            target = 0.15 if st.spell.kind == "hot_spell" else 0.7
        if not first:
            st.cloud = _clamp(0.9 * st.cloud + 0.1 * target + rng.gauss(0.0, 0.08), 0.0, 1.0)
        wet_at = 0.9 if temperature >= HOT_AT_C else 0.8
        cloudy_at = 0.6 if temperature >= HOT_AT_C else 0.45
        if st.cloud >= wet_at:
            weather = "snow" if temperature <= 1.0 else "rain"
        elif st.cloud >= cloudy_at:
            weather = "cloudy"
        else:
            weather = "sunny"

        lam = cl.busyness * (0.4 + 9.0 * meal_intensity(hour))
        drawn = _poisson(rng, lam)
        st.queue = drawn if first else 0.5 * st.queue + 0.5 * drawn
        return StoreWeather(
            store_id,
            weather,
            temperature,
            round(st.queue),
            st.spell.kind if st.spell else None,
        )

    def conditions(self, store_id: str) -> StoreWeather:
        """The store's weather, temperature and queue now."""
        return self._now[store_id]

    def context(self, store_id: str, channel: str | None = None) -> Context:
        """The store's context now, as the engine's models see one."""
        now = self._now[store_id]
        store = self.catalog.stores[store_id]
        return Context(
            daypart=daypart_at(self.clock.ts, store.utc_offset_h),
            weather=now.weather,
            temperature_c=now.temperature_c,
            queue_length=now.queue_length,
            channel=channel,
        )

    def spells(self, store_id: str) -> tuple[str, ...]:
        """The hot spells and cold snaps the store has had so far (for demos and tests)."""
        return tuple(self._state[store_id].history)

    # ---- visits and answers ------------------------------------------------------------

    def next_visit(self) -> Visit:
        """The next customer to turn up: weighted by how often each comes, mostly at their
        home store through their preferred channel (web and app always at the home store)."""
        rng = self._visit_rng
        customer = rng.choices(self.customers, cum_weights=self._cum_freq)[0]
        channel = customer.channel
        if rng.random() >= 0.85:
            channel = rng.choice([c for c in SIM_CHANNELS if c != customer.channel])
        store_id = customer.home_store
        if channel == "drive_thru" and rng.random() >= 0.85:
            store_id = rng.choice(self.store_ids)
        slots = rng.randint(3, 6)
        answer_seed = rng.getrandbits(64)
        self._seq += 1
        return Visit(
            seq=self._seq,
            customer=customer,
            store_id=store_id,
            channel=channel,
            ts=self.clock.now,
            conditions=self._now[store_id],
            context=self.context(store_id, channel),
            slots=slots,
            answer_seed=answer_seed,
        )

    def p_yes(self, customer: SimCustomer, offer_id: str, ctx: Context) -> float:
        """`p_yes` by offer id; 0 for an offer the catalog does not know."""
        offer = self.catalog.offers.get(offer_id)
        return p_yes(customer, offer, ctx) if offer else 0.0

    def choose(
        self,
        customer: SimCustomer,
        shown_offer_ids: Sequence[str],
        ctx: Context,
        rng: random.Random | None = None,
    ) -> str | None:
        """`choose` over this world's catalog (the world's answer rng when none is given)."""
        return choose(customer, shown_offer_ids, ctx, rng or self.answer_rng, self.catalog)

    def answer(
        self, visit: Visit, shown_offer_ids: Sequence[str], rng: random.Random | None = None
    ) -> Answer:
        """The whole reaction to a visit: a purchase or none; on web and app, sometimes a
        click first (or a click that does not end in a purchase) and sometimes a dismiss of
        the least wanted offer. Seeded by the visit, so concurrent visits stay reproducible."""
        rng = rng or random.Random(visit.answer_seed)
        ctx, customer = visit.context, visit.customer
        purchase = self.choose(customer, shown_offer_ids, ctx, rng)
        if visit.channel == "drive_thru":
            return Answer(purchase)
        known = [o for o in dict.fromkeys(shown_offer_ids) if o in self.catalog.offers]
        wants = {o: self.p_yes(customer, o, ctx) for o in known}
        clicks: tuple[str, ...] = ()
        dismissed: tuple[str, ...] = ()
        if purchase is not None:
            if rng.random() < 0.6:
                clicks = (purchase,)
        elif known and rng.random() < 0.2:
            clicks = (max(known, key=lambda o: wants[o]),)
        rest = [o for o in known if o != purchase and o not in clicks]
        if rest and rng.random() < 0.3:
            dismissed = (min(rest, key=lambda o: wants[o]),)
        return Answer(purchase, clicks, dismissed)


def _cumsum(xs: Iterable[float]) -> Iterable[float]:
    total = 0.0
    for x in xs:
        total += x
        yield total


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
