"""One customer's own model of P(yes | offer, context), learned answer by answer.

The 1-1 loop: a decision asks a question (the offers shown, remembered in `asked`);
a yes to one offer is also a soft no to the other offers that were asked alongside it.

>>> from models.offer import Offer
>>> from models.context import Context
>>> fries = Offer("fries", "Fries", "sides", 2.4, 40, frozenset({"lunch"}))
>>> pie = Offer("pie", "Pie", "desserts", 1.9, 45, frozenset({"lunch"}))
>>> m, noon = CustomerModel(), Context("lunch")
>>> m.ask(["fries", "pie"])
>>> for _ in range(5):
...     m.learn(fries, noon, yes=True, alternatives=[pie])
>>> m.predict_one(fries, noon) > 0.5 > m.predict_one(pie, noon)
True
>>> again = CustomerModel.from_state(m.to_state())  # weights are stored to 4 decimals
>>> abs(again.predict_one(fries, noon) - m.predict_one(fries, noon)) < 1e-3
True
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from river import linear_model, optim

from models.context import Context
from models.offer import Offer

# A yes to one offer says less about the others shown than about the chosen one.
ALTERNATIVE_WEIGHT = 0.3


def features(offer: Offer, ctx: Context) -> dict[str, float]:
    """Sparse features of one offer in one context, shared by learning and scoring."""
    x = {
        "o=" + offer.offer_id: 1.0,
        "c=" + offer.category: 1.0,
        f"o={offer.offer_id}|{ctx.daypart}": 1.0,
        f"c={offer.category}|{ctx.thermal}": 1.0,
    }
    for tag in offer.tags:
        x["t=" + tag] = 1.0
    return x


class CustomerModel:
    """A River logistic regression over `features`, plus what was last asked."""

    VERSION = 1

    def __init__(self, learning_rate: float = 0.3, l2: float = 1e-4) -> None:
        self.learning_rate = learning_rate
        self.l2 = l2
        self._lr = linear_model.LogisticRegression(
            optimizer=optim.SGD(learning_rate), l2=l2, intercept_lr=learning_rate / 3
        )
        self.answers = 0
        self.asked: tuple[str, ...] = ()

    def ask(self, offer_ids: Sequence[str]) -> None:
        """Remember the offers of the customer's latest decision (the open question)."""
        self.asked = tuple(offer_ids)

    def learn(
        self,
        offer: Offer,
        ctx: Context,
        yes: bool,
        strength: float = 1.0,
        alternatives: Iterable[Offer] = (),
    ) -> None:
        """Learn one answer; on a yes, each alternative that was asked gets a soft no."""
        self._lr.learn_one(features(offer, ctx), yes, w=strength)
        if yes:
            for alt in alternatives:
                if alt.offer_id != offer.offer_id:
                    self._lr.learn_one(features(alt, ctx), False, w=strength * ALTERNATIVE_WEIGHT)
        self.answers += 1

    def predict_one(self, offer: Offer, ctx: Context) -> float:
        proba = self._lr.predict_proba_one(features(offer, ctx))  # type: ignore[no-untyped-call]
        return float(proba[True])

    def affinity(self, offer: Offer) -> float:
        """The customer's learned taste for this very offer, whatever the context."""
        return float(self._lr._weights.get("o=" + offer.offer_id, 0.0))

    def to_state(self) -> dict[str, Any]:
        """Compact JSON-able state: weights rounded, near-zero weights dropped."""
        weights = {k: round(v, 4) for k, v in self._lr._weights.items() if abs(v) >= 1e-4}
        return {
            "v": self.VERSION,
            "n": self.answers,
            "b": round(float(self._lr.intercept), 4),
            "w": weights,
            "a": list(self.asked),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any] | None) -> CustomerModel:
        """Rebuild from `to_state`. A state of another version starts afresh, never raises."""
        model = cls()
        if not isinstance(state, dict) or state.get("v") != cls.VERSION:
            return model
        try:
            for k, v in dict(state.get("w", {})).items():
                model._lr._weights[str(k)] = float(v)
            model._lr.intercept = float(state.get("b", 0.0))
            model.answers = int(state.get("n", 0))
            model.asked = tuple(str(o) for o in state.get("a", ()))
        except (TypeError, ValueError):
            return cls()
        return model
