"""The simulated world and the simulator's event building: pure, no servers."""

from __future__ import annotations

import asyncio
import json
import random
import statistics
from dataclasses import replace
from datetime import UTC, datetime

import httpx
import pytest

from config.catalog import load_catalog
from engine.sim.customers import P_MAX, P_MIN, SimCustomer, is_breakfast_item, p_yes
from engine.sim.payloads import build_events, catalog_from_api, iso_utc
from engine.sim.simulate import simulate
from engine.sim.weather import TICK_S
from engine.sim.world import Answer, World
from engine.wire.events import Identification, Interaction
from models.context import Context
from models.offer import Catalog

START = datetime(2026, 11, 22, 6, 0, tzinfo=UTC)
CATALOG = load_catalog()


def world(seed: int = 7, customers: int = 200, **kw: object) -> World:
    return World(CATALOG, start=START, seed=seed, customers=customers, **kw)  # type: ignore[arg-type]


def play(w: World, visits: int) -> list[tuple[str, str, str, str, str | None]]:
    """Visits with a fixed screen (the first offers on sale) and what each customer bought."""
    out = []
    for _ in range(visits):
        w.advance_sim(97.0)
        v = w.next_visit()
        on_sale = [o.offer_id for o in CATALOG.available(v.store_id, v.context.daypart)]
        shown = on_sale[: v.slots]
        out.append(
            (
                v.customer.customer_id,
                v.store_id,
                v.channel,
                iso_utc(v.ts),
                w.answer(v, shown).purchases,
            )
        )
    return out


def ctx(daypart: str = "lunch", temperature_c: float | None = 18.0, **kw: object) -> Context:
    return Context(daypart=daypart, weather="cloudy", temperature_c=temperature_c, **kw)  # type: ignore[arg-type]


def mean_p(w: World, offer_ids: list[str], c: Context) -> float:
    return statistics.mean(p_yes(cu, CATALOG.offers[o], c) for cu in w.customers for o in offer_ids)


def tagged(tag: str) -> list[str]:
    return [o.offer_id for o in CATALOG.offers.values() if tag in o.tags]


# ---- determinism ---------------------------------------------------------------------------


def test_same_seed_same_world() -> None:
    a, b = world(seed=3), world(seed=3)
    assert a.customers == b.customers
    assert play(a, 400) == play(b, 400)
    assert [a.conditions(s) for s in a.store_ids] == [b.conditions(s) for s in b.store_ids]


def test_different_seed_different_world() -> None:
    a, b = world(seed=3), world(seed=4)
    assert a.customers != b.customers
    assert play(a, 200) != play(b, 200)


def test_weather_does_not_depend_on_step_size() -> None:
    """Conditions change on a fixed grid of simulated time, however the driver advances."""
    a, b = world(), world()
    a.advance_sim(6 * 3600)
    for _ in range(6 * 36):
        b.advance_sim(100.0)
    assert [a.conditions(s) for s in a.store_ids] == [b.conditions(s) for s in b.store_ids]


def test_answers_depend_only_on_the_visit() -> None:
    """Visits complete in any order in the driver; each one's answer comes from its own seed."""
    w = world()
    visits = [w.next_visit() for _ in range(50)]
    shown = [o.offer_id for o in CATALOG.available("s-1", "breakfast")]
    forward = [w.answer(v, shown) for v in visits]
    backward = [w.answer(v, shown) for v in reversed(visits)]
    assert forward == backward[::-1]


# ---- hidden preferences ---------------------------------------------------------------------


def test_p_yes_is_bounded() -> None:
    w = world(customers=100)
    for daypart in ("breakfast", "lunch", "late"):
        for temp in (-10.0, 5.0, 18.0, 35.0, None):
            for queue in (0, 12):
                c = Context(daypart, "rain", temp, queue, "drive_thru")
                for cu in w.customers:
                    for offer in CATALOG.offers.values():
                        assert P_MIN <= p_yes(cu, offer, c) <= P_MAX


def test_cold_items_sell_better_when_hot() -> None:
    w = world()
    cold, hot = tagged("cold"), tagged("hot")
    assert mean_p(w, cold, ctx(temperature_c=30.0)) > 1.5 * mean_p(w, cold, ctx(temperature_c=5.0))
    assert mean_p(w, hot, ctx(temperature_c=5.0)) > 1.5 * mean_p(w, hot, ctx(temperature_c=30.0))


