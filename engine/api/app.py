"""The HTTP API: reads decisions from Redis, produces events to Kafka. No model work here.

Stateless, so any number of replicas can serve behind a load balancer.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from aiokafka import AIOKafkaProducer
from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import ValidationError

from config.catalog import load_catalog
from config.settings import Settings
from engine.api import board_page
from engine.api.auth import writer_check
from engine.api.gatekeeper import Gatekeeper, error
from engine.wire import metrics
from engine.wire.events import (
    Interaction,
    Situation,
    StoreContext,
    check_known,
    check_store_context,
    explain,
)
from engine.wire.serving import Serving
from engine.wire.topics import COMMAND_HEADER, INTERACTIONS, STORE_CONTEXT, ensure_topics
from models.offer import Catalog

MAX_EVENTS_PER_REQUEST = 1000
# The body of POST /v1/events is parsed by hand (one event or a list, with clean errors),
# so its schema is given to OpenAPI here; Situation is a component via the context route.
EVENT_SCHEMA = Interaction.model_json_schema(ref_template="#/components/schemas/{model}")
EVENT_SCHEMA.pop("$defs", None)


def _json(body: dict[str, Any]) -> Response:
    """A JSON response encoded by orjson, skipping FastAPI's encoder: the hot read paths
    serve decisions that are plain JSON already."""
    return Response(orjson.dumps(body), media_type="application/json")


def parse_events(body: bytes, catalog: Catalog) -> list[Interaction]:
    """Validate a request body of one event or a list; HTTP 400/413 says which and why."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise HTTPException(400, f"body is not JSON: {exc}") from None
    items = data if isinstance(data, list) else [data]
    if not items:
        raise HTTPException(400, "empty list: send at least one event")
    if len(items) > MAX_EVENTS_PER_REQUEST:
        raise HTTPException(
            413, f"{len(items)} events: at most {MAX_EVENTS_PER_REQUEST} per request"
        )
    events = []
    for i, item in enumerate(items):
        where = f"event {i}: " if isinstance(data, list) else ""
        try:
            event = Interaction.model_validate(item)
        except ValidationError as exc:
            metrics.API_EVENTS.labels("refused").inc()
            raise HTTPException(400, where + explain(exc).detail) from None
        if rejection := check_known(event, catalog):
            metrics.API_EVENTS.labels("refused").inc()
            raise HTTPException(400, where + rejection.detail)
        events.append(event)
    return events


