"""A logistic regression around a given offset: p = sigmoid(offset + w . x + b).

Tailor's models are layered: the menu's prior, then what the crowd teaches, then what
this customer teaches. Each layer learns only how its data differs from the layer below,
whose logit it receives as the offset; with no data a layer changes nothing.

The update is River's `LogisticRegression.learn_one` with plain SGD (log loss, L2 on the
features seen, a separate intercept rate), written on a plain dict: the same numbers, but
a customer's model loads from its state without building River objects per event.

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

import numpy as np
from numpy.typing import NDArray

Vector = NDArray[np.float64]
_LOGIT_CLIP = math.log((1 - 1e-6) / 1e-6)
UNKNOWN_SQUARES = 25.0


def logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


def sigmoid(z: float) -> float:
    """River's sigmoid: saturated beyond |z| > 30."""
    if z < -30:
        return 0.0
    if z > 30:
        return 1.0
    return 1 / (1 + math.exp(-z))


def clip(z: Vector, low: float, high: float) -> Vector:
    """`np.clip` without its dispatch overhead (a few microseconds on short vectors)."""
    out: Vector = np.minimum(np.maximum(z, low), high)
    return out


def sigmoid_v(z: Vector) -> Vector:
    """`sigmoid` of a vector (saturating within 1e-13 of where River's does)."""
    out: Vector = 1 / (1 + np.exp(-clip(z, -30.0, 30.0)))
    return out


def relogit_v(z: Vector) -> Vector:
    """logit(sigmoid(z)), as the layers pass logits on: z, clipped where `logit` clips."""
    out: Vector = clip(z, -_LOGIT_CLIP, _LOGIT_CLIP)
    return out


class Residual:
    """The offset enters as a feature whose weight is fixed at 1.

    `adaptive`: AdaGrad steps (River's `optim.AdaGrad`: each weight's rate divided by the
    root of its summed squared gradients), so a weight seen a thousand times settles where
    its answers say instead of following the last few: what calibration needs of a model
    learned from everyone. Plain SGD keeps a customer's model quick to follow them."""

    def __init__(
        self,
        learning_rate: float,
        l2: float = 0.0,
        intercept_lr: float = 0.0,
        adaptive: bool = False,
    ) -> None:
        self.lr = learning_rate
        self.l2 = l2
        self.intercept_lr = intercept_lr
        self._w: dict[str, float] = {}
        self._b = 0.0
        self._g2: dict[str, float] | None = {} if adaptive else None

    def raw(self, x: dict[str, float], offset: float) -> float:
        w = self._w
        return sum(w.get(k, 0.0) * v for k, v in x.items()) + offset + self._b

    def predict_one(self, x: dict[str, float], offset: float) -> float:
        return sigmoid(self.raw(x, offset))

    def learn_one(self, x: dict[str, float], offset: float, y: bool, w: float = 1.0) -> None:
        z = self.raw(x, offset) * (1 if y else -1)
        sign = -1.0 if y else 1.0  # River's Log.gradient: -y / (exp(y * raw) + 1)
        if z > 18.0:
            grad = math.exp(-z) * sign
        elif z < -18.0:
            grad = sign
        else:
            grad = sign / (math.exp(z) + 1.0)
        grad *= w
        weights, lr, l2, g2 = self._w, self.lr, self.l2, self._g2
        if g2 is None:
            self._b -= self.intercept_lr * grad
            for k, v in x.items():
                old = weights.get(k, 0.0)
                weights[k] = old - lr * (v * grad + l2 * old)
            return
        acc = g2[""] = g2.get("", 0.0) + grad * grad  # "" is no feature's name: the intercept
        self._b -= self.intercept_lr * grad / math.sqrt(acc + 1e-8)
        for k, v in x.items():
            old = weights.get(k, 0.0)
            g = v * grad + l2 * old
            acc = g2[k] = g2.get(k, 0.0) + g * g
            weights[k] = old - lr * g / math.sqrt(acc + 1e-8)

    def weight(self, feature: str) -> float:
        return self._w.get(feature, 0.0)

    def weights(self) -> dict[str, float]:
        return dict(self._w)

    def items(self) -> dict[str, float]:
        """The live weights (not a copy): for readers that must not pay for one."""
        return self._w

    @property
    def intercept(self) -> float:
        return self._b

    def load(
        self, weights: dict[str, Any], intercept: float, squares: dict[str, Any] | None = None
    ) -> None:
        for k, v in weights.items():
            self._w[str(k)] = float(v)
        self._b = float(intercept)
        if self._g2 is not None:
            # Weights saved without their squares (by plain SGD) are not new: start their
            # steps small, as if learned from about a hundred answers.
            self._g2.update({str(k): UNKNOWN_SQUARES for k in weights})
            self._g2.setdefault("", UNKNOWN_SQUARES)
            self._g2.update({str(k): float(v) for k, v in (squares or {}).items()})

    def squares(self) -> dict[str, float]:
        """AdaGrad's summed squared gradients (empty for plain SGD): part of the state."""
        return dict(self._g2 or {})
