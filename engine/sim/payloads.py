"""What the simulator sends to the API and reads from it: the wire's JSON, built purely.

`build_events` turns one visit, what it was shown and how the customer answered into the
events `POST /v1/events` takes; `catalog_from_api` reads the stores and offers the API
serves back into a `Catalog`; `iso_utc` is the wire's timestamp format. No I/O.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from engine.sim.world import Answer, Visit
from models.offer import Catalog, Offer, Store

# Answers come a little after the question, in simulated seconds.
DISMISS_AFTER_S = 3
CLICK_AFTER_S = 5
PURCHASE_AFTER_S = 20


def iso_utc(ts: datetime) -> str:
    """'2026-11-22T12:31:05Z': the wire's timestamp format, to the second.

    >>> from datetime import timezone
    >>> iso_utc(datetime(2026, 11, 22, 13, 31, 5, 999, tzinfo=timezone(timedelta(hours=1))))
    '2026-11-22T12:31:05Z'
    """
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_events(
    visit: Visit,
    shown: Sequence[str],
    decision_id: str | None,
    answer: Answer,
    catalog: Catalog,
    new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
) -> list[dict[str, Any]]:
    """The events of one visit, in order: an impression per shown offer (the questions),
    then dismisses, clicks and the purchases (the answers), all tied to `decision_id`.

    Pure apart from `new_id`; every dict validates as `engine.wire.events.Interaction`.
    """
    context = visit.conditions.as_json()

    def event(kind: str, offer_id: str, after_s: int, value: float | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "event_id": new_id(),
            "type": kind,
            "customer_id": visit.customer.customer_id,
            "store_id": visit.store_id,
            "channel": visit.channel,
            "offer_id": offer_id,
            "ts": iso_utc(visit.ts + timedelta(seconds=after_s)),
            "context": context,
        }
        if decision_id is not None:
            out["decision_id"] = decision_id
        if value is not None:
            out["value"] = value
        return out

    events = [event("impression", o, 0) for o in shown]
    events += [event("dismiss", o, DISMISS_AFTER_S) for o in answer.dismissed]
    events += [event("click", o, CLICK_AFTER_S) for o in answer.clicks]
    for i, offer_id in enumerate(answer.purchases):
        price = catalog.offers[offer_id].price
        events.append(event("purchase", offer_id, PURCHASE_AFTER_S + i, price))
    return events


def catalog_from_api(stores: dict[str, Any], offers: dict[str, Any]) -> Catalog:
    """The catalog as the API serves it (`GET /v1/stores`, `GET /v1/offers`)."""
    return Catalog.of(
        (
            Offer(
                offer_id=o["offer_id"],
                name=o.get("name", o["offer_id"]),
                category=o.get("category", "other"),
                price=float(o["price"]),
                prep_s=int(o.get("prep_s", 60)),
                dayparts=frozenset(o.get("dayparts", [])),
                tags=frozenset(o.get("tags", [])),
            )
            for o in offers["offers"]
        ),
        (
            Store(
                store_id=s["store_id"],
                name=s.get("name", s["store_id"]),
                utc_offset_h=float(s.get("utc_offset_h", 0.0)),
                lanes=int(s.get("lanes", 1)),
                exclude=frozenset(s.get("exclude", [])),
            )
            for s in stores["stores"]
        ),
    )
