"""A personal board in the lane: a loyalty scan (`identify`) at a drive-thru lane shows the
scanned customer's offers on that lane's board for TAILOR_LANE_PERSONAL_S, then the store
board again, and nothing on it names the customer.

The first tests are in-process (the wire contract, the worker's lane boards, the API's
public shape). The end-to-end tests run a real `tailor worker` and `tailor api` on the real
Kafka and Redis (tests/conftest.py), in production mode with scoped keys, and watch lane 1
of s-1 through the API and on the board page in headless Chromium. Every wait is a poll
with a deadline; nothing asserts on how long anything took.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, cast

import httpx
import orjson
import pytest
import redis.asyncio as aioredis
from fastapi import FastAPI
from playwright.async_api import Browser, Page, expect

from config.catalog import load_catalog
from config.settings import Settings
from engine.api import board_page, lanes
from engine.api.app import parse_events
from engine.wire.events import Identification, Interaction, Rejection, decode_event
from engine.wire.serving import lane_board
from engine.worker.app import Worker
from engine.worker.batch import Batch
from engine.worker.interactions import identified, lane_boards
from models.context import daypart_at
from tests.browser_kit import WAIT_MS, watched_page
from tests.conftest import Pipeline, eventually, running_pipeline

CATALOG = load_catalog()
LANE_S = 15.0  # the pipeline's TAILOR_LANE_PERSONAL_S: long enough to see, short to wait out
TILL = "k-till-" + uuid.uuid4().hex[:8]  # ingest
LANE = "k-lane-s1-" + uuid.uuid4().hex[:8]  # store-device:s-1, as a lane's screen has
OTHER = "k-lane-s2-" + uuid.uuid4().hex[:8]  # store-device:s-2
READ = "k-web-" + uuid.uuid4().hex[:8]  # read
ADMIN = "k-ops-" + uuid.uuid4().hex[:8]  # admin: forgets customers
PRIVATE = ("customer_id", "answers", "created_at", "event_id", "channel", "session_id")


def scan(customer_id: str, lane: int = 1, store_id: str = "s-1", **extra: Any) -> dict[str, Any]:
    return {
        "event_id": "e-" + uuid.uuid4().hex,
        "type": "identify",
        "customer_id": customer_id,
        "store_id": store_id,
        "lane": lane,
        "ts": datetime.now(UTC).isoformat(),
        **extra,
    }


# ---- in-process: the contract, the worker's lane boards, the public shape ----------------


def test_a_scan_is_its_own_record_and_says_what_is_wrong_with_a_bad_one() -> None:
    got = decode_event(orjson.dumps(scan("c-1", 2)), CATALOG)
    assert isinstance(got, Identification) and got.lane == 2 and got.channel == "drive_thru"
    assert isinstance(decode_event(orjson.dumps(scan("c-1", 2, "s-2")), CATALOG), Rejection)
    bad = {
        "lane: store 's-2' has lanes 1 to 1 (got 2)": scan("c-1", 2, "s-2"),
        "not an anonymous 'anon-' session": scan("anon-77"),
        "lane: Field required": {k: v for k, v in scan("c-1").items() if k != "lane"},
        "lane: Input should be greater than or equal to 1": scan("c-1", 0),
        "offer_id: Extra inputs are not permitted": scan("c-1", offer_id="fries"),
        "unknown_store": scan("c-1", store_id="s-9"),
    }
    for words, event in bad.items():
        refused = decode_event(orjson.dumps(event), CATALOG)
        assert isinstance(refused, Rejection), event
        assert words in f"{refused.reason} {refused.detail}", refused
    # An interaction is decoded as before, and a scan is never taken for one.
    purchase = {**scan("c-1"), "type": "purchase", "offer_id": "fries"}
    del purchase["lane"]
    assert isinstance(decode_event(orjson.dumps(purchase), CATALOG), Interaction)


def test_the_api_takes_scans_beside_interactions_and_refuses_bad_lanes() -> None:
    purchase = {**scan("c-2"), "type": "purchase", "offer_id": "fries"}
    del purchase["lane"]
    events = parse_events(orjson.dumps([scan("c-2"), purchase]), CATALOG, time.time(), 300, 86400)
    assert [type(e).__name__ for e in events] == ["Identification", "Interaction"]
    with pytest.raises(Exception, match="has lanes 1 to 2"):
        parse_events(orjson.dumps(scan("c-2", 3)), CATALOG)


DECISION = {
    "decision_id": "d-1",
    "policy": "engine-v1",
    "customer_id": "c-secret",
    "store_id": "s-1",
    "answers": 5,
    "created_at": 1.0,
    "channel": "drive_thru",
    "event_id": "e-9",
    "context": {"daypart": "lunch", "weather": "sunny", "channel": "app", "store_id": "s-3"},
    "offers": [{"offer_id": "fries", "score": 1.0, "reasons": ["you_often_buy"], "slot": 0}],
}


def test_a_lane_board_keeps_the_offers_and_nothing_that_names_the_customer() -> None:
    stored = lane_board(DECISION, 1, 200.0)
    public = lanes.personal_board(stored, "Main St", 150.0)
    for body in (stored, public):
        text = orjson.dumps(body).decode()
        assert "c-secret" not in text and "e-9" not in text and "s-3" not in text
        assert not set(PRIVATE) & set(body), body
    assert public["source"] == "lane" and public["personal"] is True
    assert public["remaining_s"] == 50.0 and public["lane"] == 1
    assert public["offers"] == [{"offer_id": "fries", "score": 1.0, "reasons": ["you_often_buy"]}]
    assert lanes.LaneBoard.model_validate(public)


def test_a_lane_shows_the_decision_made_at_its_store_while_the_scan_is_current() -> None:
    batch = Batch({})
    batch.lanes = {("s-1", 1): ("c-1", 200.0), ("s-1", 2): ("c-2", 200.0), ("s-2", 1): ("c-3", 90)}
    decisions = {
        "c-1": DECISION,
        "c-2": {**DECISION, "store_id": "s-3"},  # a later event moved them elsewhere
        "c-3": {**DECISION, "store_id": "s-2"},
    }
    boards = lane_boards(batch, decisions, now=100.0)
    assert list(boards) == [("s-1", 1)]  # c-2 decided elsewhere, c-3's scan is over
    assert boards[("s-1", 1)]["until"] == 200.0  # the same end however often rewritten


async def test_the_lane_page_polls_its_lane_and_refuses_a_lane_the_store_has_not() -> None:
    app = FastAPI()
    app.include_router(board_page.router)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://board.test") as http:
        page = (await http.get("/board/s-1", params={"lane": 2})).text
        assert 'data-board-url="../v1/stores/s-1/board?lane=2"' in page
        assert "Drive-thru lane 2" in page and 'data-personal="false"' in page
        assert "Picked for you" in page and 'data-field="personal" hidden' in page
        r = await http.get("/board/s-2", params={"lane": 2})
        assert r.status_code == 400 and "has lanes 1 to 1" in r.json()["error"]


# ---- end to end: the real worker and API, lane 1 of s-1 ------------------------------------


@pytest.fixture(scope="module")
def lane_stack(
    stack_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pipeline]:
    keys = (
        f"{TILL}:ingest",
        f"{LANE}:store-device:s-1",
        f"{OTHER}:store-device:s-2",
        f"{READ}:read",
        f"{ADMIN}:admin",
    )
    with running_pipeline(
        stack_settings,
        tmp_path_factory.mktemp("lane-logs"),
        "tailor-lanes",
        env="production",  # board reads need a store-device key of that store
        api_keys=keys,
        explore_rate=0.0,
        offers_per_decision=24,
        holdout_share=0.0,
        lane_personal_s=LANE_S,
    ) as pipeline:
        yield pipeline


def client(pipeline: Pipeline, key: str | None) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.AsyncClient(base_url=pipeline.api, timeout=10, headers=headers)


@pytest.fixture
async def redis(lane_stack: Pipeline) -> AsyncIterator[aioredis.Redis]:
    found = aioredis.from_url(lane_stack.settings.redis)
    yield found
    await found.aclose()


async def post(pipeline: Pipeline, events: list[dict[str, Any]]) -> None:
    async with client(pipeline, TILL) as http:
        r = await http.post("/v1/events", json=events)
    assert r.status_code == 202, r.text


async def lane_of(pipeline: Pipeline, lane: int, key: str = LANE) -> httpx.Response:
    async with client(pipeline, key) as http:
        return await http.get("/v1/stores/s-1/board", params={"lane": lane})


async def store_board_ready(pipeline: Pipeline) -> dict[str, Any]:
    """s-1's store board, once a worker rendered it (a context update makes it render)."""
    async with client(pipeline, LANE) as http:
        r = await http.post("/v1/stores/s-1/context", json={"weather": "cloudy", "queue_length": 2})
        assert r.status_code == 202, r.text

        async def probe() -> dict[str, Any] | None:
            r = await http.get("/v1/stores/s-1/board")
            return r.json() if r.status_code == 200 else None

        return await eventually(probe, "s-1's store board")


