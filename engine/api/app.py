"""The HTTP API: serves decisions from Redis, produces events to Kafka. No learning here.

Stateless, so any number of replicas can serve behind a load balancer. Never hangs on a
server: a write Kafka has not acknowledged within `produce_timeout_s` is a 503, a read Redis
does not answer within about a second is a 503, both JSON with `Retry-After`.
"""

from __future__ import annotations

import asyncio
import gc
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
import redis.asyncio as aioredis
from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request, Response
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import ValidationError
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from config.catalog import load_catalog
from config.settings import Settings
from engine.api import board_page, docs, errors, lanes, public
from engine.api.auth import ADMIN, INGEST, Access, Caller
from engine.api.errors import answers
from engine.api.gatekeeper import Gatekeeper
from engine.api.health import PROBE_TIMEOUT_S, CachedProbe, Health
from engine.api.offers import Offers
from engine.api.ops_page import install as install_ops
from engine.api.producer import KafkaUnavailable, Producer, Record
from engine.api.served import ServedLog
from engine.wire import metrics
from engine.wire.events import (
    ID_RULE,
    Channel,
    ContextUpdate,
    Identification,
    Interaction,
    Lane,
    StoreContext,
    check_event,
    check_store_context,
    check_time,
    event_model,
    explain,
    id_problem,
)
from engine.wire.serving import Serving
from engine.wire.topics import COMMAND_HEADER, INTERACTIONS, STORE_CONTEXT
from models.offer import Catalog

MAX_EVENTS_PER_REQUEST = 1000
# Every Redis call of a request is bounded by these socket timeouts, so a Redis that is
# down or hung costs a read about a second, then a 503; one retry on a broken connection
# (a pooled socket Redis closed on a restart), none on a timeout.
REDIS_TIMEOUT_S = 1.0
# The body of POST /v1/events is parsed by hand (one event or a list, with clean errors),
# so its schema is given to OpenAPI here, whole.
EVENT_SCHEMA = {
    "oneOf": [docs.inlined(m.model_json_schema()) for m in (Interaction, Identification)]
}


def _json(body: dict[str, Any]) -> Response:
    """A JSON response encoded by orjson, skipping FastAPI's encoder: the hot read paths
    serve decisions that are plain JSON already."""
    return Response(orjson.dumps(body), media_type="application/json")


def parse_events(
    body: bytes,
    catalog: Catalog,
    arrival_s: float | None = None,
    max_future_s: float = float("inf"),
    max_age_s: float = float("inf"),
) -> list[Interaction | Identification]:
    """Validate a request body of one event or a list; HTTP 400/413 says which and why.
    With `arrival_s` (the API's clock), each `ts` must also lie in the window `check_time`
    allows."""
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
            event = event_model(item).model_validate(item)
        except ValidationError as exc:
            metrics.API_EVENTS.labels("refused").inc()
            raise HTTPException(400, where + explain(exc).detail) from None
        rejection = check_event(event, catalog)
        if rejection is None and arrival_s is not None:
            rejection = check_time(event, arrival_s, max_future_s, max_age_s)
        if rejection is not None:
            metrics.API_EVENTS.labels("refused").inc()
            raise HTTPException(400, where + rejection.detail)
        events.append(event)
    return events


def path_id(name: str, value: str) -> str:
    """A path parameter holds an id of the one grammar every id has, or it is a 400."""
    if problem := id_problem(value):
        raise HTTPException(400, f"{name} {problem}; {ID_RULE} (got {value!r:.60})")
    return value


# Async, though they never wait: FastAPI runs a plain function dependency in a thread
# pool, a few hundred microseconds per request on the hottest path.
async def customer_path(customer_id: Annotated[str, Path(description=ID_RULE)]) -> str:
    return path_id("customer_id", customer_id)


async def store_path(store_id: Annotated[str, Path(description=ID_RULE)]) -> str:
    return path_id("store_id", store_id)


def redis_client(url: str) -> aioredis.Redis:
    return aioredis.from_url(
        url,
        socket_timeout=REDIS_TIMEOUT_S,
        socket_connect_timeout=REDIS_TIMEOUT_S,
        retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
    )


