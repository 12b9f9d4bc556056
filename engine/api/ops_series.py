"""The operations page's data: a few fixed PromQL queries, run on the configured Prometheus.

`GET /v1/ops/series?minutes=15` runs each chart's query over the last minutes on
Prometheus's ``/api/v1/query_range`` (``TAILOR_PROMETHEUS_URL``, else the demo's on
``TAILOR_PROMETHEUS_PORT``) and answers the series as JSON, so the page's browser talks only
to the API's origin and never sends PromQL of its own. Prometheus unreachable or failing is a
503 ``{"error": ...}`` with ``Retry-After``; nothing else of the API depends on it.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass
from typing import Annotated, Any

import httpx
from fastapi import FastAPI, HTTPException, Query
from pydantic import BaseModel, Field

from engine.api.errors import RETRY_AFTER_S

PROMETHEUS_TIMEOUT_S = 3.0
POINTS = 180  # per series at most: a step of range / POINTS, at least MIN_STEP_S
MIN_STEP_S = 2


@dataclass(frozen=True)
class Chart:
    """One chart of the page: its PromQL, and the label that names each of its series."""

    query: str
    label: str | None = None


CHARTS = {
    "events_per_s": Chart("sum(rate(tailor_events_total[1m]))"),
    "freshness_p99_s": Chart(
        "histogram_quantile(0.99, sum by (le) (rate(tailor_decision_freshness_seconds_bucket[1m])))"
    ),
    # Zero while none arrive (a reason's series appears with its first dead letter), but
    # only where Tailor was scraped at all: a gauge every process always exposes.
    "dead_letters_per_min": Chart(
        "sum(increase(tailor_dead_letters_total[1m])) or 0 * sum(tailor_customers_with_model)"
    ),
    # Yes-answers per question asked, engine against control: the live lift.
    "yes_rate": Chart(
        'sum by (group) (rate(tailor_answers_total{answer="yes"}[5m]))'
        " / sum by (group) (rate(tailor_questions_total[5m]))",
        label="group",
    ),
}


class Series(BaseModel):
    name: str = Field(description="the value of the chart's label (a holdout group), or ''")
    points: list[tuple[float, float | None]] = Field(
        description="[unix seconds, value], the value null where there is none (no events)"
    )


class Charts(BaseModel):
    """One list of series per chart of `CHARTS`, under the same name."""

    events_per_s: list[Series]
    freshness_p99_s: list[Series]
    dead_letters_per_min: list[Series]
    yes_rate: list[Series]


class OpsSeries(BaseModel):
    minutes: int
    step_s: int
    end: float = Field(description="unix seconds of the last point asked for")
    charts: Charts


# The error bodies and headers this route answers, for its OpenAPI.
ERROR_BODY = {
    "application/json": {
        "schema": {
            "type": "object",
            "properties": {"error": {"type": "string"}},
            "required": ["error"],
        }
    }
}
RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "minutes out of range", "content": ERROR_BODY},
    503: {
        "description": "Prometheus cannot be reached or fails: retry",
        "content": ERROR_BODY,
        "headers": {"Retry-After": {"schema": {"type": "string"}, "required": True}},
    },
}


def step_for(minutes: int) -> int:
    """Seconds between points: about `POINTS` per series, never below the scrape interval.

    >>> step_for(15), step_for(1), step_for(360)
    (5, 2, 120)
    """
    return max(MIN_STEP_S, math.ceil(minutes * 60 / POINTS))


def series_of(result: list[dict[str, Any]], label: str | None) -> list[dict[str, Any]]:
    """Prometheus's matrix as named series of [unix seconds, value or None (NaN, Inf)].

    >>> series_of([{"metric": {"group": "engine"}, "values": [[1.0, "0.25"], [3.0, "NaN"]]}],
    ...           "group")
    [{'name': 'engine', 'points': [[1.0, 0.25], [3.0, None]]}]
    """
    named = []
    for item in result:
        points = []
        for t, raw in item.get("values", []):
            value = float(raw)
            points.append([float(t), value if math.isfinite(value) else None])
        name = item.get("metric", {}).get(label, "") if label else ""
        named.append({"name": name, "points": points})
    return sorted(named, key=lambda s: s["name"])


def unavailable(url: str, why: str) -> HTTPException:
    return HTTPException(
        503,
        f"prometheus unavailable at {url} (TAILOR_PROMETHEUS_URL): {why}; `make demo` starts "
        "one that scrapes the API and the worker",
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


async def query_range(
    client: httpx.AsyncClient, url: str, query: str, start: float, end: float, step: int
) -> list[dict[str, Any]]:
    """One range query; a Prometheus that cannot be reached or refuses it is a 503."""
    params = {"query": query, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step}s"}
    try:
        r = await client.get(f"{url}/api/v1/query_range", params=params)
    except httpx.HTTPError as exc:
        raise unavailable(url, f"{type(exc).__name__}: {exc}" if str(exc) else repr(exc)) from None
    try:
        body = r.json()
    except ValueError:
        body = {}
    if r.status_code != 200 or body.get("status") != "success":
        why = body.get("error") or r.text[:200]
        raise unavailable(url, f"HTTP {r.status_code} for {query!r}: {why}")
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def install(api: FastAPI, prometheus_url: str) -> None:
    """Serve `GET /v1/ops/series` from the Prometheus at `prometheus_url`."""

    @api.get("/v1/ops/series", tags=["operations"], responses=RESPONSES)
    async def ops_series(
        minutes: Annotated[int, Query(ge=1, le=360, description="how far back")] = 15,
    ) -> OpsSeries:
        """The operations page's charts over the last `minutes`, from Prometheus: events
        consumed per second, event-to-decision freshness p99 (seconds), dead letters per
        minute, and the yes-rate (yes-answers per question) of each holdout group. Each
        point is `[unix seconds, value]`, the value null where there is none (no events)."""
        end = time.time()
        start, step = end - minutes * 60, step_for(minutes)
        async with httpx.AsyncClient(timeout=PROMETHEUS_TIMEOUT_S) as client:
            results = await asyncio.gather(
                *(
                    query_range(client, prometheus_url, chart.query, start, end, step)
                    for chart in CHARTS.values()
                )
            )
        charts = {
            name: series_of(result, chart.label)
            for (name, chart), result in zip(CHARTS.items(), results, strict=True)
        }
        return OpsSeries(minutes=minutes, step_s=step, end=round(end, 3), charts=Charts(**charts))
