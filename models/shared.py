"""The shared contextual model: what everyone teaches about offers in context.

A `Residual` over offer x context crosses (offer x weather, offer x daypart, category x
temperature, ...), learned from every customer's answers around the menu's prior. It is
where a new customer starts.

>>> from models.offer import Offer
>>> from models.context import Context
>>> lemonade = Offer("lemonade", "Lemonade", "cold_drinks", 2.5, 25, frozenset({"lunch"}))
>>> cocoa = Offer("cocoa", "Cocoa", "hot_drinks", 2.9, 60, frozenset({"lunch"}))
>>> hot, cold = Context("lunch", temperature_c=32), Context("lunch", temperature_c=2)
>>> shared = SharedModel()
>>> for _ in range(200):
...     shared.learn(lemonade, hot, 0.0, True); shared.learn(cocoa, hot, 0.0, False)
...     shared.learn(lemonade, cold, 0.0, False); shared.learn(cocoa, cold, 0.0, True)
>>> shared.predict_one(lemonade, hot, 0.0) > 0.8 > 0.2 > shared.predict_one(cocoa, hot, 0.0)
True
"""

from __future__ import annotations

from typing import Any

from models.context import Context
from models.offer import Offer
from models.residual import Residual


def crosses(offer: Offer, ctx: Context) -> dict[str, float]:
    """Offer and category, alone and crossed with each context feature."""
    x: dict[str, float] = {"o=" + offer.offer_id: 1.0, "c=" + offer.category: 1.0}
    for name, value in ctx.features().items():
        if isinstance(value, str):
            x[f"o={offer.offer_id}|{name}={value}"] = 1.0
            x[f"c={offer.category}|{name}={value}"] = 1.0
        else:
            x[f"o={offer.offer_id}|{name}"] = value
            x[f"c={offer.category}|{name}"] = value
    for tag in offer.tags:
        x["t=" + tag] = 1.0
    return x


class SharedModel:
    """P(yes | offer, context) from all customers, around the offset the caller gives."""

    VERSION = 1

    def __init__(self, learning_rate: float = 0.02, l2: float = 1e-6) -> None:
        self._model = Residual(learning_rate, l2=l2, intercept_lr=learning_rate / 5)
        self.answers = 0

    def predict_one(self, offer: Offer, ctx: Context, offset: float) -> float:
        return self._model.predict_one(crosses(offer, ctx), offset)

    def learn(self, offer: Offer, ctx: Context, offset: float, yes: bool, w: float = 1.0) -> None:
        self._model.learn_one(crosses(offer, ctx), offset, yes, w)
        self.answers += 1

    def to_state(self) -> dict[str, Any]:
        return {
            "v": self.VERSION,
            "n": self.answers,
            "b": self._model.intercept,
            "w": self._model.weights(),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any] | None) -> SharedModel:
        """Rebuild from `to_state`; a state of another version starts afresh."""
        model = cls()
        if isinstance(state, dict) and state.get("v") == cls.VERSION:
            model._model.load(dict(state.get("w", {})), float(state.get("b", 0.0)))
            model.answers = int(state.get("n", 0))
        return model
