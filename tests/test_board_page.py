"""The drive-thru menu board page, `GET /board/{store_id}`.

The first tests check the page's markup in-process (no servers). The end-to-end tests load
the page in headless Chromium (Debian's /usr/bin/chromium, driven by Playwright; no
downloaded browser) from a real `tailor api` child process, with a real `tailor worker`,
Kafka and Redis behind it, and watch the board follow the store's weather and queue
without a reload.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from playwright.async_api import Browser, Locator, Page, Route, expect

from config.catalog import load_catalog
from config.settings import Settings
from engine.api import board_page
from engine.dev.processes import tail
from tests.browser_kit import WAIT_MS, Screen, assert_self_contained, watched_page
from tests.conftest import Pipeline, running_pipeline

CATALOG = load_catalog()
LABELS = {
    "trending_here": "Trending here",
    "hot_weather": "Cool down",
    "cold_weather": "Warm up",
    "breakfast_time": "Breakfast",
    "quick_at_peak": "Quick",
    "you_often_buy": "Your favourite",
    "exploring": "Try something new",
    "good_value": "Good value",
}


# ---- the page's markup, in-process -------------------------------------------------------


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """An app of just the board page, called in-process."""
    app = FastAPI()
    app.include_router(board_page.router)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://board.test") as http:
        yield http


async def test_the_page_names_its_store_and_polls_its_board_from_its_own_origin(
    client: httpx.AsyncClient,
) -> None:
    r = await client.get("/board/s-2", params={"every": 1.5, "currency": "EUR"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in r.headers["content-security-policy"]
    assert "connect-src 'self'" in r.headers["content-security-policy"]
    page = r.text
    assert "Highway 9" in page
    assert 'data-board-url="../v1/stores/s-2/board"' in page
    assert 'data-every-ms="1500"' in page and 'data-currency="EUR"' in page
    assert 'data-tiles="6"' in page and 'data-decision-id=""' in page
    assert "waiting for the kitchen…" in page


async def test_the_page_and_its_assets_load_nothing_from_elsewhere(
    client: httpx.AsyncClient,
) -> None:
    texts = [(await client.get("/board/s-1")).text]
    for name, kind in [("board.css", "text/css"), ("board.js", "text/javascript")]:
        r = await client.get(f"/board/assets/{name}")
        assert r.status_code == 200 and r.headers["content-type"].startswith(kind)
        texts.append(r.text)
    assert_self_contained(texts)
    script = texts[2]
    for reason, label in LABELS.items():
        assert f'{reason}: "{label}"' in script


async def test_unknown_stores_and_assets_are_404_and_bad_parameters_refused(
    client: httpx.AsyncClient,
) -> None:
    r = await client.get("/board/s-9")
    assert r.status_code == 404
    assert "no store 's-9'" in r.json()["error"]
    r = await client.get("/board/<img src=x onerror=alert(1)>", headers={"accept": "text/html"})
    assert r.status_code == 400 and r.headers["content-type"].startswith("text/html")
    assert "&lt;img src=x onerror=alert(1)&gt;" in r.text and "<img" not in r.text
    assert (await client.get("/board/assets/secrets.py")).status_code == 404
    assert (await client.get("/board/s-1", params={"every": 0.1})).status_code == 422
    assert (await client.get("/board/s-1", params={"currency": "dollars"})).status_code == 422


# ---- end to end: the real API and worker, the page in headless Chromium ---------------------


@pytest.fixture(scope="module")
def board_stack(
    stack_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pipeline]:
    """`tailor worker` and `tailor api` as child processes, as tests/test_e2e.py starts them."""
    logs = tmp_path_factory.mktemp("board-logs")
    with running_pipeline(stack_settings, logs, "tailor-board", explore_rate=0.0) as pipeline:
        r = httpx.get(f"{pipeline.api}/board/s-1")
        assert r.status_code == 200, (
            f"GET /board/s-1 answered {r.status_code}: engine/api/app.py must include the board "
            "page, `api.include_router(board_page.router)` in create_app"
        )
        yield pipeline


@pytest.fixture
async def screen(browser: Browser, board_stack: Pipeline) -> AsyncIterator[Screen]:
    """A 1080p page that records script errors and any request not to the API."""
    async with watched_page(browser, board_stack.api) as found:
        yield found


async def post_context(api: str, store_id: str, situation: dict[str, Any]) -> None:
    async with httpx.AsyncClient(base_url=api, timeout=10) as http:
        r = await http.post(f"/v1/stores/{store_id}/context", json=situation)
    assert r.status_code == 202, r.text


async def tiles_of(page: Page) -> list[dict[str, Any]]:
    """What the screen shows in each tile, in order."""
    tiles: list[dict[str, Any]] = await page.eval_on_selector_all(
        ".tile",
        """tiles => tiles.map(t => ({
            offer_id: t.dataset.offerId,
            name: t.querySelector('.name').textContent,
            price: t.querySelector('.price').textContent,
            badges: [...t.querySelectorAll('.badge')].map(b => b.textContent),
        }))""",
    )
    return tiles


async def shown_board(page: Page, api: str, store_id: str) -> tuple[str, list[dict[str, Any]]]:
    """The board on screen once it is the API's current one: its decision id and tiles,
    checked tile by tile against the API's JSON."""
    async with httpx.AsyncClient(base_url=api, timeout=10) as http:
        for _ in range(120):
            board = (await http.get(f"/v1/stores/{store_id}/board")).json()
            shown = await page.get_attribute("#board", "data-decision-id")
            if shown == board["decision_id"]:
                tiles = await tiles_of(page)
                if await page.get_attribute("#board", "data-decision-id") == shown:
                    break
            await page.wait_for_timeout(500)
        else:
            raise AssertionError(f"the page never showed the API's board {board['decision_id']}")
    offers = board["offers"][:6]
    assert len(tiles) == 6 == len(offers)
    for tile, offer in zip(tiles, offers, strict=True):
        catalog_offer = CATALOG.offers[offer["offer_id"]]
        assert tile["offer_id"] == offer["offer_id"]
        assert tile["name"] == catalog_offer.name
        assert tile["price"] == f"${catalog_offer.price:.2f}"
        assert tile["badges"] == [LABELS[r] for r in offer["reasons"]]
    for box in [await t.bounding_box() for t in await page.locator(".tile").all()]:
        assert box is not None, "a tile is not displayed"
        assert box["x"] >= 0 and box["y"] >= 0
        assert box["x"] + box["width"] <= 1920 and box["y"] + box["height"] <= 1080
    return board["decision_id"], tiles


