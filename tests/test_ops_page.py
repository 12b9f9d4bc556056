"""The operations page, `GET /ops`, and its data, `GET /v1/ops/series`.

The first tests call the app in-process (no servers): the page's markup, that nothing it
loads comes from elsewhere, and the 503 when Prometheus cannot be reached. The end-to-end
test loads the page in headless Chromium (tests/browser_kit.py) from a real `tailor api`,
with a real worker, Kafka, Redis and Debian's `prometheus` (started by the project's
launcher) behind it, and watches its four charts fill with data and move without a reload.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from playwright.async_api import Browser, Locator, Page, Route, expect

from config.settings import Settings
from engine.api.app import create_app
from engine.api.ops_series import CHARTS, Charts
from engine.dev.processes import free_ports
from tests.browser_kit import WAIT_MS, assert_self_contained, watched_page
from tests.conftest import Observed
from tests.ops_kit import traffic

CHART_NAMES = ["events_per_s", "freshness_p99_s", "dead_letters_per_min", "yes_rate"]


@pytest.fixture
def client() -> TestClient:
    """The whole app in-process; its Prometheus, Redis and Kafka are ports nobody listens on."""
    (closed,) = free_ports(1)
    settings = Settings(
        redis_url="redis://127.0.0.1:1/0",
        kafka_bootstrap="127.0.0.1:1",
        prometheus_url=f"http://127.0.0.1:{closed}",
    )
    return TestClient(create_app(settings), raise_server_exceptions=False)


def test_the_page_holds_the_four_charts_and_polls_the_series_of_its_own_origin(
    client: TestClient,
) -> None:
    r = client.get("/ops", params={"every": 1.5, "minutes": 30})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "connect-src 'self'" in csp
    page = r.text
    assert 'data-series-url="v1/ops/series"' in page
    assert 'data-every-ms="1500"' in page and 'data-minutes="30"' in page
    assert re.findall(r'data-chart="(\w+)"', page) == CHART_NAMES == list(CHARTS)
    assert list(Charts.model_fields) == CHART_NAMES


def test_the_page_and_its_assets_load_nothing_from_elsewhere(client: TestClient) -> None:
    texts = [client.get("/ops").text]
    for name, kind in [("ops.css", "text/css"), ("ops.js", "text/javascript")]:
        r = client.get(f"/ops/assets/{name}")
        assert r.status_code == 200 and r.headers["content-type"].startswith(kind)
        texts.append(r.text)
    assert_self_contained(texts)
    r = client.get("/ops/assets/app.py")
    assert r.status_code == 404 and "no ops asset" in r.json()["error"]


def test_series_are_a_json_503_while_prometheus_cannot_be_reached(client: TestClient) -> None:
    r = client.get("/v1/ops/series")
    assert r.status_code == 503 and r.headers["retry-after"]
    assert r.json()["error"].startswith("prometheus unavailable at http://127.0.0.1:")
    r = client.get("/v1/ops/series", params={"minutes": 0})
    assert r.status_code == 400 and "minutes" in r.json()["error"]
    documented = client.get("/openapi.json").json()["paths"]["/v1/ops/series"]["get"]
    assert documented["responses"]["503"]["headers"]["Retry-After"]["required"]
    assert "400" in documented["responses"] and "200" in documented["responses"]


def chart(page: Page, name: str) -> Locator:
    return page.locator(f'.chart[data-chart="{name}"]')


async def number(locator: Locator, attribute: str) -> float:
    value = await locator.get_attribute(attribute)
    return float(value) if value else float("nan")


@pytest.mark.e2e
async def test_the_ops_page_charts_live_data_and_moves_without_a_reload(
    browser: Browser, observed: Observed, tmp_path: Path
) -> None:
    api = observed.pipeline.api
    async with traffic(observed.pipeline) as traffic_ok, watched_page(browser, api) as screen:
        page = screen.page
        await page.goto(f"{api}/ops?every=1&minutes=5")
        await expect(page.locator("#ops")).to_have_attribute("data-status", "live", timeout=WAIT_MS)
        for name in CHART_NAMES:
            await expect(chart(page, name)).not_to_have_attribute(
                "data-points", "0", timeout=WAIT_MS
            )
            await expect(chart(page, name).locator("polyline").first).to_be_attached()
        yes = chart(page, "yes_rate")
        await expect(yes.locator(".legend .name")).to_have_text(
            ["control", "engine"], timeout=WAIT_MS
        )
        await expect(yes.locator('[data-field="now"]')).to_have_text(
            re.compile(r"^lift [+\u2212]\d+\.\d pts$")
        )
        await expect(chart(page, "dead_letters_per_min")).not_to_have_attribute(
            "data-max", re.compile(r"^(0|)$"), timeout=WAIT_MS
        )
        assert await number(chart(page, "events_per_s"), "data-latest") > 0
        assert await number(chart(page, "freshness_p99_s"), "data-latest") > 0
        assert 0 <= await number(yes, "data-latest") <= 1
        traffic_ok()
        await page.screenshot(path=tmp_path / "ops.png", full_page=True)

        await page.evaluate("window.sameDocument = 'since the first charts'")
        ops = page.locator("#ops")
        end = await ops.get_attribute("data-end") or ""
        line = chart(page, "events_per_s").locator("polyline").first
        drawn = await line.get_attribute("points") or ""
        await expect(ops).not_to_have_attribute("data-end", end, timeout=WAIT_MS)
        await expect(line).not_to_have_attribute("points", drawn, timeout=WAIT_MS)
        assert await number(ops, "data-end") > float(end)
        assert await page.evaluate("window.sameDocument") == "since the first charts"

        async def unavailable(route: Route) -> None:
            await route.fulfill(status=503, json={"error": "prometheus unavailable at test"})

        points = await chart(page, "events_per_s").get_attribute("data-points")
        await page.route("**/v1/ops/series*", unavailable)
        status = page.locator('[data-field="status"]')
        await expect(status).to_have_text(
            "no series: prometheus unavailable at test", timeout=WAIT_MS
        )
        assert await chart(page, "events_per_s").get_attribute("data-points") == points
        await page.unroute("**/v1/ops/series*")
        await expect(ops).to_have_attribute("data-status", "live", timeout=WAIT_MS)
        traffic_ok()
    print(f"\nscreenshot: {tmp_path / 'ops.png'}")
