"""The wire format: interactions and store context as JSON, validated once, here.

The API validates what it accepts and the worker validates what it consumes with the
same models, so a bad event is refused with the same words wherever it enters.
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Literal, get_args

import orjson
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)
from pydantic_core import PydanticCustomError

from models.answer import EventType
from models.offer import Catalog

ID_MAX_CHARS = 128
ID_RULE = (
    f"an id is 1 to {ID_MAX_CHARS} printable characters: no whitespace, no control or "
    "invisible formatting characters, no '/', and not '.' or '..'"
)
SESSION_PREFIX = "anon-"
IDENTIFY = "identify"  # the type of a loyalty scan at a lane (`Identification`)
MAX_LANES = 20  # the most lanes a scan may name; the catalog's `lanes` says a store's own


def id_problem(value: str) -> str | None:
    """What keeps `value` from being an id, or None when it is one.

    One grammar for every id (customer, store, offer, event, decision, session, stock_out),
    in a body and in a path, so every id the API accepts can be read and deleted again
    through a path parameter and printed in a log as it is.

    >>> id_problem("c-1042") is None
    True
    >>> id_problem("a/b")
    "has '/' at position 1"
    >>> id_problem("nul\\x00")
    'has a control character U+0000 at position 3'
    """
    if (
        0 < len(value) <= ID_MAX_CHARS
        and value.isprintable()  # no control, format, separator (but ' ') or unassigned
        and " " not in value
        and "/" not in value
        and value not in (".", "..")
    ):
        return None
    if not value:
        return "is empty"
    if len(value) > ID_MAX_CHARS:
        return f"has {len(value)} characters"
    if value in (".", ".."):
        return f"is {value!r}, a path segment of its own"
    for i, ch in enumerate(value):
        if ch == "/":
            return f"has '/' at position {i}"
        if ch.isspace():
            return f"has whitespace U+{ord(ch):04X} at position {i}"
        if not ch.isprintable():
            kind = "a control" if unicodedata.category(ch) == "Cc" else "an unprintable"
            return f"has {kind} character U+{ord(ch):04X} at position {i}"
    return "is not an id"  # pragma: no cover - every refusal above names its reason


def _valid_id(value: str) -> str:
    if problem := id_problem(value):
        raise PydanticCustomError(
            "bad_id", "{problem}; {rule}", {"problem": problem, "rule": ID_RULE}
        )
    return value


def _valid_session_id(value: str) -> str:
    _valid_id(value)
    if not value.startswith(SESSION_PREFIX) or len(value) == len(SESSION_PREFIX):
        raise PydanticCustomError(
            "bad_id",
            "a session id is anonymous: '{prefix}' and more, never a known customer's id",
            {"prefix": SESSION_PREFIX},
        )
    return value


_ID_SCHEMA = {"minLength": 1, "maxLength": ID_MAX_CHARS, "pattern": r"^[^\s/\x00-\x1f\x7f-\x9f]+$"}
Id = Annotated[
    str, AfterValidator(_valid_id), Field(description=ID_RULE, json_schema_extra=_ID_SCHEMA)
]
# Anonymous sessions live in their own namespace, so an event can never name a known
# customer as "its session" and take that customer's model over.
SessionId = Annotated[
    str,
    AfterValidator(_valid_session_id),
    Field(
        description=f"'{SESSION_PREFIX}' and more; " + ID_RULE,
        json_schema_extra={**_ID_SCHEMA, "pattern": r"^anon-[^\s/\x00-\x1f\x7f-\x9f]+$"},
    ),
]


def _valid_known_customer(value: str) -> str:
    _valid_id(value)
    if value.startswith(SESSION_PREFIX):
        raise PydanticCustomError(
            "bad_id",
            "a loyalty scan names a known customer, not an anonymous '{prefix}' session",
            {"prefix": SESSION_PREFIX},
        )
    return value


KnownCustomerId = Annotated[
    str,
    AfterValidator(_valid_known_customer),
    Field(
        description=f"a known customer (not '{SESSION_PREFIX}...'); " + ID_RULE,
        json_schema_extra={**_ID_SCHEMA, "pattern": r"^(?!anon-)[^\s/\x00-\x1f\x7f-\x9f]+$"},
    ),
]
Lane = Annotated[
    int, Field(ge=1, le=MAX_LANES, description="a drive-thru lane of the store, 1 first")
]
# A closed set: each weather is a trending scope, and free text would grow them unbounded.
Weather = Literal[
    "clear", "sunny", "cloudy", "fog", "windy", "rain", "storm", "snow", "sleet",
    "hot", "heatwave", "cold", "freezing",
]  # fmt: skip
Channel = Literal["drive_thru", "web", "app", "kiosk", "in_store"]
CHANNELS: tuple[str, ...] = get_args(Channel)


class Situation(BaseModel):
    """Store context as it is at a touchpoint (weather, temperature, lane queue), and on a
    store update the offers it has run out of (`stock_out`, replacing the previous list)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    weather: Weather | None = None
    temperature_c: Annotated[float, Field(ge=-60, le=60)] | None = None
    queue_length: Annotated[int, Field(ge=0, le=1000)] | None = None
    stock_out: Annotated[list[Id], Field(max_length=1000)] | None = None


