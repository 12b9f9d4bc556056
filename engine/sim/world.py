"""The simulated world behind `tailor simulate`: stores with weather and lane queues, and
customers whose hidden, context-dependent tastes are the ground truth a policy must learn.

Pure and seeded: no I/O, no wall clock, no global random. The driver (engine/sim/simulate.py)
tells the world how much real time passed; everything else follows from the seed, so the
same seed and the same calls give the same weather, visits and answers. Weather and queues
change on a fixed grid of simulated time (`TICK_S`), so they do not depend on how often the
driver happens to call `advance`.

`World` ties together the clock and the stores' conditions (`engine.sim.weather`) and the
customers with their oracle `p_yes` (`engine.sim.customers`); it decides who turns up
(`Visit`) and how they react to what they are shown (`Answer`). The names of those two
modules that callers use are re-exported here.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from engine.sim.customers import (
    CHANNEL_SHARE,
    P_MAX,
    P_MIN,
    SIM_CHANNELS,
    TASTE_TAGS,
    SimCustomer,
    choose,
    is_breakfast_item,
    p_yes,
    population,
)
from engine.sim.weather import (
    MEAL_PEAKS,
    TICK_S,
    SimClock,
    StoreConditions,
    StoreWeather,
    chill_of,
    heat_of,
    meal_intensity,
)
from models.context import Context, daypart_at
from models.offer import Catalog

__all__ = [
    "CHANNEL_SHARE",
    "MEAL_PEAKS",
    "P_MAX",
    "P_MIN",
    "SIM_CHANNELS",
    "TASTE_TAGS",
    "TICK_S",
    "Answer",
    "SimClock",
    "SimCustomer",
    "StoreWeather",
    "Visit",
    "World",
    "chill_of",
    "choose",
    "heat_of",
    "is_breakfast_item",
    "meal_intensity",
    "p_yes",
]


APPETITE, APPETITE_SHARE = (1, 2, 3), (0.6, 0.28, 0.12)
"""How many items a visit buys at most: mostly one, sometimes a meal of two or three."""


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
    appetite: int  # how many of them the customer would buy at most (1..3)
    answer_seed: int  # seeds this visit's answers, whatever order visits complete in


@dataclass(frozen=True, slots=True)
class Answer:
    """How a customer reacted to what they were shown."""

    purchases: tuple[str, ...] = ()  # most wanted first
    clicks: tuple[str, ...] = ()
    dismissed: tuple[str, ...] = ()


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
        self.customers: tuple[SimCustomer, ...] = population(catalog, seed, customers)
        self.by_id: dict[str, SimCustomer] = {c.customer_id: c for c in self.customers}
        self._cum_freq = list(_cumsum(c.frequency for c in self.customers))
        self._visit_rng = random.Random(f"{seed}:visits")
        self.answer_rng = random.Random(f"{seed}:answers")
        self._seq = 0
        self._stores = StoreConditions(
            catalog, self.clock.start, seed=seed, spell_chance=spell_chance
        )

    # ---- time, weather, queues ---------------------------------------------------------

    def advance(self, real_seconds: float) -> tuple[str, ...]:
        """Let `real_seconds` of real time pass; returns the stores whose conditions changed."""
        return self.advance_sim(max(0.0, real_seconds) * self.clock.speed)

    def advance_sim(self, sim_seconds: float) -> tuple[str, ...]:
        """Let `sim_seconds` of simulated time pass; returns the stores whose conditions changed."""
        self.clock.advance_sim(sim_seconds)
        return self._stores.advance_to(self.clock.elapsed_s)

    def conditions(self, store_id: str) -> StoreWeather:
        """The store's weather, temperature and queue now."""
        return self._stores.conditions(store_id)

    def context(self, store_id: str, channel: str | None = None) -> Context:
        """The store's context now, as the engine's models see one."""
        now = self._stores.conditions(store_id)
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
        return self._stores.spells(store_id)

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
        appetite = rng.choices(APPETITE, weights=APPETITE_SHARE)[0]
        answer_seed = rng.getrandbits(64)
        self._seq += 1
        return Visit(
            seq=self._seq,
            customer=customer,
            store_id=store_id,
            channel=channel,
            ts=self.clock.now,
            conditions=self._stores.conditions(store_id),
            context=self.context(store_id, channel),
            slots=slots,
            appetite=appetite,
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
        appetite: int = 1,
    ) -> tuple[str, ...]:
        """`choose` over this world's catalog (the world's answer rng when none is given)."""
        return choose(
            customer, shown_offer_ids, ctx, rng or self.answer_rng, self.catalog, appetite
        )

    def buys(self, visit: Visit, shown_offer_ids: Sequence[str]) -> tuple[str, ...]:
        """What the visit's customer buys of what was shown, from the visit's own seed (the
        same answer whichever policy asks, however visits interleave)."""
        return self.choose(
            visit.customer,
            shown_offer_ids,
            visit.context,
            random.Random(visit.answer_seed),
            visit.appetite,
        )

    def answer(
        self, visit: Visit, shown_offer_ids: Sequence[str], rng: random.Random | None = None
    ) -> Answer:
        """The whole reaction to a visit: up to `appetite` purchases; on web and app,
        sometimes a click before the first (or a click that does not end in a purchase) and
        sometimes a dismiss of the least wanted offer. Seeded by the visit, so concurrent
        visits stay reproducible."""
        rng = rng or random.Random(visit.answer_seed)
        ctx, customer = visit.context, visit.customer
        purchases = self.choose(customer, shown_offer_ids, ctx, rng, visit.appetite)
        if visit.channel == "drive_thru":
            return Answer(purchases)
        known = [o for o in dict.fromkeys(shown_offer_ids) if o in self.catalog.offers]
        wants = {o: self.p_yes(customer, o, ctx) for o in known}
        clicks: tuple[str, ...] = ()
        dismissed: tuple[str, ...] = ()
        if purchases:
            if rng.random() < 0.6:
                clicks = purchases[:1]
        elif known and rng.random() < 0.2:
            clicks = (max(known, key=lambda o: wants[o]),)
        rest = [o for o in known if o not in purchases and o not in clicks]
        if rest and rng.random() < 0.3:
            dismissed = (min(rest, key=lambda o: wants[o]),)
        return Answer(purchases, clicks, dismissed)


def _cumsum(xs: Iterable[float]) -> Iterable[float]:
    total = 0.0
    for x in xs:
        total += x
        yield total
