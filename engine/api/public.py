"""What a public response may carry: a customer's offers, never their history.

The worker's decision for a customer names where and when it was made (the store, the
context of their last visit, `created_at`, the channel) and how many answers they gave:
useful inside, personal outside. `customer_offers` keeps only what the contract promises
(each offer's id, score and reasons, with its name, price, category, P(yes) and
propensity; the decision id, its policy and the source), and echoes the request.

>>> decision = {"decision_id": "d-1", "policy": "engine-v1", "store_id": "s-3",
...     "created_at": 1.0, "answers": 7, "context": {"weather": "rain"}, "channel": "app",
...     "offers": [{"offer_id": "fries", "score": 1.2, "reasons": [], "slot": 0}]}
>>> sorted(customer_offers(decision, "c-1", "customer", None, None, 6))
['channel', 'customer_id', 'decision_id', 'offers', 'policy', 'source', 'store_id']
>>> customer_offers(decision, "c-1", "customer", None, None, 6)["offers"]
[{'offer_id': 'fries', 'score': 1.2, 'reasons': []}]
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

OFFER_FIELDS = ("offer_id", "name", "price", "category", "score", "p_yes", "propensity", "reasons")


def customer_offers(
    decision: dict[str, Any],
    customer_id: str,
    source: str,
    store_id: str | None,
    channel: str | None,
    k: int,
) -> dict[str, Any]:
    """The public answer to `GET /v1/customers/{customer_id}/offers` from a decision."""
    offers = [
        {name: offer[name] for name in OFFER_FIELDS if name in offer}
        for offer in decision.get("offers", [])[:k]
    ]
    return {
        "decision_id": decision["decision_id"],
        "policy": decision.get("policy"),
        "customer_id": customer_id,
        "source": source,
        "store_id": store_id,
        "channel": channel,
        "offers": offers,
    }


class PublicOffer(BaseModel):
    """One offer as a customer's page gets it."""

    model_config = ConfigDict(extra="forbid")

    offer_id: str
    score: float
    reasons: list[str]
    name: str | None = None
    price: float | None = None
    category: str | None = None
    p_yes: float | None = None
    propensity: float | None = None


class CustomerOffers(BaseModel):
    """`GET /v1/customers/{customer_id}/offers`: no last visit, place or answer count."""

    model_config = ConfigDict(extra="forbid")

    decision_id: str
    policy: str | None
    customer_id: str
    source: Literal["customer", "store", "global"]
    store_id: str | None
    channel: str | None
    offers: list[PublicOffer]
