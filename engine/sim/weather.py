"""The simulated clock and every store's weather, temperature and lane queue.

Pure and seeded: each store draws from its own generator, seeded by the world's seed and
its id. Conditions change on a fixed grid of simulated time (`TICK_S`), so they do not
depend on how often the driver happens to call `advance`: a daily temperature curve with
slow noise, now and then a hot spell or a cold snap, clouds that turn to rain or snow,
and queues that peak at meal times.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from models.context import COLD_AT_C, HOT_AT_C
from models.offer import Catalog

TICK_S = 300.0
"""Weather, temperature and queues change every 5 simulated minutes."""

# How long the lanes get: Gaussian bumps at the meal peaks (local hour, width, height).
MEAL_PEAKS: tuple[tuple[float, float, float], ...] = (
    (8.0, 1.0, 0.65),  # breakfast
    (12.5, 0.9, 1.0),  # lunch
    (18.5, 1.1, 0.85),  # dinner
)


def clamp(x: float, lo: float, hi: float) -> float:
    return lo if x < lo else hi if x > hi else x


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


def heat_of(temperature_c: float | None) -> float:
    """0..1, how hot it feels: 0 at `HOT_AT_C` - 4 °C or below, 1 at `HOT_AT_C` and above."""
    if temperature_c is None:
        return 0.0
    return clamp((temperature_c - (HOT_AT_C - 4.0)) / 4.0, 0.0, 1.0)


def chill_of(temperature_c: float | None) -> float:
    """0..1, how cold it feels: 0 at `COLD_AT_C` + 4 °C or above, 1 at `COLD_AT_C` and below."""
    if temperature_c is None:
        return 0.0
    return clamp(((COLD_AT_C + 4.0) - temperature_c) / 4.0, 0.0, 1.0)


def meal_intensity(local_hour: float) -> float:
    """How busy the lanes are at a local hour: ~0.1 off-peak by day, ~1 at the lunch peak."""
    bumps = sum(
        height * math.exp(-((local_hour - mu) ** 2) / (2 * width**2))
        for mu, width, height in MEAL_PEAKS
    )
    awake = 0.1 if 6.0 <= local_hour < 23.0 else 0.0
    return awake + bumps


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
        envelope = clamp(min(k / ramp, (self.ticks - k) / ramp), 0.0, 1.0)
        return self.delta_c * envelope


@dataclass(slots=True)
class _StoreState:
    rng: random.Random
    noise_c: float
    cloud: float
    queue: float
    spell: _Spell | None = None
    history: list[str] = field(default_factory=list)  # spells so far, for the curious


class StoreConditions:
    """Every store's weather, temperature and queue, stepped on the `TICK_S` grid from
    `start` (an aware datetime, the clock's start)."""

    def __init__(
        self, catalog: Catalog, start: datetime, *, seed: int, spell_chance: float
    ) -> None:
        self.catalog = catalog
        self.start = start
        self.spell_chance = spell_chance
        self.store_ids: tuple[str, ...] = tuple(catalog.stores)
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

    def advance_to(self, elapsed_s: float) -> tuple[str, ...]:
        """Step every store up to `elapsed_s` simulated seconds after `start`; returns the
        stores whose conditions changed."""
        target = int(elapsed_s // TICK_S)
        before = dict(self._now)
        while self._tick < target:
            self._tick += 1
            for store_id in self.store_ids:
                self._now[store_id] = self._step(store_id, self._tick)
        return tuple(s for s in self.store_ids if before[s].as_json() != self._now[s].as_json())

    def conditions(self, store_id: str) -> StoreWeather:
        """The store's weather, temperature and queue now."""
        return self._now[store_id]

    def spells(self, store_id: str) -> tuple[str, ...]:
        """The hot spells and cold snaps the store has had so far."""
        return tuple(self._state[store_id].history)

    def _step(self, store_id: str, tick: int, *, first: bool = False) -> StoreWeather:
        """The store's conditions at `tick`: a daily curve, noise, spells, clouds, queue."""
        st, cl = self._state[store_id], self._climate[store_id]
        store = self.catalog.stores[store_id]
        rng = st.rng
        ts = self.start.timestamp() + tick * TICK_S
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
        temperature = round(clamp(cl.base_c + diurnal + st.noise_c + spell, -40.0, 50.0), 1)

        target = 0.5
        if st.spell is not None:
            target = 0.15 if st.spell.kind == "hot_spell" else 0.7
        if not first:
            st.cloud = clamp(0.9 * st.cloud + 0.1 * target + rng.gauss(0.0, 0.08), 0.0, 1.0)
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
