"""The drive-thru menu board page: `GET /board/{store_id}`, an HTML screen for a lane.

With `?lane=N` the page is that lane's screen: it polls the lane's board, which shows the
customer a loyalty scan identified there while the scan is current (with a "Picked for you"
cue, and nothing that names them), then the store board again.

The page is static HTML, CSS and JavaScript shipped in `engine/api/static/` (no CDN, fonts or
other network): it polls the store's board, `GET /v1/stores/{store_id}/board`, every few
seconds and redraws its tiles without a reload, keeping the last board while the API
answers 503 or cannot be reached. The API includes this `router`; the page only reads.
"""

from __future__ import annotations

import html
from functools import lru_cache
from importlib.resources import files
from string import Template
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from config.catalog import load_catalog
from engine.api.errors import answers
from engine.wire.events import ID_RULE, Lane, id_problem
from models.context import COLD_AT_C, HOT_AT_C, PEAK_QUEUE
from models.offer import Catalog

STATIC = files("engine.api") / "static"
ASSETS = {
    "board.css": "text/css",
    "board.js": "text/javascript",
}
# The page may talk to its own origin only: no inline script, no third-party anything.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'self'"
)

router = APIRouter(tags=["signage"])


@lru_cache(maxsize=8)
def _asset(name: str) -> str:
    return (STATIC / name).read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def _default_catalog() -> Catalog:
    return load_catalog(None)


def catalog_of(request: Request) -> Catalog:
    """The app's catalog (`create_app` sets `app.state.catalog`), else the default menu."""
    catalog = getattr(request.app.state, "catalog", None)
    return catalog if isinstance(catalog, Catalog) else _default_catalog()


def _refused(request: Request, message: str, status: int = 404) -> Response:
    """An error as a small HTML page for a browser, else as the API's JSON error."""
    if "text/html" in request.headers.get("accept", ""):
        title = "Not found" if status == 404 else "Bad request"
        page = (
            f'<!doctype html><html lang="en"><meta charset="utf-8"><title>{title}</title>'
            f"<body><h1>{title}</h1><p>{html.escape(message)}</p></body></html>"
        )
        return HTMLResponse(page, status, headers={"Content-Security-Policy": CSP})
    return JSONResponse({"error": message}, status)


@router.get(
    "/board/{store_id}",
    response_class=HTMLResponse,
    summary="Menu board page",
    responses=answers(400, 404, html=True),
)
async def board_page(
    request: Request,
    store_id: str,
    every: Annotated[float, Query(ge=0.5, le=60, description="seconds between polls")] = 3.0,
    tiles: Annotated[int, Query(ge=1, le=12, description="offers shown")] = 6,
    currency: Annotated[str, Query(pattern=r"^[A-Z]{3}$", description="ISO 4217")] = "USD",
    lane: Annotated[Lane | None, Query(description="the lane this screen is at")] = None,
) -> Response:
    """An HTML menu board for a store's drive-thru screen; it refreshes itself."""
    if problem := id_problem(store_id):
        return _refused(request, f"store_id {problem}; {ID_RULE} (got {store_id!r:.60})", 400)
    catalog = catalog_of(request)
    store = catalog.stores.get(store_id)
    if store is None:
        return _refused(request, f"no store {store_id!r}; known: {sorted(catalog.stores)}")
    if lane is not None and lane > store.lanes:
        message = f"lane: store {store_id!r} has lanes 1 to {store.lanes} (got {lane})"
        return _refused(request, message, 400)
    board_url = f"../v1/stores/{quote(store.store_id, safe='')}/board"
    values = {
        "store_id": store.store_id,
        "store_name": store.name,
        # Relative to /board/{store_id}, so the page also works under a path prefix.
        "board_url": board_url if lane is None else f"{board_url}?lane={lane}",
        "lane": "" if lane is None else str(lane),
        "lane_name": "" if lane is None else f" lane {lane}",
        "every_ms": str(round(every * 1000)),
        "tiles": str(tiles),
        "currency": currency,
        "peak_queue": str(PEAK_QUEUE),
        "hot_at": str(HOT_AT_C),
        "cold_at": str(COLD_AT_C),
    }
    page = Template(_asset("board.html")).substitute(
        {k: html.escape(v, quote=True) for k, v in values.items()}
    )
    return HTMLResponse(page, headers={"Content-Security-Policy": CSP, "Cache-Control": "no-cache"})


@router.get("/board/assets/{name}", include_in_schema=False)
async def board_asset(request: Request, name: str) -> Response:
    """The page's stylesheet and script, from the package."""
    if name not in ASSETS:
        return _refused(request, f"no board asset {name!r}")
    return Response(_asset(name), media_type=ASSETS[name], headers={"Cache-Control": "no-cache"})
