"""Together: what everyone chooses, and what is chosen with what.

Learned online from choices (purchases, ratings: a yes picked from the menu, not an
answer to an offer made), counted and decayed by the number of choices, not the clock, so
a log of any rate means the same:

- **popularity** of each offer in a context scope (store x daypart), shrunk toward all
  scopes: the odds of being chosen, which the layers above cannot learn from a handful of
  answers per offer (their weights move a little per answer);
- **goes-with**: decayed co-occurrence of offers among each customer's recent choices (a
  visit, a basket, a taste), read as a smoothed pointwise lift against what popularity
  alone predicts, so a customer's choices move offers they have never tried, and a log
  without such structure (choice by popularity alone) adds nothing.

Both are logits added to the crowd's (`Learner`): the crowd and the customer's model learn
around them. Memory is bounded: at most `2 * row_cap` partners per offer.

>>> t = Together(smoothing=1.0)
>>> for _ in range(30):
...     t.learn("coffee", "s-1|breakfast", ["croissant"])
...     t.learn("tea", "s-1|breakfast", ["scone"])
>>> ids = ["croissant", "scone", "coffee", "tea"]
>>> lift = t.goes_with(t.positions(ids), ["croissant"])
>>> bool(lift[2] > 0.5 > -0.5 > lift[3])  # with a croissant: coffee, not tea
True
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from models.residual import Vector

Index = NDArray[np.intp]

GLOBAL = ""
_RESCALE_AT = 2.0**40  # the growth factor is folded into the counts beyond this
WEIGHT_RATE = 0.01  # the step of `trend_weight` and `goes_weight` per choice
TRUST_RATE = 0.002  # how fast `trust` follows the evidence (about the last 500 choices)


class Together:
    VERSION = 1

    def __init__(
        self,
        half_life: float = 50_000.0,
        history: int = 20,
        row_cap: int = 200,
        smoothing: float = 2.0,
        scope_prior: float = 20.0,
    ) -> None:
        self.half_life = half_life  # choices after which a count weighs half
        self.history = history  # the recent choices of a customer that a choice pairs with
        self.row_cap = row_cap
        self.smoothing = smoothing  # pseudo-pairs: a lift needs this much evidence to show
        self.scope_prior = scope_prior  # pseudo-choices a scope borrows from all scopes
        self.index: dict[str, int] = {}
        self.ids: list[str] = []
        self.count: dict[str, Vector] = {}  # scope -> decayed choices per offer (x growth)
        self.totals: dict[str, float] = {}  # scope -> decayed choices (x growth)
        # How far a scope's own counts are trusted over all scopes': learned online (EM
        # on each choice's likelihood), as stores and dayparts matter in one log, not in
        # another.
        self.trust = 0.5
        # The weights of the trending lift (its exponent in the odds; 1 as the menu prior
        # has it) and of `goes_with`, fitted online to choices: the short term says much
        # in a busy shop and little in a sparse log of ratings, baskets say much about
        # the next item and a log chosen by popularity alone says nothing.
        self.trend_weight = 1.0
        self.goes_weight = 1.0
        self.rows: list[dict[int, float]] = []  # offer -> partner -> decayed pairs (x growth)
        self.mass = np.zeros(0)  # decayed pairs per offer (x growth)
        self.clock = 0  # choices learned
        self._growth_at = 0  # the clock at which growth was last folded in
        self.version = 0
        self._last: tuple[object, tuple[Vector, Vector]] = ((), (np.zeros(0), np.zeros(0)))
        self._row_version: list[int] = []  # bumped as a row changes: `_row`'s cache key
        self._arrays: dict[int, tuple[int, Index, Vector]] = {}

    @property
    def growth(self) -> float:
        """What a choice now counts, against one at the last rescale: decay, lazily."""
        return float(2.0 ** ((self.clock - self._growth_at) / self.half_life))

    def _at(self, offer_id: str) -> int:
        i = self.index.get(offer_id)
        if i is None:
            i = self.index[offer_id] = len(self.ids)
            self.ids.append(offer_id)
            self.rows.append({})
            self._row_version.append(0)
            if i >= len(self.mass):
                grow = max(64, len(self.mass))
                self.mass = np.concatenate([self.mass, np.zeros(grow)])
                for scope, c in self.count.items():
                    self.count[scope] = np.concatenate([c, np.zeros(grow)])
        return i

    def _counts(self, scope: str) -> Vector:
        c = self.count.get(scope)
        if c is None:
            c = self.count[scope] = np.zeros(len(self.mass))
        return c

    def learn(
        self,
        offer_id: str,
        scope: str,
        basket: Sequence[str] = (),
        gradient: tuple[float, float] = (0.0, 0.0),
    ) -> None:
        """One choice of `offer_id` in `scope`, by a customer whose recent choices were
        `basket` (oldest first; only the last `history` count), with its `gradient`."""
        self.trend_weight = min(max(self.trend_weight + WEIGHT_RATE * gradient[0], 0.0), 2.0)
        self.goes_weight = min(max(self.goes_weight + WEIGHT_RATE * gradient[1], 0.0), 3.0)
        self.clock += 1
        self.version += 1
        g = self.growth
        if g > _RESCALE_AT:
            self._rescale(1.0 / g)
            g = 1.0
        i = self._at(offer_id)
        if scope != GLOBAL and self.totals.get(GLOBAL, 0.0) > 0:
            here = float(self._p_scope(np.array([i]), scope)[0])
            everywhere = float(self._p_global(np.array([i]))[0])
            mix = self.trust * here + (1 - self.trust) * everywhere
            self.trust += TRUST_RATE * (self.trust * here / mix - self.trust)
        for s in {GLOBAL, scope}:
            self._counts(s)[i] += g
            self.totals[s] = self.totals.get(s, 0.0) + g
        for other in dict.fromkeys(basket[-self.history :]):
            if other == offer_id:
                continue
            j = self._at(other)
            for a, b in ((i, j), (j, i)):
                row = self.rows[a]
                row[b] = row.get(b, 0.0) + g
                self.mass[a] += g
                self._row_version[a] += 1
                if len(row) > 2 * self.row_cap:
                    self._prune(a)

    def _row(self, a: int) -> tuple[Index, Vector]:
        """An offer's partners and pair counts as arrays, kept until the row changes."""
        hit = self._arrays.get(a)
        if hit is None or hit[0] != self._row_version[a]:
            row = self.rows[a]
            partners = np.fromiter(row.keys(), np.intp, len(row))
            hit = (self._row_version[a], partners, np.fromiter(row.values(), np.float64, len(row)))
            self._arrays[a] = hit
        return hit[1], hit[2]

    def _prune(self, a: int) -> None:
        """Keep an offer's `row_cap` strongest partners (its mass keeps the dropped)."""
        row = self.rows[a]
        keep = sorted(row.items(), key=lambda kv: -kv[1])[: self.row_cap]
        self.rows[a] = dict(keep)

    def _rescale(self, factor: float) -> None:
        self.mass *= factor
        for scope in self.count:
            self.count[scope] *= factor
            self.totals[scope] = self.totals.get(scope, 0.0) * factor
        for row in self.rows:
            for k in row:
                row[k] *= factor
        self._row_version = [v + 1 for v in self._row_version]
        self._growth_at = self.clock

    def gradient(
        self, chosen: int, at: Index, scope: str, basket: Sequence[str], log_lift: Vector | None
    ) -> tuple[float, float]:
        """d log P(chosen) / d (`trend_weight`, `goes_weight`) for a choice of the offer
        `chosen` (a position in `at`) among a menu whose trending log lifts are `log_lift`
        (logits: popularity + the weights x log lift and goes-with): the conditional
        logit's gradient, observed minus expected feature."""
        popularity, goes = self._parts(at, scope, basket)
        log_lift = np.zeros(len(at)) if log_lift is None else log_lift
        z = popularity + self.trend_weight * log_lift + self.goes_weight * goes
        p = np.exp(z - z.max())
        p /= p.sum()
        return float(log_lift[chosen] - p @ log_lift), float(goes[chosen] - p @ goes)

    # --- reading ----------------------------------------------------------------------

    def logits(self, at: Index, scope: str, basket: Sequence[str]) -> Vector:
        """What `Together` adds to the crowd's logits of the offers at `at` (indexes from
        `positions`): the odds of being chosen in `scope`, and with a customer's recent
        choices `basket`, the weighted lift of what goes with them."""
        popularity, goes = self._parts(at, scope, basket)
        out: Vector = popularity + self.goes_weight * goes if basket else popularity
        return out

    def _parts(self, at: Index, scope: str, basket: Sequence[str]) -> tuple[Vector, Vector]:
        """(popularity, goes_with) at `at`; the last are kept (a decision, the passed-over
        offers of its answer and the answer's gradient read the same)."""
        key = (id(at), len(at), self.version, scope, tuple(basket))
        if self._last[0] != key:
            self._last = (key, (self.popularity(at, scope), self.goes_with(at, basket)))
        return self._last[1]

    def positions(self, offer_ids: Sequence[str]) -> Index:
        """Each offer's index here (-1: never chosen nor paired)."""
        return np.fromiter((self.index.get(o, -1) for o in offer_ids), np.intp, len(offer_ids))

    def _read(self, v: Vector, at: Index) -> Vector:
        out = np.zeros(len(at))
        known = at >= 0
        out[known] = v[at[known]]
        return out

    def _p_global(self, at: Index) -> Vector:
        """P(chosen) of the offers at `at` over all scopes (add-one smoothed)."""
        g = self.growth
        n = self.totals.get(GLOBAL, 0.0) / g
        p: Vector = (self._read(self._counts(GLOBAL), at) / g + 1.0) / (n + len(self.ids))
        return p

    def _p_scope(self, at: Index, scope: str) -> Vector:
        """P(chosen) in `scope`, shrunk toward all scopes by `scope_prior` pseudo-choices."""
        g = self.growth
        n = self._read(self._counts(scope), at) / g
        total = self.totals.get(scope, 0.0) / g
        p: Vector = (n + self.scope_prior * self._p_global(at)) / (total + self.scope_prior)
        return p

    def popularity(self, at: Index, scope: str) -> Vector:
        """log of each offer's odds of being chosen in `scope` against the mean of `at`
        (the offers' indexes from `positions`); zeros before any choice."""
        if self.totals.get(GLOBAL, 0.0) <= 0 or not len(at):
            return np.zeros(len(at))
        p = self._p_global(at)
        if scope != GLOBAL:
            p = self.trust * self._p_scope(at, scope) + (1 - self.trust) * p
        logs: Vector = np.log(p)
        out: Vector = logs - math.log(p.mean())
        return out

    def goes_with(self, at: Index, basket: Sequence[str]) -> Vector:
        """The mean over the recent choices `basket` of log((pairs + s) / (expected + s)):
        how much more than by chance each offer (at indexes `at`) was chosen with them."""
        recent = [self.index[o] for o in dict.fromkeys(basket[-self.history :]) if o in self.index]
        out = np.zeros(len(at))
        total = self.mass.sum()
        if not recent or total <= 0 or not len(at):
            return out
        g, s = self.growth, self.smoothing
        known = at >= 0
        mass_at = self._read(self.mass, at) / g
        inverse = np.full(len(self.ids), -1, dtype=np.intp)
        inverse[at[known]] = np.flatnonzero(known)
        # All the recent choices' rows at once: a few numpy calls, not a few per choice.
        rows = [self._row(j) for j in recent]
        which = np.repeat(np.arange(len(recent)), [len(p) for p, _ in rows])
        k = inverse[np.concatenate([p for p, _ in rows])]
        counts = np.concatenate([c for _, c in rows])
        pairs = np.zeros((len(recent), len(at)))
        pairs[which[k >= 0], k[k >= 0]] = counts[k >= 0] / g
        expected = np.outer(self.mass[recent] / g, mass_at) / (total / g)
        itself = inverse[recent]  # an offer with itself: as by chance
        mine = np.flatnonzero(itself >= 0)
        pairs[mine, itself[mine]] = expected[mine, itself[mine]]
        out = np.log((pairs + s) / (expected + s)).sum(axis=0)
        out[~known] = 0.0
        result: Vector = out / len(recent)
        return result

    # --- state ------------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        g = self.growth
        n = len(self.ids)
        return {
            "v": self.VERSION,
            "ids": self.ids,
            "n": self.clock,
            "trust": round(self.trust, 6),
            "tw": round(self.trend_weight, 6),
            "gw": round(self.goes_weight, 6),
            "c": {s: np.round(c[:n] / g, 4).tolist() for s, c in self.count.items()},
            "r": [{self.ids[b]: round(c / g, 4) for b, c in row.items()} for row in self.rows],
            "m": np.round(self.mass[:n] / g, 4).tolist(),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any] | None) -> Together:
        """Rebuild from `to_state`; an unknown or broken state starts afresh."""
        t = cls()
        if not isinstance(state, dict) or state.get("v") != cls.VERSION:
            return t
        try:
            for offer_id in state["ids"]:
                t._at(str(offer_id))
            for scope, counts in dict(state["c"]).items():
                c = t._counts(str(scope))
                c[: len(counts)] = np.asarray(counts, dtype=np.float64)
                t.totals[str(scope)] = float(c.sum())
            t.trust = float(state.get("trust", 0.5))
            t.trend_weight = float(state.get("tw", 1.0))
            t.goes_weight = float(state.get("gw", 1.0))
            for a, row in enumerate(state["r"]):
                t.rows[a] = {t.index[b]: float(c) for b, c in dict(row).items()}
            t.mass[: len(state["m"])] = np.asarray(state["m"], dtype=np.float64)
            t.clock = t._growth_at = int(state["n"])
        except (KeyError, TypeError, ValueError, IndexError):
            return cls()
        return t