def test_breakfast_items_sell_better_at_breakfast() -> None:
    w = world()
    breakfast = [o.offer_id for o in CATALOG.offers.values() if is_breakfast_item(o)]
    assert breakfast
    at_breakfast = mean_p(w, breakfast, ctx("breakfast"))
    assert at_breakfast > 1.5 * mean_p(w, breakfast, ctx("lunch"))
    assert at_breakfast > 1.5 * mean_p(w, breakfast, ctx("dinner"))


def test_a_favourite_beats_the_median_offer() -> None:
    w = world()
    wins, gaps = 0, []
    for cu in w.customers:
        assert 1 <= len(cu.favourites) <= 3
        fav = CATALOG.offers[sorted(cu.favourites)[0]]
        daypart = sorted(fav.dayparts)[0]
        c = ctx(daypart)
        median = statistics.median(p_yes(cu, o, c) for o in CATALOG.available(None, daypart))
        gap = p_yes(cu, fav, c) - median
        wins += gap > 0
        gaps.append(gap)
    assert wins >= 0.95 * len(w.customers)
    assert statistics.mean(gaps) > 0.3


def test_customers_differ() -> None:
    """Personal tastes: the same offer in the same context is liked very differently."""
    w = world()
    ps = [p_yes(cu, CATALOG.offers["classic-burger"], ctx()) for cu in w.customers]
    assert max(ps) - min(ps) > 0.4
    assert {cu.channel for cu in w.customers} == {"drive_thru", "app", "web"}
    assert {cu.home_store for cu in w.customers} == set(CATALOG.stores)


def test_choose_only_returns_what_was_shown() -> None:
    w = world()
    rng = random.Random(1)
    bought, baskets = 0, 0
    for i in range(2000):
        cu = w.customers[i % len(w.customers)]
        shown = rng.sample(list(CATALOG.offers), rng.randint(0, 6))
        appetite = 1 + i % 3
        choice = w.choose(cu, shown, ctx(), rng, appetite)
        assert set(choice) <= set(shown) and len(set(choice)) == len(choice) <= appetite
        wants = [p_yes(cu, CATALOG.offers[o], ctx()) for o in choice]
        assert wants == sorted(wants, reverse=True), "the most wanted first"
        bought += bool(choice)
        baskets += len(choice) > 1
    assert 0 < bought < 2000
    assert baskets > 0, "an appetite for more buys more than one item sometimes"
    assert w.choose(w.customers[0], ["no-such-offer"] * 5, ctx(), rng, 3) == ()


def test_a_sure_favourite_is_usually_bought() -> None:
    w = world()
    cu = replace(w.customers[0], favourites=frozenset({"cola"}))
    rng = random.Random(2)
    hits = sum(w.choose(cu, ["cola"], ctx(), rng) == ("cola",) for _ in range(1000))
    assert hits > 1000 * p_yes(cu, CATALOG.offers["cola"], ctx()) - 60
    assert p_yes(cu, CATALOG.offers["cola"], ctx()) > 0.5


# ---- clock, weather, queues -----------------------------------------------------------------


def test_clock_advances_by_speed() -> None:
    w = world(speed=60.0)
    w.advance(10.0)
    assert (w.clock.now - START).total_seconds() == pytest.approx(600.0)
    assert w.clock.ts == pytest.approx(START.timestamp() + 600.0)
    w.advance(-5.0)  # time never runs backwards
    assert (w.clock.now - START).total_seconds() == pytest.approx(600.0)
    assert w.context("s-1").daypart == "breakfast"
    w.advance(6 * 60.0)  # six real minutes: six simulated hours, 12:10
    assert w.context("s-1").daypart == "lunch"


def test_advance_reports_changed_stores() -> None:
    w = world()
    assert w.advance_sim(TICK_S / 2) == ()  # no tick passed, nothing changed
    changed = w.advance_sim(TICK_S)
    assert changed
    assert set(changed) <= set(CATALOG.stores)