def _utc(ts: datetime) -> datetime:
    """In UTC (a naive time is taken as UTC). Refuses, as a validation error rather than a
    crash later, a time whose offset carries it past the years 1 to 9999 in UTC."""
    if ts.tzinfo is None:
        return ts.replace(tzinfo=UTC)
    try:
        return ts.astimezone(UTC)
    except (OverflowError, ValueError):
        raise PydanticCustomError(
            "datetime_range", "{ts} is outside the years 1 to 9999 in UTC", {"ts": ts.isoformat()}
        ) from None


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
    # An impression's position on the screen (0 first): learned as position bias.
    slot: Annotated[int, Field(ge=0, le=99)] | None = None
    value: Annotated[float, Field(ge=0)] | None = None
    context: Situation | None = None

    _utc_ts = field_validator("ts")(_utc)


class Identification(BaseModel):
    """A loyalty scan at a drive-thru lane's speaker post: a known customer is in `lane` of
    `store_id` now. No question and no answer, so nothing is learned from it: the lane's
    board shows the customer's offers, decided at this store now, for
    TAILOR_LANE_PERSONAL_S, then the store board again."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: Id
    type: Literal["identify"]
    customer_id: KnownCustomerId
    store_id: Id
    lane: Lane
    ts: datetime
    context: Situation | None = None

    _utc_ts = field_validator("ts")(_utc)

    @property
    def channel(self) -> Channel:
        return "drive_thru"  # a lane is the drive-thru


class StoreContext(Situation):
    """A store's context update, as produced to `tailor.store-context` (keyed by store)."""

    store_id: Id
    ts: datetime = Field(default_factory=lambda: datetime.now(UTC))

    _utc_ts = field_validator("ts")(_utc)


class ContextUpdate(Situation):
    """The body of `POST /v1/stores/{store_id}/context`: a sensor says when it read the
    situation, since the update may reach the API late; absent, the API stamps arrival."""

    ts: Annotated[datetime, AfterValidator(_utc)] | None = Field(
        None, description="ISO 8601 time the reading was taken (default: when it arrives)"
    )


# Why a record went to the dead-letter topic (`tailor_dead_letters_total{reason}`).
Reason = Literal[
    "not_json", "missing_field", "unknown_type", "unknown_field", "wrong_type",
    "bad_timestamp", "unknown_offer", "unknown_store", "unknown_lane", "bad_key",
    "bad_command", "bad_answer", "unreadable", "processing_error",
]  # fmt: skip
REASONS: tuple[Reason, ...] = get_args(Reason)


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why an event was refused: `reason` is a short code (a metric label), `detail` says more."""

    reason: Reason
    detail: str


def explain(exc: ValidationError) -> Rejection:
    """A rejection naming each bad field, what it expected and what arrived."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    kind, loc = first["type"], tuple(first["loc"])
    reason: Reason
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