def field(page: Page, name: str) -> Locator:
    return page.locator(f'[data-field="{name}"]')


@pytest.mark.e2e
async def test_the_board_page_follows_the_weather_and_the_lane_without_a_reload(
    screen: Screen, board_stack: Pipeline, tmp_path: Path
) -> None:
    page, api = screen.page, board_stack.api
    await page.goto(f"{api}/board/s-1?every=1")
    await expect(field(page, "store-name")).to_have_text("Downtown")

    await post_context(api, "s-1", {"weather": "sunny", "temperature_c": 34, "queue_length": 1})
    await expect(field(page, "temperature")).to_have_text(re.compile(r"^34\s°C$"), timeout=WAIT_MS)
    await expect(field(page, "weather")).to_have_text("Sunny")
    await expect(field(page, "lane")).to_have_text("Lane: 1 car")
    await expect(page.locator("#board")).to_have_attribute("data-status", "live")
    hot_id, hot = await shown_board(page, api, "s-1")
    assert any("Cool down" in t["badges"] for t in hot), hot
    await page.screenshot(path=tmp_path / "board-hot.png", animations="disabled")
    await page.evaluate("window.sameDocument = 'since the hot board'")

    await post_context(api, "s-1", {"weather": "snow", "temperature_c": -4, "queue_length": 9})
    await expect(field(page, "temperature")).to_have_text(
        re.compile("^\u22124\\s°C$"), timeout=WAIT_MS
    )
    await expect(field(page, "weather")).to_have_text("Snow")
    await expect(field(page, "lane")).to_have_text("Lane: 9 cars — quick picks first")
    cold_id, cold = await shown_board(page, api, "s-1")
    assert cold_id != hot_id
    assert [t["offer_id"] for t in cold] != [t["offer_id"] for t in hot]
    assert any("Warm up" in t["badges"] for t in cold), cold
    assert await page.evaluate("window.sameDocument") == "since the hot board", "page reloaded"
    await page.screenshot(path=tmp_path / "board-cold.png", animations="disabled")
    print(f"\nscreenshots: {tmp_path / 'board-hot.png'} {tmp_path / 'board-cold.png'}")
    print("hot: ", [t["offer_id"] for t in hot], "\ncold:", [t["offer_id"] for t in cold])