def test_queues_peak_at_lunch() -> None:
    lunch, afternoon = [], []
    for seed in range(8):
        w = world(seed=seed, customers=1)
        for day in range(4):
            start_of_day = day * 86400.0  # the clock starts at 06:00
            w.advance_sim(start_of_day + 6.5 * 3600 - w.clock.elapsed_s)  # 12:30
            lunch += [w.conditions(s).queue_length for s in w.store_ids]
            w.advance_sim(3 * 3600)  # 15:30
            afternoon += [w.conditions(s).queue_length for s in w.store_ids]
    assert statistics.mean(lunch) > 2 * statistics.mean(afternoon)


def test_temperature_follows_the_day_and_weather_fits_it() -> None:
    w = world(spell_chance=0.0)
    dawn = {s: w.conditions(s).temperature_c for s in w.store_ids}
    w.advance_sim(9 * 3600)  # 15:00, the warmest hour
    for s in w.store_ids:
        assert w.conditions(s).temperature_c > dawn[s]
    seen: set[str] = set()
    for _ in range(3 * 288):
        w.advance_sim(TICK_S)
        for s in w.store_ids:
            c = w.conditions(s)
            seen.add(c.weather)
            assert c.weather != "snow" or c.temperature_c <= 1.0
            assert c.queue_length >= 0
    assert {"sunny", "cloudy"} <= seen


def test_spells_happen_and_move_the_temperature() -> None:
    w = world(spell_chance=1 / 50)
    calm = world(spell_chance=0.0)
    biggest = 0.0
    for _ in range(288):
        w.advance_sim(TICK_S)
        calm.advance_sim(TICK_S)
        for s in w.store_ids:
            biggest = max(
                biggest, abs(w.conditions(s).temperature_c - calm.conditions(s).temperature_c)
            )
    assert any(w.spells(s) for s in w.store_ids)
    assert biggest > 6.0


# ---- the driver's events --------------------------------------------------------------------


def test_build_events_validate_as_interactions() -> None:
    w = world()
    kinds: set[str] = set()
    for i in range(600):
        w.advance_sim(120.0)
        v = w.next_visit()
        shown = [o.offer_id for o in CATALOG.available(v.store_id, v.context.daypart)][: v.slots]
        answer = w.answer(v, shown)
        decision_id = None if i % 10 == 0 else f"d-{i}"
        events = build_events(v, shown, decision_id, answer, CATALOG)
        parsed = [Interaction.model_validate(e) for e in events]
        kinds |= {e.type for e in parsed}
        assert [e.type for e in parsed[: len(shown)]] == ["impression"] * len(shown)
        assert [e.offer_id for e in parsed[: len(shown)]] == shown
        assert len({e.event_id for e in parsed}) == len(parsed)
        for e in parsed:
            assert e.customer_id == v.customer.customer_id
            assert e.store_id == v.store_id
            assert e.channel == v.channel
            assert e.decision_id == decision_id
            assert e.ts >= v.ts.replace(microsecond=0)
            assert e.context is not None
            assert e.context.queue_length == v.conditions.queue_length
        purchases = [e for e in parsed if e.type == "purchase"]
        assert [e.offer_id for e in purchases] == list(answer.purchases)
        assert len(answer.purchases) <= v.appetite
        for e in purchases:
            assert e.value == CATALOG.offers[e.offer_id].price
        if v.channel == "drive_thru":
            assert {e.type for e in parsed} <= {"impression", "purchase"}
    assert kinds == {"impression", "click", "purchase", "dismiss"}


def test_build_events_wire_format() -> None:
    w = world()
    v = w.next_visit()
    ids = iter(["a" * 32, "b" * 32])
    events = build_events(
        v, ["coffee"], "d-1", Answer(purchases=("coffee",)), CATALOG, new_id=lambda: next(ids)
    )
    assert [e["type"] for e in events] == ["impression", "purchase"]
    assert events[0]["ts"] == "2026-11-22T06:00:00Z"
    assert events[1]["ts"] == "2026-11-22T06:00:20Z"
    assert events[1]["value"] == CATALOG.offers["coffee"].price
    assert "value" not in events[0]
    assert set(events[0]["context"]) == {"weather", "temperature_c", "queue_length"}


def test_catalog_from_api_round_trips() -> None:
    stores = {"stores": [s.as_json() for s in CATALOG.stores.values()]}
    offers = {"offers": [o.as_json() for o in CATALOG.offers.values()]}
    rebuilt: Catalog = catalog_from_api(stores, offers)
    assert rebuilt == CATALOG
    a = World(rebuilt, start=START, seed=5, customers=50)
    b = World(CATALOG, start=START, seed=5, customers=50)
    assert a.customers == b.customers


