"""A customer's offers, tailored at request time for the store and channel asked.

The worker keeps two parts fresh in Redis (`models.shelf`): each store's shelf (what it
sells now, scored for everyone in its context, per channel) and each customer's taste.
A read adds the customer's taste to the shelf of the store asked for (or, with none
asked, of the store they were last at) and applies the rules: a few numpy operations
over the menu, no learning. Without a shelf yet (a worker still starting) the decision
stored at their last event is served; a customer with no model gets the store's board,
else the global favourites.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from dataclasses import replace
from typing import Any

import orjson

from engine.wire import metrics
from engine.wire.serving import Serving
from models.decision import Decision
from models.offer import Catalog
from models.policy import PolicyConfig
from models.scoring import Menu
from models.shelf import Shelf, Taste, tailor

log = logging.getLogger("tailor.api")

SOURCES = ("tailored", "stored", "board", "global")


class Offers:
    def __init__(self, catalog: Catalog, serving: Serving, policy: PolicyConfig) -> None:
        self.catalog, self.serving, self.policy = catalog, serving, policy
        self.rng = random.Random()
        self._menus: dict[tuple[str, ...], Menu] = {}
        self._shelves: dict[str, tuple[bytes, dict[str, Shelf]]] = {}
        for source in SOURCES:  # a series from the start: reads as 0, not no data
            metrics.OFFERS_SOURCE.labels(source)

    def shelves(self, store_id: str, raw: bytes) -> dict[str, Shelf]:
        """The store's shelves by policy, parsed once per version of the record."""
        hit = self._shelves.get(store_id)
        if hit is not None and hit[0] == raw:
            return hit[1]
        shelves = {
            policy: Shelf.from_json(shelf, self.catalog, self.policy, self._menus)
            for policy, shelf in orjson.loads(raw)["shelves"].items()
        }
        if len(self._shelves) > 4096:
            self._shelves.clear()
        self._shelves[store_id] = (raw, shelves)
        return shelves

    def tailored(
        self,
        customer_id: str,
        record: dict[str, Any],
        store_id: str,
        raw_shelf: bytes | None,
        channel: str | None,
        k: int,
    ) -> dict[str, Any] | None:
        """The customer's decision at the store now (None: no shelf or taste to make it)."""
        if raw_shelf is None or "taste" not in record:
            return None
        try:
            taste = Taste.from_json(record["taste"])
            shelf = self.shelves(store_id, raw_shelf).get(taste.policy)
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            log.warning(
                "serving %s's stored decision: unreadable shelf or taste: %r", customer_id, exc
            )
            return None
        if shelf is None:
            return None
        now = time.time()
        ctx, offers = tailor(shelf, taste, channel, now, self.rng, replace(self.policy, k=k))
        decision = Decision(
            "r-" + uuid.uuid4().hex, "customer", customer_id, ctx.store_id, ctx, tuple(offers),
            now, policy=taste.policy,
        )  # fmt: skip
        return decision.as_json(self.catalog)

    async def lookup(
        self, customer_id: str, store_id: str | None, channel: str | None, k: int
    ) -> tuple[dict[str, Any], str]:
        """(decision, source): "customer", "store" or "global", as the response says."""
        record, raw_shelf = await self.serving.customer_and_shelf(customer_id, store_id)
        if record is not None:
            at = store_id or str(record.get("store_id"))
            decision = self.tailored(customer_id, record, at, raw_shelf, channel, k)
            metrics.OFFERS_SOURCE.labels("stored" if decision is None else "tailored").inc()
            return decision or record, "customer"
        if store_id is not None and (board := await self.serving.board(store_id)) is not None:
            metrics.OFFERS_SOURCE.labels("board").inc()
            return board, "store"
        metrics.OFFERS_SOURCE.labels("global").inc()
        ranked = list(await self.serving.popular(k))
        popular = {o for o, _ in ranked}
        ranked += [(o, 0.0) for o in self.catalog.offers if o not in popular]
        return {
            "decision_id": "g-" + uuid.uuid4().hex,
            "offers": [
                {"offer_id": o, "score": round(s, 4), "reasons": ["popular" if s else "menu"]}
                for o, s in ranked[:k]
            ],
        }, "global"