def create_app(settings: Settings) -> FastAPI:
    may_write = writer_check(settings)
    catalog = load_catalog(settings.catalog)
    serving = Serving.from_url(settings.redis, settings.offers_ttl_s, settings.board_ttl_s)
    kafka: dict[str, AIOKafkaProducer] = {}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await ensure_topics(settings)
        kafka["producer"] = AIOKafkaProducer(bootstrap_servers=settings.kafka, linger_ms=2)
        await kafka["producer"].start()
        try:
            yield
        finally:
            await kafka["producer"].stop()
            await serving.close()

    api = FastAPI(
        title="Tailor",
        version="1",
        summary="Next-best offers for customers and boards for stores, learned live.",
        lifespan=lifespan,
    )

    if settings.cors_origins:
        api.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )

    api.add_middleware(Gatekeeper, max_body_bytes=settings.max_body_bytes)

    @api.exception_handler(RequestValidationError)
    async def bad_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            f"{'.'.join(str(p) for p in e['loc'][1:]) or e['loc'][0]}: {e['msg']}"
            for e in exc.errors()
        ]
        return error(400, "invalid request: " + "; ".join(details), details=details)

    @api.exception_handler(HTTPException)
    async def httperror(_: Request, exc: HTTPException) -> JSONResponse:
        response = error(exc.status_code, str(exc.detail))
        response.headers.update(exc.headers or {})
        return response

    def known_store(store_id: str) -> None:
        if store_id not in catalog.stores:
            raise HTTPException(404, f"no store {store_id!r}; known: {sorted(catalog.stores)}")

    @api.get("/healthz", tags=["operations"])
    async def healthz() -> JSONResponse:
        try:
            redis_ok = await asyncio.wait_for(serving.ping(), 1.0)
        except Exception:
            redis_ok = False
        status = 200 if redis_ok else 503
        return JSONResponse({"status": "ok" if redis_ok else "degraded", "redis": redis_ok}, status)

    @api.get("/metrics", tags=["operations"])
    async def prometheus() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @api.get("/v1/stores", tags=["catalog"])
    async def list_stores() -> dict[str, Any]:
        return {"stores": [s.as_json() for s in catalog.stores.values()]}

    @api.get("/v1/offers", tags=["catalog"])
    async def list_offers() -> dict[str, Any]:
        return {"offers": [o.as_json() for o in catalog.offers.values()]}

    @api.get("/v1/stores/{store_id}/board", tags=["signage"])
    async def store_board(store_id: str) -> Response:
        known_store(store_id)
        board = await serving.board(store_id)
        if board is None:
            raise HTTPException(503, f"no board for {store_id} yet: is a worker running?")
        return _json(board)

    @api.get("/v1/customers/{customer_id}/offers", tags=["personalization"])
    async def customer_offers(
        customer_id: str,
        store_id: str | None = None,
        channel: str | None = None,
        k: Annotated[int, Query(ge=1, le=50)] = settings.offers_per_decision,
    ) -> Response:
        """The customer's own decision, else the store's board, else the global favourites."""
        if store_id is not None:
            known_store(store_id)
        decision = await serving.customer_offers(customer_id)
        source = "customer"
        if decision is None and store_id is not None:
            decision, source = await serving.board(store_id), "store"
        if decision is None:
            source = "global"
            ranked = list(await serving.popular(k))
            popular = {o for o, _ in ranked}
            ranked += [(o, 0.0) for o in catalog.offers if o not in popular]
            decision = {
                "decision_id": "g-" + uuid.uuid4().hex,
                "offers": [
                    {"offer_id": o, "score": round(s, 4), "reasons": ["popular" if s else "menu"]}
                    for o, s in ranked[:k]
                ],
            }
        offers = decision.get("offers", [])[:k]
        return _json(
            {
                **decision,
                "customer_id": customer_id,
                "source": source,
                "channel": channel or decision.get("channel"),
                "offers": offers,
            }
        )

    @api.post(
        "/v1/events",
        status_code=202,
        tags=["events"],
        dependencies=[Depends(may_write)],
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "oneOf": [EVENT_SCHEMA, {"type": "array", "items": EVENT_SCHEMA}]
                        }
                    }
                },
            }
        },
    )
    async def post_events(request: Request) -> dict[str, Any]:
        """One event or a list of up to 1000; all are validated before any is produced."""
        body = await request.body()
        if len(body) > settings.max_body_bytes:
            raise HTTPException(
                413, f"body of {len(body)} bytes; at most {settings.max_body_bytes}"
            )
        events = parse_events(body, catalog)
        sends = [
            await kafka["producer"].send(
                INTERACTIONS,
                event.model_dump_json(exclude_none=True).encode(),
                key=event.customer_id.encode(),
            )
            for event in events
        ]
        await asyncio.gather(*sends)
        metrics.API_EVENTS.labels("accepted").inc(len(events))
        return {"accepted": len(events), "event_ids": [e.event_id for e in events]}

    @api.post(
        "/v1/stores/{store_id}/context",
        status_code=202,
        tags=["signage"],
        dependencies=[Depends(may_write)],
    )
    async def post_context(store_id: str, situation: Situation) -> dict[str, Any]:
        known_store(store_id)
        update = StoreContext(store_id=store_id, ts=datetime.now(UTC), **situation.model_dump())
        if rejection := check_store_context(update, catalog):
            raise HTTPException(400, rejection.detail)
        await kafka["producer"].send_and_wait(
            STORE_CONTEXT, orjson.dumps(update.model_dump(mode="json")), key=store_id.encode()
        )
        return {"accepted": 1, "store_id": store_id}

    @api.delete(
        "/v1/customers/{customer_id}",
        status_code=202,
        tags=["operations"],
        dependencies=[Depends(may_write)],
    )
    async def forget_customer(customer_id: str) -> dict[str, Any]:
        """Forget a customer everywhere: their offers in Redis now; their model and open
        questions in the worker, through a command on their own partition of
        tailor.interactions (so it follows every event they sent before)."""
        request_id = "f-" + uuid.uuid4().hex
        await kafka["producer"].send_and_wait(
            INTERACTIONS,
            orjson.dumps({"customer_id": customer_id, "request_id": request_id}),
            key=customer_id.encode(),
            headers=[(COMMAND_HEADER, b"forget")],
        )
        await serving.forget([customer_id])
        metrics.FORGET_REQUESTS.inc()
        return {
            "customer_id": customer_id,
            "request_id": request_id,
            "status": "accepted",
            "forgets": ["offers in Redis", "model in the worker", "open questions"],
            "keeps": "aggregate counts (trending, popularity) that name no one; the "
            "tailor.interactions and tailor.decisions logs until their retention ends",
        }

    api.state.catalog = catalog  # the board page reads it
    api.include_router(board_page.router)
    return api
