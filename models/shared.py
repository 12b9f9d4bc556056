"""The shared contextual model: what everyone teaches about offers in context.

A `Residual` over offer x context crosses (offer x weather, offer x daypart, category x
temperature, ...), learned from every customer's answers around the menu's prior. It is
where a new customer starts.

Learning is one dict update per answer; scoring a whole menu reads the same weights
factorized (offer ⊗ context feature, category ⊗ context feature, tags) from numpy
columns kept beside the dict, so a menu of 20,000 offers costs a few vector operations,
not 20,000 dict walks (`crowd_part`).

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

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from models.context import Context
from models.offer import Offer
from models.residual import Residual, Vector
from models.together import Together

_tokens = itertools.count(1)
Index = NDArray[np.intp]


@dataclass(frozen=True, slots=True)
class Lesson:
    """One answer for the crowd, learned wherever the crowd lives (in a worker, its owner
    process: every worker's answers reach one model, which every worker then reads).

    >>> lesson = Lesson("latte", Context("breakfast", weather="rain"), -1.2, True, 0.5)
    >>> Lesson.from_json(lesson.as_json()) == lesson
    True
    """

    offer_id: str
    ctx: Context
    offset: float  # the menu prior's logit the answer was given against
    yes: bool
    strength: float
    basket: tuple[str, ...] | None = None  # a choice: the customer's recent choices before
    gradient: tuple[float, float] = (0.0, 0.0)  # a choice: its `Together.gradient`

    def as_json(self) -> list[Any]:
        out = [self.offer_id, self.ctx.as_json(), self.offset, self.yes, self.strength]
        return out if self.basket is None else [*out, list(self.basket), list(self.gradient)]

    @classmethod
    def from_json(cls, raw: Sequence[Any]) -> Lesson:
        offer_id, ctx, offset, yes, strength, *rest = raw
        context = Context.from_json(ctx)
        basket = tuple(str(o) for o in rest[0]) if rest else None
        g = (float(rest[1][0]), float(rest[1][1])) if len(rest) > 1 else (0.0, 0.0)
        return cls(str(offer_id), context, float(offset), bool(yes), float(strength), basket, g)


def columns(ctx: Context) -> list[tuple[str, float]]:
    """The context's features as (column, value): "name=value" for a category (1.0),
    "name" for a number."""
    return [
        (f"{name}={value}", 1.0) if isinstance(value, str) else (name, float(value))
        for name, value in ctx.features().items()
    ]


def crosses(offer: Offer, ctx: Context) -> dict[str, float]:
    """Offer and category, alone and crossed with each context feature; and the slot it
    was shown in, alone (position bias, the same for every offer)."""
    x: dict[str, float] = {"o=" + offer.offer_id: 1.0, "c=" + offer.category: 1.0}
    if ctx.slot is not None:
        x[f"p={ctx.slot}"] = 1.0
    for col, value in columns(ctx):
        x[f"o={offer.offer_id}|{col}"] = value
        x[f"c={offer.category}|{col}"] = value
    for tag in offer.tags:
        x["t=" + tag] = 1.0
    return x


class _Table:
    """Weights of one kind of key (offer, category or tag) alone (row 0) and crossed with
    each context column (row per column), as a matrix over the kind's members."""

    def __init__(self) -> None:
        self.member: dict[str, int] = {}
        self.column: dict[str, int] = {"": 0}
        self.w: Vector = np.zeros((4, 64))

    def at(self, name: str) -> int:
        i = self.member.get(name)
        if i is None:
            i = self.member[name] = len(self.member)
            if i >= self.w.shape[1]:
                self.w = np.concatenate([self.w, np.zeros_like(self.w)], axis=1)
        return i

    def col(self, name: str) -> int:
        j = self.column.get(name)
        if j is None:
            j = self.column[name] = len(self.column)
            if j >= self.w.shape[0]:
                self.w = np.concatenate([self.w, np.zeros_like(self.w)], axis=0)
        return j

    def rows(self, names: Sequence[str]) -> Index:
        return np.fromiter((self.at(n) for n in names), np.intp, len(names))

    def read(self, rows: Index, cols: Index, values: Vector) -> Vector:
        """Row 0 plus the value-weighted sum of the given columns, at `rows`."""
        out: Vector = self.w[0, rows]
        if len(cols):
            out = out + values @ self.w[cols[:, None], rows[None, :]]
        return out


def choice_scope(ctx: Context) -> str:
    """Where `Together` counts a choice: the store in the daypart."""
    return f"{ctx.store_id or ''}|{ctx.daypart}"


CROWD_LR = 0.05  # AdaGrad; chosen on the known-probability stream of tests/test_calibration.py


class SharedModel:
    """P(yes | offer, context) from all customers, around the offset the caller gives,
    and what they choose and choose together (`together`)."""

    VERSION = 1

    def __init__(self, learning_rate: float = CROWD_LR, l2: float = 1e-6) -> None:
        self._model = Residual(learning_rate, l2=l2, intercept_lr=learning_rate / 5, adaptive=True)
        self.answers = 0
        self.token = next(_tokens)  # with `answers`: a cache key no other model shares
        self._offers, self._categories, self._tags = _Table(), _Table(), _Table()
        self.together = Together()
        self._last: tuple[object, int, tuple[Index, Vector, Index, Vector]] = (None, -1, ())  # type: ignore[assignment]

    def predict_one(self, offer: Offer, ctx: Context, offset: float) -> float:
        return self._model.predict_one(crosses(offer, ctx), offset)

    def learn_lesson(self, offer: Offer, lesson: Lesson) -> None:
        self.learn(
            offer, lesson.ctx, lesson.offset, lesson.yes, lesson.strength, lesson.basket,
            lesson.gradient,
        )  # fmt: skip

    def learn(
        self,
        offer: Offer,
        ctx: Context,
        offset: float,
        yes: bool,
        w: float = 1.0,
        basket: Sequence[str] | None = None,
        gradient: tuple[float, float] = (0.0, 0.0),
    ) -> None:
        """One answer; one with a `basket` (the chooser's recent choices, maybe none) is a
        choice, counted by `together` too (a rating is a choice, even a poor one)."""
        if basket is not None:
            self.together.learn(offer.offer_id, choice_scope(ctx), basket if yes else (), gradient)
        cols = [col for col, _ in columns(ctx)]
        self._model.learn_one(crosses(offer, ctx), offset, yes, w)
        self.answers += 1
        weight = self._model.weight
        for table, name, key in (
            (self._offers, offer.offer_id, "o=" + offer.offer_id),
            (self._categories, offer.category, "c=" + offer.category),
        ):
            at = [(table.col(col), weight(f"{key}|{col}")) for col in cols]  # may grow w
            i = table.at(name)
            table.w[0, i] = weight(key)
            for j, value in at:
                table.w[j, i] = value
        for tag in offer.tags:
            i = self._tags.at(tag)
            self._tags.w[0, i] = weight("t=" + tag)

    # --- the numpy tables -------------------------------------------------------------

    def _mirror(self, key: str) -> None:
        """Copy one weight of the dict into its table, from its key alone (a state
        loaded: an id holding "|" is then read to its first "|"; `learn` knows better)."""
        kind, rest = key[:2], key[2:]
        value = self._model.weight(key)
        if kind == "p=":
            return  # position: learned, never part of a decision
        if kind == "t=":
            i = self._tags.at(rest)  # first: it may grow the table
            self._tags.w[0, i] = value
            return
        table = self._offers if kind == "o=" else self._categories
        name, _, col = rest.partition("|")
        i, j = table.at(name), table.col(col)
        table.w[j, i] = value

    def rows(self, offers: Sequence[Offer]) -> tuple[Index, Index, Index]:
        """The table rows of `offers`, of their categories (in first-seen order) and of
        their tags (sorted): what `crowd_part` reads, registered on first sight."""
        categories = list(dict.fromkeys(o.category for o in offers))
        tags = sorted({t for o in offers for t in o.tags})
        return (
            self._offers.rows([o.offer_id for o in offers]),
            self._categories.rows(categories),
            self._tags.rows(tags),
        )

    def crowd_part(
        self,
        rows: tuple[Index, Index, Index],
        at: Index,
        category_of: Index,
        tag_index: Index,
        ctx: Context,
    ) -> Vector:
        """w . x + b for the offers at positions `at` of a menu (its `rows`, each offer's
        category and tags as indexes into the menu's), in context: the crowd's logit
        minus the offset, which adds to it."""
        offers, categories, tags = rows
        cols, values, cat_cols, cat_values = self._context(ctx)
        part = self._offers.read(offers[at], cols, values) + self._model.intercept
        part += self._categories.read(categories, cat_cols, cat_values)[category_of]
        if len(tags):
            part += np.append(self._tags.w[0, tags], 0.0)[tag_index].sum(axis=1)
        return part

    def _context(self, ctx: Context) -> tuple[Index, Vector, Index, Vector]:
        """The context's columns in the offer and category tables, and their values; kept
        for the last context (a decision reads it once per layer)."""
        if self._last[0] is ctx and self._last[1] == self.answers:
            return self._last[2]
        pairs = columns(ctx)
        out: list[tuple[Index, Vector]] = []
        for table in (self._offers, self._categories):
            known = [(table.column.get(c), v) for c, v in pairs]
            cols = np.array([j for j, _ in known if j is not None], dtype=np.intp)
            out.append((cols, np.array([v for j, v in known if j is not None])))
        self._last = (ctx, self.answers, (*out[0], *out[1]))
        return self._last[2]

    def to_state(self) -> dict[str, Any]:
        return {
            "v": self.VERSION,
            "n": self.answers,
            "b": self._model.intercept,
            "w": self._model.weights(),
            "g": self._model.squares(),
            "t": self.together.to_state(),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any] | None) -> SharedModel:
        """Rebuild from `to_state`; a state of another version starts afresh."""
        model = cls()
        if isinstance(state, dict) and state.get("v") == cls.VERSION:
            model._model.load(
                dict(state.get("w", {})), float(state.get("b", 0.0)), dict(state.get("g", {}))
            )
            model.answers = int(state.get("n", 0))
            model.together = Together.from_state(state.get("t"))
            for key in model._model.items():
                model._mirror(key)
        return model
