"""A lane's board: `GET /v1/stores/{store_id}/board?lane=N`.

While a loyalty scan at the lane is current (the worker keeps its personal board in Redis,
`tailor:lane:{store}:{lane}`, expiring when it ends), the lane shows the scanned customer's
offers, shaped for a screen everyone in the lane can see: the offers and the store's context
now, `"source": "lane"`, `"personal": true` and how long it remains; never the customer's
id, history or last visit. Otherwise the lane shows the store board, `"source": "store"`.

>>> stored = {"decision_id": "d-1", "policy": "engine-v1", "store_id": "s-1", "lane": 1,
...     "until": 130.0, "context": {"daypart": "lunch"}, "customer_id": "c-9",
...     "offers": [{"offer_id": "fries", "score": 1.2, "reasons": [], "slot": 0}]}
>>> board = personal_board(stored, "Main St", 100.0)
>>> board["source"], board["personal"], board["remaining_s"], "customer_id" in board
('lane', True, 30.0, False)
>>> board["offers"]
[{'offer_id': 'fries', 'score': 1.2, 'reasons': []}]
"""

from __future__ import annotations

import time
from typing import Any, Literal

from fastapi import HTTPException
from pydantic import BaseModel, ConfigDict, Field

from engine.api.public import OFFER_FIELDS, PublicOffer
from engine.api.served import ServedLog
from engine.wire.serving import LANE_CONTEXT, Serving
from models.offer import Store

LANE_QUERY = (
    "a drive-thru lane of the store (1 to its `lanes`): while a loyalty scan there is current, "
    "the scanned customer's offers (`source` `lane`), else the store board (`source` `store`)"
)


def check_lane(store: Store, lane: int) -> None:
    """A 400 unless the store has the lane."""
    if lane > store.lanes:
        raise HTTPException(
            400, f"lane: store {store.store_id!r} has lanes 1 to {store.lanes} (got {lane})"
        )


async def personal(
    serving: Serving, served: ServedLog, store: Store, lane: int
) -> dict[str, Any] | None:
    """The lane's personal board while a scan there is current (logged as served), else
    None; a 400 for a lane the store does not have."""
    check_lane(store, lane)
    stored = await serving.lane(store.store_id, lane)
    if stored is None:
        return None
    served.note(stored, "lane", len(stored.get("offers", [])), store.store_id)
    return personal_board(stored, store.name, time.time())


def personal_board(stored: dict[str, Any], store_name: str, now: float) -> dict[str, Any]:
    """The public answer for a lane with a current scan, from what the worker stored."""
    context = stored.get("context") or {}
    return {
        "decision_id": stored["decision_id"],
        "policy": stored.get("policy"),
        "store_id": stored.get("store_id"),
        "store_name": store_name,
        "lane": stored.get("lane"),
        "source": "lane",
        "personal": True,
        "remaining_s": round(max(0.0, float(stored.get("until", now)) - now), 1),
        "context": {name: context[name] for name in LANE_CONTEXT if name in context},
        "offers": [
            {name: offer[name] for name in OFFER_FIELDS if name in offer}
            for offer in stored.get("offers", [])
        ],
    }


def store_board_for_lane(board: dict[str, Any], lane: int) -> dict[str, Any]:
    """The store board, as a lane with no current scan shows it."""
    return {**board, "lane": lane, "source": "store", "personal": False}


class LaneContext(BaseModel):
    """The store's situation as the board was decided in."""

    daypart: str | None = None
    weather: str | None = None
    temperature_c: float | None = None
    queue_length: int | None = None


class LaneBoard(BaseModel):
    """A lane's personal board: the scanned customer's offers; nothing that names them."""

    model_config = ConfigDict(extra="forbid")

    decision_id: str
    policy: str | None
    store_id: str | None
    store_name: str
    lane: int
    source: Literal["lane"]
    personal: Literal[True]
    remaining_s: float = Field(description="seconds until the lane shows the store board again")
    context: LaneContext
    offers: list[PublicOffer]


class StoreBoard(BaseModel):
    """A store's board (`source` and `lane` when asked for a lane with no current scan)."""

    model_config = ConfigDict(extra="allow")

    decision_id: str
    offers: list[dict[str, Any]]
    store_id: str | None = None
    store_name: str | None = None
    source: Literal["store"] | None = None
    lane: int | None = None
    personal: Literal[False] | None = None


BOARD_ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {
        "model": LaneBoard | StoreBoard,
        "description": "the store board; with `lane`, that lane's personal board while a "
        "loyalty scan there is current",
    }
}