def create_app(settings: Settings) -> FastAPI:
    catalog = load_catalog(settings.catalog)
    access = Access(settings, catalog)
    serving = Serving(redis_client(settings.redis), settings.offers_ttl_s, settings.board_ttl_s)
    producer = Producer(settings)
    served = ServedLog(producer)
    offers = Offers(catalog, serving, settings.policy)
    redis_probe = CachedProbe(serving.ping)
    kafka_probe = CachedProbe(lambda: producer.probe(PROBE_TIMEOUT_S))

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await producer.start()
        served.start()
        # What is built by now lives as long as the process (the catalog, the app, the
        # clients): frozen out of the collector's sight, as the worker does, so a full
        # collection in the middle of a request scans far less.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await served.stop()
            await producer.stop()
            await serving.close()

    api = FastAPI(
        title="Tailor",
        version="1",
        summary="Next-best offers for customers and boards for stores, learned live.",
        lifespan=lifespan,
        docs_url=None,  # docs.install serves /docs from bundled assets, and no /redoc
        redoc_url=None,
    )

    if settings.cors_origins:
        api.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )

    api.add_middleware(Gatekeeper, max_body_bytes=settings.max_body_bytes)
    errors.install(api)
    docs.install(api)

    def known_store(store_id: str) -> None:
        if store_id not in catalog.stores:
            raise HTTPException(404, f"no store {store_id!r}; known: {sorted(catalog.stores)}")

    @api.get(
        "/healthz", tags=["operations"], responses={200: {"model": Health}, 503: {"model": Health}}
    )
    async def healthz() -> JSONResponse:
        """200 `{"status": "ok", "redis": true, "kafka": true}` when both answer a real round
        trip within about a second; else 503, "degraded", naming which does not."""
        redis_ok, kafka_ok = await asyncio.gather(redis_probe.check(), kafka_probe.check())
        ok = redis_ok and kafka_ok
        body = {"status": "ok" if ok else "degraded", "redis": redis_ok, "kafka": kafka_ok}
        return JSONResponse(body, 200 if ok else 503)

    @api.get("/metrics", tags=["operations"], response_class=PlainTextResponse)
    async def prometheus() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @api.get("/v1/stores", tags=["catalog"])
    async def list_stores() -> dict[str, Any]:
        return {"stores": [s.as_json() for s in catalog.stores.values()]}

    @api.get("/v1/offers", tags=["catalog"])
    async def list_offers() -> dict[str, Any]:
        return {"offers": [o.as_json() for o in catalog.offers.values()]}

    @api.get(
        "/v1/stores/{store_id}/board",
        tags=["signage"],
        dependencies=[Depends(access.board_reader())],
        responses={**lanes.BOARD_ANSWERS, **answers(400, 401, 403, 404, 503)},
    )
    async def store_board(
        store_id: Annotated[str, Depends(store_path)],
        lane: Annotated[Lane | None, Query(description=lanes.LANE_QUERY)] = None,
    ) -> Response:
        """The store's board now; with `lane`, that lane's: the scanned customer's offers
        while a loyalty scan there is current (nothing that names them), else the store's."""
        known_store(store_id)
        if lane is not None and (
            personal := await lanes.personal(serving, served, catalog.stores[store_id], lane)
        ):
            return _json(personal)
        board = await serving.board(store_id)
        if board is None:
            raise errors.no_board_yet(store_id)
        served.note(board, "board", len(board.get("offers", [])), store_id)
        return _json(board if lane is None else lanes.store_board_for_lane(board, lane))

    @api.get(
        "/v1/customers/{customer_id}/offers",
        tags=["personalization"],
        dependencies=[Depends(access.customer_reader())],
        responses={200: {"model": public.CustomerOffers}, **answers(400, 401, 403, 404, 503)},
    )
    async def customer_offers(
        customer_id: Annotated[str, Depends(customer_path)],
        store_id: str | None = None,
        channel: Channel | None = None,
        k: Annotated[int, Query(ge=1, le=50)] = settings.offers_per_decision,
    ) -> Response:
        """The customer's offers at `store_id` now (else where they last were), for
        `channel`: their own model on the store's current menu, weather, daypart, queue and
        trending; else the store's board, else the global favourites. Never the customer's
        history (no last visit's time, store or answer count)."""
        if store_id is not None:
            known_store(path_id("store_id", store_id))
        decision, source = await offers.lookup(customer_id, store_id, channel, k)
        kind = {"customer": "customer", "store": "board"}.get(source, "global")
        served.note(decision, kind, k, customer_id if kind == "customer" else str(store_id))
        return _json(public.customer_offers(decision, customer_id, source, store_id, channel, k))

    @api.post(
        "/v1/events",
        status_code=202,
        tags=["events"],
        dependencies=[Depends(access.needs(INGEST))],
        responses=answers(400, 401, 403, 413, 503),
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
        events = parse_events(
            body, catalog, time.time(), settings.max_future_skew_s, settings.max_event_age_s
        )
        records = [
            Record(
                INTERACTIONS,
                event.model_dump_json(exclude_none=True).encode(),
                event.customer_id.encode(),
            )
            for event in events
        ]
        try:
            await producer.send(records)
        except KafkaUnavailable as exc:
            metrics.API_EVENTS.labels("unavailable").inc(len(events))
            raise errors.kafka_unavailable(
                exc,
                "the events may still reach it, and sending them again with the same "
                "event_id is safe: the worker drops duplicates",
            ) from None
        metrics.API_EVENTS.labels("accepted").inc(len(events))
        return {"accepted": len(events), "event_ids": [e.event_id for e in events]}

    @api.post(
        "/v1/stores/{store_id}/context",
        status_code=202,
        tags=["signage"],
        responses=answers(400, 401, 403, 404, 413, 503),
    )
    async def post_context(
        *,
        caller: Caller = Depends(access.store_device()),  # noqa: B008 - first: auth, then ids
        store_id: Annotated[str, Depends(store_path)],
        body: ContextUpdate,
    ) -> dict[str, Any]:
        """A store's situation now, or at `ts` when a sensor says when it read it (within
        the window events' `ts` must lie in); a `stock_out` list needs the admin scope."""
        if body.stock_out is not None:
            access.insist(caller, "stock_out in a store's context", ADMIN)
        known_store(store_id)
        arrival_s = time.time()
        update = StoreContext(
            store_id=store_id,
            ts=body.ts or datetime.fromtimestamp(arrival_s, UTC),
            **body.model_dump(exclude={"ts"}),
        )
        rejection = check_store_context(update, catalog)
        if rejection is None and body.ts is not None:
            window = settings.max_future_skew_s, settings.max_event_age_s
            rejection = check_time(update, arrival_s, *window)
        if rejection is not None:
            raise HTTPException(400, rejection.detail)
        value = orjson.dumps(update.model_dump(mode="json"))
        try:
            await producer.send([Record(STORE_CONTEXT, value, store_id.encode())])
        except KafkaUnavailable as exc:
            raise errors.kafka_unavailable(
                exc, "sending the update again is safe: the latest update wins"
            ) from None
        return {"accepted": 1, "store_id": store_id, "ts": update.ts.isoformat()}

    @api.delete(
        "/v1/customers/{customer_id}",
        status_code=202,
        tags=["operations"],
        dependencies=[Depends(access.needs(ADMIN))],
        responses=answers(400, 401, 403, 503),
    )
    async def forget_customer(
        customer_id: Annotated[str, Depends(customer_path)],
    ) -> dict[str, Any]:
        """Forget a customer everywhere: their offers in Redis now; their model and open
        questions in the worker, through a command on their own partition of
        tailor.interactions (so it follows every event they sent before)."""
        request_id = "f-" + uuid.uuid4().hex
        command = Record(
            INTERACTIONS,
            orjson.dumps({"customer_id": customer_id, "request_id": request_id}),
            customer_id.encode(),
            ((COMMAND_HEADER, b"forget"),),
        )
        try:
            await producer.send([command])
        except KafkaUnavailable as exc:
            raise errors.kafka_unavailable(
                exc, "nothing was forgotten for sure yet; sending the DELETE again is safe"
            ) from None
        await serving.forget([customer_id])
        metrics.FORGET_REQUESTS.inc()
        return {
            "customer_id": customer_id,
            "request_id": request_id,
            "status": "accepted",
            "forgets": [
                "offers in Redis",
                "a lane's board showing them after a loyalty scan",
                "model in the worker",
                "open questions",
            ],
            "keeps": "aggregate counts (trending, popularity) that name no one; the "
            "tailor.interactions and tailor.decisions logs until their retention ends",
        }

    api.state.catalog = catalog  # the board page reads it
    api.include_router(board_page.router)
    install_ops(api, settings.prometheus)
    return api