def test_sim_customer_is_hashable() -> None:
    w = world(customers=10)
    assert len(set(w.customers)) == 10
    assert isinstance(w.customers[0], SimCustomer)


# ---- the driver against a stand-in API (httpx.MockTransport: no server) -----------------------


async def test_simulate_sends_only_valid_events() -> None:
    """A short run against a mock of the API contract: every event must validate, boards
    503 at first (the driver falls back), and the summary adds up."""
    stores = {"stores": [s.as_json() for s in CATALOG.stores.values()]}
    offers = {"offers": [o.as_json() for o in CATALOG.offers.values()]}
    got: dict[str, int] = {
        "context": 0, "events": 0, "purchase": 0, "bought": 0, "board": 0, "scans": 0
    }  # fmt: skip
    scanned: set[tuple[str, int]] = set()  # lanes whose board turns to a scanned customer

    def ranked(ids: list[str]) -> list[dict[str, object]]:
        return [{"offer_id": o, "score": 1.0, "reasons": ["test"]} for o in ids]

    async def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/v1/stores":
            return httpx.Response(200, json=stores)
        if path == "/v1/offers":
            return httpx.Response(200, json=offers)
        if path.endswith("/context"):
            body = json.loads(request.content)
            assert set(body) == {"weather", "temperature_c", "queue_length"}
            got["context"] += 1
            return httpx.Response(202, json={"accepted": 1})
        if path.endswith("/board"):
            store_id, lane = path.split("/")[3], int(request.url.params["lane"])
            assert 1 <= lane <= CATALOG.stores[store_id].lanes
            got["board"] += 1
            if got["board"] <= 5:
                return httpx.Response(503, json={"error": "no board yet"})
            source = "lane" if (store_id, lane) in scanned else "store"
            scanned.discard((store_id, lane))
            return httpx.Response(
                200,
                json={
                    "decision_id": "b-1" if source == "store" else f"d-{got['board']}",
                    "source": source,
                    "offers": ranked(list(CATALOG.offers)[:6]),
                },
            )
        if path.endswith("/offers"):
            assert request.url.params["store_id"] in CATALOG.stores
            assert request.url.params["channel"] in {"drive_thru", "web", "app"}
            return httpx.Response(
                200,
                json={
                    "source": "global",
                    "decision_id": "g-1",
                    "offers": ranked(list(CATALOG.offers)[-6:]),
                },
            )
        if path == "/v1/events":
            body = json.loads(request.content)
            assert isinstance(body, list)
            if [e["type"] for e in body] == ["identify"]:  # a loyalty scan, alone
                scan = Identification.model_validate(body[0])
                scanned.add((scan.store_id, scan.lane))
                got["scans"] += 1
                return httpx.Response(202, json={"accepted": 1})
            for e in body:
                Interaction.model_validate(e)
                got["purchase"] += e["type"] == "purchase"
            got["bought"] += any(e["type"] == "purchase" for e in body)  # one visit a post
            got["events"] += len(body)
            return httpx.Response(202, json={"accepted": len(body)})
        return httpx.Response(404, json={"error": path})

    lines: list[str] = []
    summary = await simulate(
        "http://tailor.test",
        rate=200.0,
        duration=1.0,
        seed=7,
        customers=100,
        speed=3600.0,
        progress=lines.append,
        start=START,
        transport=httpx.MockTransport(handler),
    )
    assert summary.errors == 0, summary.first_errors
    assert summary.visits > 50
    assert summary.events == got["events"] > summary.visits
    assert summary.purchases == got["bought"] > 0
    assert got["purchase"] >= got["bought"]
    assert summary.no_board == 5
    assert summary.scans == got["scans"] > 0
    assert 0 < summary.personal_lanes <= summary.scans
    assert got["context"] >= len(CATALOG.stores)
    assert summary.sim_time is not None
    assert summary.sim_time > START
    assert lines[-1].endswith("done")


async def test_simulate_stops_on_cancel() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, json={"error": "down"})

    task = asyncio.create_task(
        simulate(
            "http://tailor.test",
            rate=10.0,
            duration=None,
            seed=7,
            customers=10,
            speed=60.0,
            progress=None,
            transport=httpx.MockTransport(handler),
        )
    )
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
