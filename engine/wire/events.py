"""The wire format: interactions and store context as JSON, validated once, here.

The API validates what it accepts and the worker validates what it consumes with the
same models, so a bad event is refused with the same words wherever it enters.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from models.answer import EventType
from models.offer import Catalog

Id = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[^\s]+$")]
# Anonymous sessions live in their own namespace, so an event can never name a known
# customer as "its session" and take that customer's model over.
SessionId = Annotated[str, Field(min_length=6, max_length=128, pattern=r"^anon-[^\s]+$")]
# A closed set: each weather is a trending scope, and free text would grow them unbounded.
Weather = Literal[
    "clear", "sunny", "cloudy", "fog", "windy", "rain", "storm", "snow", "sleet",
    "hot", "heatwave", "cold", "freezing",
]  # fmt: skip
Channel = Literal["drive_thru", "web", "app", "kiosk", "in_store"]


class Situation(BaseModel):
    """Store context as it is at a touchpoint (weather, temperature, lane queue), and on a
    store update the offers it has run out of (`stock_out`, replacing the previous list)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    weather: Weather | None = None
    temperature_c: Annotated[float, Field(ge=-60, le=60)] | None = None
    queue_length: Annotated[int, Field(ge=0, le=1000)] | None = None
    stock_out: Annotated[list[Id], Field(max_length=1000)] | None = None


def _utc(ts: datetime) -> datetime:
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts


class Interaction(BaseModel):
    """One touchpoint event: a question (impression) or an answer (click, purchase, ...)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: Id
    type: EventType
    customer_id: Id
    offer_id: Id
    # The anonymous session this customer was until now (a login, a loyalty scan): what the
    # session taught is merged into the customer.
    session_id: SessionId | None = None
    ts: datetime
    store_id: Id | None = None
    channel: Channel | None = None
    decision_id: Id | None = None
    value: Annotated[float, Field(ge=0)] | None = None
    context: Situation | None = None

    _utc_ts = field_validator("ts")(_utc)


class StoreContext(Situation):
    """A store's context update, as produced to `tailor.store-context` (keyed by store)."""

    store_id: Id
    ts: datetime = Field(default_factory=lambda: datetime.now(UTC))

    _utc_ts = field_validator("ts")(_utc)


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why an event was refused: `reason` is a short code (a metric label), `detail` says more."""

    reason: str
    detail: str


def explain(exc: ValidationError) -> Rejection:
    """A rejection naming each bad field, what it expected and what arrived."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    kind, loc = first["type"], tuple(first["loc"])
    if kind == "json_invalid":
        reason = "not_json"
    elif kind == "missing":
        reason = "missing_field"
    elif loc == ("type",):
        reason = "unknown_type"
    elif kind == "extra_forbidden":
        reason = "unknown_field"
    else:
        reason = "wrong_type"
    detail = "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}"
        + ("" if e["type"] in ("missing", "json_invalid") else f" (got {e.get('input')!r:.60})")
        for e in errors
    )
    return Rejection(reason, detail)


def check_known(event: Interaction, catalog: Catalog) -> Rejection | None:
    """The catalog checks the schema cannot make: the offer and store must exist."""
    if event.offer_id not in catalog.offers:
        return Rejection("unknown_offer", f"offer_id: no offer {event.offer_id!r} in the catalog")
    if event.store_id is not None and event.store_id not in catalog.stores:
        return Rejection("unknown_store", f"store_id: no store {event.store_id!r} in the catalog")
    return None


def decode_interaction(raw: bytes, catalog: Catalog) -> Interaction | Rejection:
    """Parse and validate one event from Kafka bytes."""
    try:
        event = Interaction.model_validate_json(raw)
    except ValidationError as exc:
        return explain(exc)
    return check_known(event, catalog) or event


def decode_store_context(raw: bytes, catalog: Catalog) -> StoreContext | Rejection:
    try:
        update = StoreContext.model_validate_json(raw)
    except ValidationError as exc:
        return explain(exc)
    return check_store_context(update, catalog) or update


def check_store_context(update: StoreContext, catalog: Catalog) -> Rejection | None:
    if update.store_id not in catalog.stores:
        return Rejection("unknown_store", f"store_id: no store {update.store_id!r} in the catalog")
    unknown = sorted(set(update.stock_out or ()) - set(catalog.offers))
    if unknown:
        return Rejection("unknown_offer", f"stock_out: no offers {unknown} in the catalog")
    return None
