"""Decisions: the offers chosen for a customer or a store's board, with why and how likely.

A decision is the question a touchpoint asks; its `decision_id` comes back on the answers.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

from models.context import Context
from models.customer import CustomerModel
from models.offer import Catalog
from models.policy import PolicyConfig, RankedOffer, rank
from models.trending import Trending

POLICY = "engine-v1"


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
            "policy": POLICY,
            "store_id": self.store_id,
            "context": self.context.as_json(),
            "created_at": self.created_at,
            "offers": offers,
        }
        if self.kind == "customer":
            out["customer_id"] = self.subject
            out["answers"] = self.answers
        return out


def decide_board(
    catalog: Catalog,
    store_id: str,
    ctx: Context,
    trending: Trending | None,
    now: float,
    rng: random.Random,
    cfg: PolicyConfig,
    decision_id: str,
) -> Decision:
    """What a store's screens show everyone now: context and trending, no one's own taste."""
    offers = rank(catalog.available(store_id, ctx.daypart), ctx, rng, cfg, trending, now)
    return Decision(decision_id, "board", store_id, store_id, ctx, tuple(offers), now)


def decide_for_customer(
    catalog: Catalog,
    customer_id: str,
    customer: CustomerModel,
    store_id: str | None,
    ctx: Context,
    trending: Trending | None,
    now: float,
    rng: random.Random,
    cfg: PolicyConfig,
    decision_id: str,
) -> Decision:
    """The customer's next best offers; remembers them in the model as the open question."""
    candidates = catalog.available(store_id, ctx.daypart)
    offers = rank(candidates, ctx, rng, cfg, trending, now, customer)
    customer.ask([o.offer_id for o in offers])
    return Decision(
        decision_id, "customer", customer_id, store_id, ctx, tuple(offers), now, customer.answers
    )
