"""Every error the API answers is JSON, `{"error": "what is wrong"}`, whatever its status.

Validation errors are 400s naming each bad field; HTTP errors (the routes' own, and the
router's 404 and 405) keep their status; Redis or Kafka out of reach is a 503 with
`Retry-After`. An unexpected exception is the Gatekeeper's JSON 500.
"""

from __future__ import annotations

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError
from starlette.exceptions import HTTPException as StarletteHTTPException

from engine.api.gatekeeper import error
from engine.api.producer import KafkaUnavailable, describe

RETRY_AFTER_S = 2


def kafka_unavailable(exc: KafkaUnavailable, retry: str) -> HTTPException:
    """The 503 for a write Kafka did not acknowledge in time; `retry` says why a retry is safe."""
    return HTTPException(
        503, f"kafka unavailable: {exc}; {retry}", headers={"Retry-After": str(RETRY_AFTER_S)}
    )


def install(api: FastAPI) -> None:
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
