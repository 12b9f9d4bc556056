"""Every error the API answers is JSON, `{"error": "what is wrong"}`, whatever its status.

Validation errors are 400s naming each bad field; HTTP errors (the routes' own, and the
router's 404 and 405) keep their status; Redis or Kafka out of reach is a 503 with
`Retry-After`. An unexpected exception is the Gatekeeper's JSON 500.

The OpenAPI says so too: each route lists what it answers (`answers`, in its decorator's
`responses=`), and since a validation error is a 400 here, FastAPI's default 422 is
replaced by it in every operation (`install`).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from redis.exceptions import RedisError
from starlette.exceptions import HTTPException as StarletteHTTPException

from engine.api.gatekeeper import error
from engine.api.producer import KafkaUnavailable, describe

RETRY_AFTER_S = 2


class Error(BaseModel):
    """Every error body: what is wrong (a 500 adds its `request_id`, a 400 its `details`)."""

    model_config = ConfigDict(extra="allow")

    error: str


MEANING = {
    400: "bad input: the error names the field or parameter, what it expected, what came",
    401: "no key, or an unknown key or token (with `WWW-Authenticate: Bearer`)",
    403: "a known key or token without the scope this needs (the error names the scope)",
    404: "no such store (or route)",
    413: "the body is over TAILOR_MAX_BODY_BYTES, or a batch over 1000 events",
    503: "Redis or Kafka did not answer in time, or nothing to serve yet: retry",
}
HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": {"schema": {"type": "string"}, "required": True}},
    503: {"Retry-After": {"schema": {"type": "string"}, "required": True}},
}


ERROR_REF = {"$ref": "#/components/schemas/Error"}  # `install` makes sure it is there


def answers(*statuses: int, html: bool = False) -> dict[int | str, dict[str, Any]]:
    """The error statuses a route answers, for its decorator's `responses=`; `html`: a
    browser gets them as a small HTML page."""
    content: dict[str, Any] = {"application/json": {"schema": ERROR_REF}}
    if html:
        content["text/html"] = {"schema": {"type": "string"}}
    return {
        status: {"description": MEANING[status], "content": content}
        | ({"headers": HEADERS[status]} if status in HEADERS else {})
        for status in statuses
    }


def no_board_yet(store_id: str) -> HTTPException:
    return HTTPException(
        503,
        f"no board for {store_id} yet: is a worker running?",
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


def kafka_unavailable(exc: KafkaUnavailable, retry: str) -> HTTPException:
    """The 503 for a write Kafka did not acknowledge in time; `retry` says why a retry is safe."""
    return HTTPException(
        503, f"kafka unavailable: {exc}; {retry}", headers={"Retry-After": str(RETRY_AFTER_S)}
    )


def _validation_is_400(api: FastAPI) -> None:
    """The OpenAPI with a 400 wherever FastAPI documents a 422, which this API never answers."""
    build = api.openapi

    def openapi() -> dict[str, Any]:
        if api.openapi_schema is None:
            schema = build()
            for path in schema.get("paths", {}).values():
                for operation in path.values():
                    responses = operation.get("responses", {})
                    if responses.pop("422", None) is not None and "400" not in responses:
                        responses["400"] = answers(400)[400]
            schemas = schema.get("components", {}).get("schemas", {})
            schemas.setdefault("Error", Error.model_json_schema())
            for unused in ("HTTPValidationError", "ValidationError"):
                schemas.pop(unused, None)
            api.openapi_schema = schema
        return api.openapi_schema

    api.openapi = openapi  # type: ignore[method-assign]


def install(api: FastAPI) -> None:
    _validation_is_400(api)

    @api.exception_handler(RequestValidationError)
    async def bad_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            f"{'.'.join(str(p) for p in e['loc'][1:]) or e['loc'][0]}: {e['msg']}"
            for e in exc.errors()
        ]
        return error(400, "invalid request: " + "; ".join(details), details=details)

    @api.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        response = error(exc.status_code, str(exc.detail))
        response.headers.update(exc.headers or {})
        return response

    @api.exception_handler(RedisError)
    async def redis_unavailable(_: Request, exc: RedisError) -> JSONResponse:
        response = error(503, f"redis unavailable: {describe(exc).rstrip('.')}; retry shortly")
        response.headers["Retry-After"] = str(RETRY_AFTER_S)
        return response