@pytest.mark.e2e
async def test_the_page_keeps_its_last_board_while_the_kitchen_is_away(
    screen: Screen, board_stack: Pipeline
) -> None:
    page, api = screen.page, board_stack.api
    await post_context(api, "s-1", {"temperature_c": 21.5})
    await page.goto(f"{api}/board/s-1?every=0.5")
    await expect(field(page, "temperature")).to_have_text(re.compile(r"^22\s°C$"), timeout=WAIT_MS)
    shown_id, shown = await shown_board(page, api, "s-1")
    status = field(page, "status")

    async def unavailable(route: Route) -> None:
        await route.fulfill(status=503, json={"error": "no board for s-1 yet"})

    async def unreachable(route: Route) -> None:
        await route.abort("connectionrefused")

    for failure in (unavailable, unreachable):
        await page.route("**/v1/stores/s-1/board", failure)
        await expect(status).to_have_text("waiting for the kitchen…", timeout=WAIT_MS)
        await expect(page.locator("#board")).to_have_attribute("data-status", "waiting")
        await page.wait_for_timeout(1500)  # a few more failed polls
        assert await page.get_attribute("#board", "data-decision-id") == shown_id
        assert await tiles_of(page) == shown
        await page.unroute("**/v1/stores/s-1/board")
    await expect(status).to_have_text("Live", timeout=WAIT_MS)


@pytest.mark.e2e
async def test_board_text_is_shown_as_text_never_run_as_markup(
    screen: Screen, board_stack: Pipeline
) -> None:
    page, api = screen.page, board_stack.api
    hostile = '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>'
    board = {
        "decision_id": 'b-"><img src=x onerror="window.pwned=3">',
        "store_id": "s-1",
        "store_name": "Downtown " + hostile,
        "context": {"daypart": "<b>lunch</b>", "weather": hostile, "temperature_c": 20},
        "offers": [
            {
                "offer_id": '"><svg onload="window.pwned=4">',
                "name": "Burger " + hostile,
                "price": 5.9,
                "category": '"><svg onload="window.pwned=5">',
                "reasons": ["<b>bold</b>", "good_value"],
            }
        ],
    }

    async def fake_board(route: Route) -> None:
        await route.fulfill(status=200, body=orjson.dumps(board), content_type="application/json")

    await page.route("**/v1/stores/s-1/board", fake_board)
    await page.goto(f"{api}/board/s-1?every=0.5")
    await expect(page.locator(".tile .name")).to_have_text("Burger " + hostile, timeout=WAIT_MS)
    await expect(field(page, "store-name")).to_have_text("Downtown " + hostile)
    await expect(page.locator(".badge")).to_have_text(["<b>bold</b>", "Good value"])
    assert await page.locator("#board img, #board b, #board script, .tile svg[onload]").count() == 0
    await page.wait_for_timeout(500)
    assert await page.evaluate("window.pwned") is None


@pytest.mark.e2e
def test_the_api_serves_the_page_and_a_404_for_an_unknown_store(board_stack: Pipeline) -> None:
    r = httpx.get(f"{board_stack.api}/board/s-1")
    assert r.status_code == 200 and "Downtown" in r.text
    r = httpx.get(f"{board_stack.api}/board/assets/board.js")
    assert r.status_code == 200 and "waiting for the kitchen" in r.text
    r = httpx.get(f"{board_stack.api}/board/s-9")
    assert r.status_code == 404, tail(board_stack.logs / "api.log")
    assert "no store 's-9'" in r.json()["error"]
    r = httpx.get(f"{board_stack.api}/board/s-9", headers={"accept": "text/html"})
    assert r.status_code == 404 and "no store" in r.text
