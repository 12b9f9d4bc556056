"""What one batch of tailor.interactions learned, per customer, until its decisions are written."""

from __future__ import annotations

from typing import Any

from models.context import Context
from models.customer import CustomerModel


class Batch:
    """The customers a batch touched: their live model, latest context and event."""

    def __init__(self, customers: Any) -> None:
        self.customers = customers  # the worker's table of customer models
        self.latest: dict[str, tuple[CustomerModel, Context, str | None]] = {}
        self.entered: dict[str, float] = {}  # when the customer's oldest event arrived
        self.popular: dict[str, float] = {}
        self.forgotten: set[str] = set()

    def model(self, customer_id: str) -> CustomerModel:
        if customer_id in self.latest:
            return self.latest[customer_id][0]
        return CustomerModel.from_state(self.customers.get(customer_id))

    def drop(self, customer_id: str) -> None:
        self.latest.pop(customer_id, None)
        self.entered.pop(customer_id, None)
        self.forgotten.add(customer_id)
