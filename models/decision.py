"""Decisions: the offers chosen for a customer or a store's board, with why and how likely.

A decision is the question a touchpoint asks; its `decision_id` comes back on the answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from models.context import Context
from models.offer import Catalog
from models.policy import RankedOffer

ENGINE = "engine-v1"
CONTROL = "control-trending"  # the holdout: the menu prior and trending, nothing learned


@dataclass(frozen=True, slots=True)
class Decision:
    decision_id: str
    kind: Literal["customer", "board"]
    subject: str  # the customer id, or the store id of a board
    store_id: str | None
    context: Context
    offers: tuple[RankedOffer, ...]
    created_at: float
    answers: int = 0  # how many answers the customer's own model has learned from
    policy: str = ENGINE

    def as_json(self, catalog: Catalog) -> dict[str, object]:
        offers = []
        for r in self.offers:
            offer = catalog.offers[r.offer_id]
            offers.append(
                {
                    **r.as_json(),
                    "name": offer.name,
                    "price": offer.price,
                    "category": offer.category,
                }
            )
        out: dict[str, object] = {
            "decision_id": self.decision_id,
            "policy": self.policy,
            "store_id": self.store_id,
            "context": self.context.as_json(),
            "created_at": self.created_at,
            "offers": offers,
        }
        if self.kind == "customer":
            out["customer_id"] = self.subject
            out["answers"] = self.answers
        return out
