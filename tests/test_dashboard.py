"""The Grafana dashboard (config/grafana/tailor.json) run against a real Prometheus.

End to end: Kafka and Redis of the test stack, `tailor worker` and `tailor api` as child
processes, and Debian's `prometheus` started by the project's launcher scraping both
(the `observed` fixture). While traffic flows through the API, every PromQL expression of
every panel, its template variables filled in, is sent to Prometheus's `/api/v1/query`
until each has answered with data, or the deadline ends the test with those that never did.
"""

from __future__ import annotations

import asyncio
import time

import httpx
import orjson
import pytest

from engine.dev.processes import tail
from engine.dev.prometheus import scrape_config
from tests.conftest import Observed
from tests.ops_kit import (
    DASHBOARD,
    dashboard_queries,
    has_data,
    instant,
    substitute,
    traffic,
    variables,
)

DEADLINE_S = 240.0  # bounds a failing test only


def test_every_panel_query_is_found_and_its_variables_filled_in() -> None:
    dashboard = orjson.loads(DASHBOARD.read_bytes())
    queries = dashboard_queries(dashboard)
    assert len(queries) >= 18, "the dashboard's queries were not all found"
    values = variables(dashboard)
    for _, expr in queries:
        filled = substitute(expr, values)
        assert "$" not in filled and "[[" not in filled, filled


def test_template_variables_of_grafana_and_of_the_dashboard_are_substituted() -> None:
    dashboard = {
        "templating": {
            "list": [
                {"name": "store", "current": {"value": "$__all"}},
                {"name": "group", "current": {"value": ["engine", "control"]}},
            ]
        },
        "panels": [
            {
                "title": "row",
                "panels": [{"targets": [{"expr": 'rate(x{store=~"$store"}[$__rate_interval])'}]}],
            },
            {"targets": [{"expr": 'sum(y{group=~"${group}"}) by (group)'}]},
        ],
    }
    values = variables(dashboard)
    filled = [substitute(expr, values) for _, expr in dashboard_queries(dashboard)]
    assert filled == ['rate(x{store=~".*"}[1m])', 'sum(y{group=~"engine|control"}) by (group)']
    with pytest.raises(KeyError, match=r"\$lane"):
        substitute("z{lane=~'$lane'}", values)


def test_the_generated_config_scrapes_every_target_given() -> None:
    config = scrape_config(["127.0.0.1:8080"], ["127.0.0.1:6066", "127.0.0.1:6067"], every_s=1)
    assert config["global"]["scrape_interval"] == "1s"
    jobs = {
        job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]
    }
    assert jobs == {
        "tailor-api": ["127.0.0.1:8080"],
        "tailor-worker": ["127.0.0.1:6066", "127.0.0.1:6067"],
    }


@pytest.mark.e2e
async def test_prometheus_scrapes_the_api_and_the_worker(observed: Observed) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        deadline = time.monotonic() + DEADLINE_S
        while True:
            body = await instant(client, observed.prometheus, "up")
            up = {i["metric"]["job"]: i["value"][1] for i in body["data"]["result"]}
            if up == {"tailor-api": "1", "tailor-worker": "1"}:
                break
            assert time.monotonic() < deadline, f"targets up: {up}"
            await asyncio.sleep(1)


@pytest.mark.e2e
async def test_every_dashboard_query_has_data_on_a_real_prometheus(observed: Observed) -> None:
    dashboard = orjson.loads(DASHBOARD.read_bytes())
    values = variables(dashboard)
    queries = {substitute(expr, values): title for title, expr in dashboard_queries(dashboard)}
    pending = dict(queries)
    async with (
        traffic(observed.pipeline) as traffic_ok,
        httpx.AsyncClient(timeout=10) as client,
    ):
        deadline = time.monotonic() + DEADLINE_S
        while pending and time.monotonic() < deadline:
            for query in list(pending):
                if has_data(await instant(client, observed.prometheus, query)):
                    del pending[query]
            traffic_ok()
            await asyncio.sleep(1)
    logs = observed.pipeline.logs
    assert not pending, (
        "dashboard queries with no data from the real Prometheus:\n"
        + "\n".join(f"  {title}: {query}" for query, title in pending.items())
        + f"\n--- worker log:\n{tail(logs / 'worker.log')}"
        + f"\n--- prometheus log:\n{tail(logs / 'prometheus.log')}"
    )
    print(f"\n{len(queries)} dashboard queries, each with data on {observed.prometheus}")
