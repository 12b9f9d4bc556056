"""The operations page: `GET /ops`, live charts of the engine for whoever runs it.

Static HTML, CSS and JavaScript shipped in `engine/api/static/` (no CDN, fonts or other
network), like the menu board (`board_page`): it polls `GET /v1/ops/series` (`ops_series`,
which asks Prometheus) every few seconds and redraws four inline-SVG charts without a
reload: events consumed per second, event-to-decision freshness p99, dead letters, and the
yes-rate of each holdout group (the live lift). While the series cannot be had it keeps the
last charts and says why. The API includes this `router`; the page only reads.
"""

from __future__ import annotations

import html
from functools import lru_cache
from string import Template
from typing import Annotated

from fastapi import APIRouter, FastAPI, Query
from fastapi.responses import HTMLResponse, JSONResponse, Response

from engine.api import ops_series
from engine.api.board_page import CSP, STATIC

ASSETS = {
    "ops.css": "text/css",
    "ops.js": "text/javascript",
}

router = APIRouter(tags=["operations"])


@lru_cache(maxsize=4)
def _asset(name: str) -> str:
    return (STATIC / name).read_text(encoding="utf-8")


@router.get(
    "/ops",
    response_class=HTMLResponse,
    summary="Operations page",
    responses={
        400: {"description": "every or minutes out of range", "content": ops_series.ERROR_BODY}
    },
)
async def ops_page(
    every: Annotated[float, Query(ge=0.5, le=60, description="seconds between polls")] = 2.0,
    minutes: Annotated[int, Query(ge=1, le=360, description="minutes charted")] = 15,
) -> Response:
    """An HTML page charting the engine live from Prometheus; it refreshes itself."""
    values = {
        # Relative to /ops, so the page also works under a path prefix.
        "series_url": "v1/ops/series",
        "every_ms": str(round(every * 1000)),
        "minutes": str(minutes),
    }
    page = Template(_asset("ops.html")).substitute(
        {k: html.escape(v, quote=True) for k, v in values.items()}
    )
    return HTMLResponse(page, headers={"Content-Security-Policy": CSP, "Cache-Control": "no-cache"})


@router.get("/ops/assets/{name}", include_in_schema=False)
async def ops_asset(name: str) -> Response:
    """The page's stylesheet and script, from the package."""
    if name not in ASSETS:
        return JSONResponse({"error": f"no ops asset {name!r}; known: {sorted(ASSETS)}"}, 404)
    return Response(_asset(name), media_type=ASSETS[name], headers={"Cache-Control": "no-cache"})


def install(api: FastAPI, prometheus_url: str) -> None:
    """Serve the page, its assets and its series (`ops_series`, from `prometheus_url`)."""
    api.include_router(router)
    ops_series.install(api, prometheus_url)
