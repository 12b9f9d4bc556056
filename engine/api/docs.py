"""The interactive API docs at `/docs`, from assets bundled in the wheel, so they work in a
store network without internet (FastAPI's own page loads Swagger UI from a CDN).

Swagger UI's script, stylesheet and icon come from the fastapi-offline package and are
served by name only: its ReDoc bundle, which fetches a logo from a CDN, is not. The page's
Content-Security-Policy keeps the browser on this origin; `validatorUrl: null` keeps
Swagger UI from sending the spec to swagger.io's validator.
"""

from __future__ import annotations

from functools import lru_cache
from importlib.resources import files
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response

DOCS_URL = "/docs"
ASSETS_URL = "/docs/assets"
BUNDLED = files("fastapi_offline") / "static"
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon.png": "image/png",
}
# Swagger UI's page starts it with an inline script and styles itself inline.
CSP = (
    "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'self'"
)


@lru_cache(maxsize=len(ASSETS))
def _asset(name: str) -> bytes:
    return (BUNDLED / name).read_bytes()


def inlined(schema: dict[str, Any]) -> dict[str, Any]:
    """A pydantic JSON schema with each `$ref` replaced by its `$defs` entry: a body
    documented by hand (`openapi_extra`) cannot count on its models being components."""
    defs = schema.get("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return walk(defs[node["$ref"].rsplit("/", 1)[-1]])
            return {k: walk(v) for k, v in node.items() if k != "$defs"}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    result: dict[str, Any] = walk(schema)
    return result


def install(api: FastAPI) -> None:
    """Serve `/docs` and its assets; `api` is built with `docs_url=None, redoc_url=None`."""

    @api.get(DOCS_URL, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        page = get_swagger_ui_html(
            openapi_url=f"{root}{api.openapi_url}",
            title=f"{api.title} - API docs",
            swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
            swagger_ui_parameters={"validatorUrl": None},
        )
        page.headers["Content-Security-Policy"] = CSP
        return page

    @api.get(ASSETS_URL + "/{name}", include_in_schema=False)
    async def docs_asset(name: str) -> Response:
        if name not in ASSETS:
            raise HTTPException(404, f"no docs asset {name!r}; known: {sorted(ASSETS)}")
        return Response(
            _asset(name), media_type=ASSETS[name], headers={"Cache-Control": "max-age=86400"}
        )