async def stored_decision(redis: aioredis.Redis, cid: str, after: str) -> dict[str, Any]:
    """The worker's decision for `cid` (Redis) once it has applied event `after`."""

    async def probe() -> dict[str, Any] | None:
        raw = await redis.get(f"tailor:offers:{cid}")
        decision: dict[str, Any] = orjson.loads(raw) if raw else {}
        return decision if decision.get("event_id") == after else None

    return await eventually(probe, f"{cid}'s decision after {after}")


async def lane_turns(pipeline: Pipeline, lane: int, source: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        r = await lane_of(pipeline, lane)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body if body["source"] == source else None

    return await eventually(probe, f"lane {lane} of s-1 showing the {source} board")


SALES = 8


def ids(board: dict[str, Any], k: int = 24) -> list[str]:
    return [o["offer_id"] for o in board["offers"][:k]]


async def a_customer_who_loves(pipeline: Pipeline, redis: aioredis.Redis) -> tuple[str, str]:
    """A fresh customer who bought, `SALES` times at s-1's drive-thru, the offer their first
    ranking had last (of those on sale now at the median price or more): their known
    preference."""
    # On sale now (the test takes well under a daypart), and not among the cheapest:
    # offers rank by P(yes) x price, so a cheap one can be sure to be bought and still
    # not outrank the top 3.
    prices = sorted(o.price for o in CATALOG.offers.values())
    daypart = daypart_at(time.time(), CATALOG.stores["s-1"].utc_offset_h)
    on_sale = {
        o.offer_id for o in CATALOG.available("s-1", daypart) if o.price >= prices[len(prices) // 2]
    }
    where = {"store_id": "s-1", "channel": "drive_thru"}
    cid = "c-lane-" + uuid.uuid4().hex[:10]
    first = {**scan(cid), "type": "impression", "offer_id": "coffee", **where}
    del first["lane"]
    await post(pipeline, [first])
    ranking = ids(await stored_decision(redis, cid, first["event_id"]))
    loved = [o for o in ranking if o in on_sale][-1]
    sales = [
        {**first, "event_id": "e-" + uuid.uuid4().hex, "type": kind, "offer_id": loved}
        for _ in range(SALES)
        for kind in ("impression", "purchase")
    ]
    await post(pipeline, sales)
    taught = await stored_decision(redis, cid, sales[-1]["event_id"])
    assert loved in ids(taught, 3) and taught["answers"] == SALES, (loved, ids(taught))
    return cid, loved


@pytest.mark.e2e
async def test_a_loyalty_scan_makes_lane_1_personal_then_the_store_board_again(
    lane_stack: Pipeline, redis: aioredis.Redis
) -> None:
    store_board = await store_board_ready(lane_stack)
    assert (await lane_turns(lane_stack, 1, "store"))["personal"] is False
    cid, loved = await a_customer_who_loves(lane_stack, redis)
    assert loved not in ids(store_board, 3), "pick a customer whose taste is not the store's"

    identify = scan(cid, 1)
    await post(lane_stack, [identify])
    personal = await lane_turns(lane_stack, 1, "lane")

    # The customer's offers, decided at this store as scanned, and the scan taught nothing.
    decision = await stored_decision(redis, cid, identify["event_id"])
    assert decision["answers"] == SALES and decision["store_id"] == "s-1"
    assert personal["decision_id"] == decision["decision_id"]
    assert ids(personal) == ids(decision) and loved in ids(personal, 3)
    assert personal["personal"] is True and personal["lane"] == 1
    assert 0 < personal["remaining_s"] <= LANE_S
    # Nothing that names them, in the answer or in Redis.
    assert not set(PRIVATE) & set(personal), personal
    assert cid not in orjson.dumps(personal).decode()
    raw = await redis.get("tailor:lane:s-1:1")
    assert raw is not None and cid.encode() not in raw
    assert 0 < await redis.pttl("tailor:lane:s-1:1") <= LANE_S * 1000

    # Lane 2 of the same store keeps the store board.
    other = await lane_of(lane_stack, 2)
    assert other.status_code == 200 and other.json()["source"] == "store", other.text
    assert other.json()["decision_id"] != personal["decision_id"]
    assert "customer_id" not in other.json()

    # Scoped: only that store's devices (or read/admin) see a lane; lanes are the store's.
    assert (await lane_of(lane_stack, 1, OTHER)).status_code == 403
    assert (await lane_of(lane_stack, 1, TILL)).status_code == 403
    async with client(lane_stack, None) as http:
        assert (await http.get("/v1/stores/s-1/board", params={"lane": 1})).status_code == 401
    for bad in (0, 3, "one"):
        r = await lane_of(lane_stack, bad)  # type: ignore[arg-type]
        assert r.status_code == 400 and "lane" in r.json()["error"], r.text

    # Then back to the store board, for good.
    back = await lane_turns(lane_stack, 1, "store")
    assert back["decision_id"] != personal["decision_id"] and back["personal"] is False
    assert not await redis.exists("tailor:lane:s-1:1")


@pytest.mark.e2e
async def test_the_lane_page_shows_the_personal_board_live_and_names_no_one(
    lane_stack: Pipeline, redis: aioredis.Redis, browser: Browser
) -> None:
    await store_board_ready(lane_stack)
    await lane_turns(lane_stack, 1, "store")  # no scan of an earlier test still current
    cid, _ = await a_customer_who_loves(lane_stack, redis)
    url = f"{lane_stack.api}/board/s-1?lane=1&every=0.5#key={LANE}"
    async with watched_page(browser, lane_stack.api) as screen:
        page = screen.page
        await page.goto(url)
        board = page.locator("#board")
        cue = page.locator('[data-field="personal"]')
        await expect(board).to_have_attribute("data-status", "live", timeout=WAIT_MS)
        await expect(board).to_have_attribute("data-personal", "false")
        await expect(cue).to_be_hidden()
        await expect(page.locator(".sub")).to_contain_text("Drive-thru lane 1")
        await page.evaluate("window.sameDocument = 'before the scan'")

        await post(lane_stack, [scan(cid, 1)])
        await expect(board).to_have_attribute("data-personal", "true", timeout=WAIT_MS)
        await expect(cue).to_be_visible()
        await expect(cue).to_have_text("Picked for you")
        personal = (await lane_of(lane_stack, 1)).json()
        if personal["source"] == "lane":  # still current: the screen shows exactly it
            await expect(board).to_have_attribute("data-decision-id", personal["decision_id"])
            shown = await page.eval_on_selector_all(".tile", "ts => ts.map(t => t.dataset.offerId)")
            assert shown == ids(personal, 6)
        await no_one_named(page, cid)

        await expect(board).to_have_attribute("data-personal", "false", timeout=WAIT_MS)
        await expect(cue).to_be_hidden()
        store = (await lane_of(lane_stack, 1)).json()
        assert store["source"] == "store"
        await no_one_named(page, cid)
        assert await page.evaluate("window.sameDocument") == "before the scan", "page reloaded"


async def no_one_named(page: Page, cid: str) -> None:
    """The page shows and holds nothing of the customer: no id, no history."""
    html = await page.content()
    text = await page.inner_text("body")
    for private in (cid, "customer", "answers", "last visit"):
        assert private not in html and private not in text.lower(), private


def test_a_scan_ends_its_setting_after_its_own_time_however_often_it_is_applied() -> None:
    """Replayed after a crash, or arriving late, a scan's lane ends at its own time (never
    ahead of its arrival) + TAILOR_LANE_PERSONAL_S: a rewrite is the same write."""
    w = cast(Worker, SimpleNamespace(catalog=CATALOG, settings=Settings(lane_personal_s=40)))
    arrival = time.time()
    past = datetime.fromtimestamp(arrival - 30, UTC).isoformat()
    got = decode_event(orjson.dumps(scan("c-1", ts=past)), CATALOG)
    assert isinstance(got, Identification)
    ends = []
    for _ in range(2):  # applied, then delivered again
        batch = Batch({})
        identified(w, batch, got, arrival, {})
        ends.append(batch.lanes[("s-1", 1)])
        assert batch.latest["c-1"][0].store_id == "s-1"  # decided for at the lane's store
        assert not batch.models  # no model touched: a scan is no question and no answer
    assert ends[0] == ends[1] == ("c-1", pytest.approx(arrival + 10))


@pytest.mark.e2e
async def test_forgetting_a_scanned_customer_clears_their_lane_at_once(
    lane_stack: Pipeline, redis: aioredis.Redis
) -> None:
    """The lane's board names no one, so only the customer's record says which lane shows
    them: forgetting them clears that lane too, even after they went on to buy (a newer
    decision), and long before the scan's time is up."""
    await store_board_ready(lane_stack)
    await lane_turns(lane_stack, 2, "store")
    cid = "c-forget-" + uuid.uuid4().hex[:10]
    identify = scan(cid, 2)
    await post(lane_stack, [identify])
    personal = await lane_turns(lane_stack, 2, "lane")
    after = {**identify, "event_id": "e-" + uuid.uuid4().hex, "type": "purchase",
             "offer_id": personal["offers"][0]["offer_id"], "channel": "drive_thru"}  # fmt: skip
    del after["lane"]
    await post(lane_stack, [after])
    newer = await stored_decision(redis, cid, after["event_id"])
    assert newer["decision_id"] != personal["decision_id"]
    assert (await lane_of(lane_stack, 2)).json()["decision_id"] == personal["decision_id"]

    async with client(lane_stack, ADMIN) as http:
        r = await http.delete(f"/v1/customers/{cid}")
    assert r.status_code == 202, r.text
    assert not await redis.exists("tailor:lane:s-1:2")  # by the API, before it answered
    back = (await lane_of(lane_stack, 2)).json()
    assert back["source"] == "store" and back["personal"] is False, back
    assert not await redis.exists(f"tailor:offers:{cid}")
