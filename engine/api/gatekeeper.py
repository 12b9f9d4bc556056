"""The API's outer ASGI layer: body limits, JSON errors, and request metrics."""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine.wire import metrics

log = logging.getLogger("tailor.api")


def error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


class Gatekeeper:
    """Pure ASGI middleware: refuses oversized bodies (413), whether they declare their
    length or stream it in chunks, answers an unexpected exception with a JSON 500 (logged
    with its request id), and records each request's route, status and latency.
    Starlette's BaseHTTPMiddleware would cost about half a millisecond per request."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0
        received = 0
        limit = self.max_body_bytes
        overflow = False  # the body passed the limit: stop reading, answer 413
        too_large = error(413, f"request body over {limit} bytes")

        async def observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        async def replaced(message: Message) -> None:
            # Whatever the app answers to a truncated body, the client gets the 413.
            if overflow:
                if message["type"] == "http.response.start" and not status:
                    await too_large(scope, receive, observed)
                return
            await observed(message)

        async def counted() -> Message:
            nonlocal received, overflow
            if overflow:
                return {"type": "http.request", "body": b"", "more_body": False}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    overflow = True
                    return {"type": "http.request", "body": b"", "more_body": False}
            return message

        length = dict(scope["headers"]).get(b"content-length", b"")
        try:
            if length.isdigit() and int(length) > limit:
                await too_large(scope, receive, observed)
            else:
                await self.app(scope, counted, replaced)
        except Exception:
            if status:  # the response has started: nothing can replace it
                raise
            # A bug, not the client's fault: a JSON 500 naming a request id the log has too.
            request_id = uuid.uuid4().hex[:16]
            log.exception(
                "internal error, request_id %s: %s %s", request_id, scope["method"], scope["path"]
            )
            await error(500, "internal error", request_id=request_id)(scope, receive, replaced)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            method, code = scope["method"], str(status)
            code = code if status else "500"
            metrics.API_SECONDS.labels(method, route, code).observe(time.perf_counter() - started)
            metrics.API_REQUESTS.labels(method, route, code).inc()
