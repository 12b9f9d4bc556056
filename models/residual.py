"""A River logistic regression around a given offset: p = sigmoid(offset + w . x + b).

Tailor's models are layered: the menu's prior, then what the crowd teaches, then what
this customer teaches. Each layer learns only how its data differs from the layer below,
whose logit it receives as the offset; with no data a layer changes nothing.

>>> m = Residual(learning_rate=0.5)
>>> round(m.predict_one({"o=fries": 1.0}, offset=1.0), 3)  # untrained: just the offset
0.731
>>> for _ in range(20):
...     m.learn_one({"o=fries": 1.0}, offset=1.0, y=False)
>>> m.predict_one({"o=fries": 1.0}, offset=1.0) < 0.5
True
"""

from __future__ import annotations

import math
from typing import Any

from river import linear_model, optim

OFFSET = "__offset__"


def logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


class Residual:
    """The offset enters as a feature whose weight is pinned to 1 after every update."""

    def __init__(self, learning_rate: float, l2: float = 0.0, intercept_lr: float = 0.0) -> None:
        self._lr = linear_model.LogisticRegression(
            optimizer=optim.SGD(learning_rate), l2=l2, intercept_lr=intercept_lr
        )
        self._lr._weights[OFFSET] = 1.0

    def predict_one(self, x: dict[str, float], offset: float) -> float:
        proba = self._lr.predict_proba_one({**x, OFFSET: offset})  # type: ignore[no-untyped-call]
        return float(proba[True])

    def learn_one(self, x: dict[str, float], offset: float, y: bool, w: float = 1.0) -> None:
        self._lr.learn_one({**x, OFFSET: offset}, y, w=w)
        self._lr._weights[OFFSET] = 1.0

    def weight(self, feature: str) -> float:
        return float(self._lr._weights.get(feature, 0.0))

    def weights(self) -> dict[str, float]:
        return {k: float(v) for k, v in self._lr._weights.items() if k != OFFSET}

    @property
    def intercept(self) -> float:
        return float(self._lr.intercept)

    def load(self, weights: dict[str, Any], intercept: float) -> None:
        for k, v in weights.items():
            self._lr._weights[str(k)] = float(v)
        self._lr._weights[OFFSET] = 1.0
        self._lr.intercept = float(intercept)