def _when(seconds: float) -> str:
    """An epoch time as ISO 8601 UTC, whatever the number (a record's timestamp may be junk)."""
    if not math.isfinite(seconds):
        return "the end of time" if seconds > 0 else "the beginning of time"
    try:
        return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")
    except (OverflowError, ValueError, OSError):
        return f"{_seconds(seconds)} s after the epoch"


def _seconds(seconds: float) -> str:
    """300, 0.5, 2592000, 2.5e+20: readable for any count of seconds."""
    return f"{seconds:.3f}".rstrip("0").rstrip(".") if abs(seconds) < 1e15 else f"{seconds:.3g}"


def check_time(
    event: Interaction | Identification | StoreContext,
    arrival_s: float,
    max_future_s: float,
    max_age_s: float,
) -> Rejection | None:
    """Refuse a clock gone wrong: `ts` later than `arrival_s + max_future_s` or earlier than
    `arrival_s - max_age_s` (epoch seconds: the API's clock, or the worker's Kafka record
    timestamp). Either edge itself is accepted. Pure: the caller gives the clock."""
    ts = event.ts.timestamp()
    if ts > arrival_s + max_future_s:
        how = f"{_seconds(ts - arrival_s)} s after it arrived"
    elif ts < arrival_s - max_age_s:
        how = f"{_seconds(arrival_s - ts)} s before it arrived"
    else:
        return None
    return Rejection(
        "bad_timestamp",
        f"ts: {event.ts.isoformat()} is {how} at {_when(arrival_s)}; accepted from "
        f"{_when(arrival_s - max_age_s)} (TAILOR_MAX_EVENT_AGE_S={_seconds(max_age_s)} s before "
        f"arrival) to {_when(arrival_s + max_future_s)} (TAILOR_MAX_FUTURE_SKEW_S="
        f"{_seconds(max_future_s)} s after)",
    )


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


def check_lane(scan: Identification, catalog: Catalog) -> Rejection | None:
    """The store must exist and have the lane."""
    store = catalog.stores.get(scan.store_id)
    if store is None:
        return Rejection("unknown_store", f"store_id: no store {scan.store_id!r} in the catalog")
    if scan.lane > store.lanes:
        return Rejection(
            "unknown_lane",
            f"lane: store {scan.store_id!r} has lanes 1 to {store.lanes} (got {scan.lane})",
        )
    return None


def event_model(item: object) -> type[Interaction] | type[Identification]:
    """Which record an event's JSON is: a loyalty scan, or an interaction."""
    scan = isinstance(item, dict) and item.get("type") == IDENTIFY
    return Identification if scan else Interaction


def check_event(event: Interaction | Identification, catalog: Catalog) -> Rejection | None:
    """What the catalog says of an event: its offer, store and lane must exist."""
    if isinstance(event, Identification):
        return check_lane(event, catalog)
    return check_known(event, catalog)


def says_identify(raw: bytes) -> bool:
    """Whether a record an `Interaction` refused is a loyalty scan (read again only then,
    so the interactions' path stays one parse)."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return False
    return event_model(data) is Identification


def decode_event(raw: bytes, catalog: Catalog) -> Interaction | Identification | Rejection:
    """Parse and validate one record of tailor.interactions: an interaction, or a scan."""
    got = decode_interaction(raw, catalog)
    if not isinstance(got, Rejection) or not says_identify(raw):
        return got
    try:
        scan = Identification.model_validate_json(raw)
    except ValidationError as exc:
        return explain(exc)
    return check_lane(scan, catalog) or scan


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
