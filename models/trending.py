"""Trending: exponentially decayed popularity of offers, per scope, narrow to wide.

A store keeps scopes such as store x daypart x weather, store x daypart and store; a
decision asks the narrowest scope with enough decayed support, so "what sells here at
lunch in the rain" speaks once it has data and "what sells here" until then.

>>> t = Trending(half_life_s=3600)
>>> t.add("fries", 1.0, ts=0.0)
>>> t.add("fries", 1.0, ts=3600.0)
>>> round(t.score("fries", now=3600.0), 3)
1.5
>>> t.add("cola", 4.0, ts=3600.0, scopes=("s-1|lunch", "s-1"))
>>> t.support("s-1|lunch", now=3600.0), t.support("rainy", now=3600.0)
(4.0, 0.0)
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence

import numpy as np
from numpy.typing import NDArray

GLOBAL = ""
_tokens = itertools.count(1)
# Per scope: offer ids, their row, [score, time] rows, decayed scores by `now`.
_Arrays = tuple[
    tuple[str, ...], dict[str, int], NDArray[np.float64], dict[float, NDArray[np.float64]]
]


def scopes_for(store_id: str | None, daypart: str, weather: str | None) -> tuple[str, ...]:
    """The scopes of a touchpoint, narrowest first."""
    store = store_id or GLOBAL
    return (f"{store}|{daypart}|{weather or '-'}", f"{store}|{daypart}", store)


class Trending:
    """Decayed counts: each answer's weight halves every `half_life_s` seconds.

    Scores decay lazily (on read and on the next add), so an update is O(1) per scope.
    """

    VERSION = 2

    def __init__(
        self, half_life_s: float, min_support: float = 5.0, smoothing: float = 1.0
    ) -> None:
        if half_life_s <= 0:
            raise ValueError(f"half_life_s must be > 0, got {half_life_s}")
        self.half_life_s = half_life_s
        self.min_support = min_support
        self.smoothing = smoothing
        self._scopes: dict[str, dict[str, tuple[float, float]]] = {}
        # (token, version) names what the counts are now: a cache key for readers.
        self.token = next(_tokens)
        self.version = 0
        self._arrays: dict[str, _Arrays] = {}
        self._chosen: tuple[object, str] = ((), GLOBAL)

    def _decay(self, s: float, t: float, now: float) -> float:
        return float(s * 2.0 ** (-max(0.0, now - t) / self.half_life_s))

    def add(
        self, offer_id: str, weight: float, ts: float, scopes: Iterable[str] = (GLOBAL,)
    ) -> None:
        self.version += 1
        for scope in scopes:
            counts = self._scopes.setdefault(scope, {})
            s, t = counts.get(offer_id, (0.0, ts))
            latest = max(t, ts)  # answers arrive out of order across partitions
            counts[offer_id] = row = (
                self._decay(s, t, latest) + self._decay(weight, ts, latest),
                latest,
            )
            arrays = self._arrays.get(scope)
            if arrays is not None:  # kept up to date in place: a read costs no rebuild
                at = arrays[1].get(offer_id)
                if at is None:
                    del self._arrays[scope]
                else:
                    arrays[2][at] = row
                    arrays[3].clear()

    def score(self, offer_id: str, now: float, scope: str = GLOBAL) -> float:
        s, t = self._scopes.get(scope, {}).get(offer_id, (0.0, now))
        return self._decay(s, t, now)

    def support(self, scope: str, now: float) -> float:
        """The scope's total decayed count: how much it has to say."""
        return float(self.scores(scope, now)[1].sum())

    def scores(self, scope: str, now: float) -> tuple[tuple[str, ...], NDArray[np.float64]]:
        """Every offer the scope has counted, and its decayed score at `now`, as a vector:
        a decision reads a scope of thousands of offers without a Python loop over it."""
        hit = self._arrays.get(scope)
        if hit is None:
            counts = self._scopes.get(scope, {})
            st = np.array(list(counts.values()), dtype=np.float64).reshape(-1, 2)
            ids = tuple(counts)
            hit = self._arrays[scope] = (ids, {o: i for i, o in enumerate(ids)}, st, {})
        decayed = hit[3].get(now)
        if decayed is None:
            st = hit[2]
            decayed = st[:, 0] * 2.0 ** (-np.maximum(0.0, now - st[:, 1]) / self.half_life_s)
            if len(hit[3]) > 4:
                hit[3].clear()
            hit[3][now] = decayed
        return hit[0], decayed

    def scope_for(self, scopes: Sequence[str], now: float) -> str:
        """The narrowest of `scopes` with enough support (else the widest); remembered
        until the counts or the clock move (an answer and its decision ask the same)."""
        key = (self.version, now, tuple(scopes))
        if self._chosen[0] == key:
            return self._chosen[1]
        chosen = scopes[-1] if scopes else GLOBAL
        for scope in scopes:
            if self.support(scope, now) >= self.min_support:
                chosen = scope
                break
        self._chosen = (key, chosen)
        return chosen

    def lift(
        self,
        offer_id: str,
        now: float,
        among: Iterable[str] | None = None,
        scope: str = GLOBAL,
    ) -> float:
        """How much more this offer is bought than the average offer (1.0 = average),
        smoothed toward 1.0 so that a handful of answers moves it only a little."""
        ids = list(among) if among is not None else list(self._scopes.get(scope, {}))
        if offer_id not in ids:
            ids.append(offer_id)
        return self.lifts(ids, now, scope)[offer_id]

    def lifts(self, offer_ids: Sequence[str], now: float, scope: str = GLOBAL) -> dict[str, float]:
        """`lift` of each offer against the average of `offer_ids`, computed in one pass."""
        scores = {o: self.score(o, now, scope) for o in offer_ids}
        if not scores:
            return {}
        mean = sum(scores.values()) / len(scores)
        return {o: (s + self.smoothing) / (mean + self.smoothing) for o, s in scores.items()}

    def to_state(self) -> dict[str, object]:
        return {"v": self.VERSION, "s": self._scopes}

    @classmethod
    def from_state(cls, state: dict[str, object] | None, half_life_s: float) -> Trending:
        """Rebuild from `to_state`; an unknown or broken state starts afresh."""
        trending = cls(half_life_s)
        if not isinstance(state, dict) or state.get("v") != cls.VERSION:
            return trending
        scopes = state.get("s")
        if isinstance(scopes, dict):
            try:
                trending._scopes = {
                    str(scope): {str(o): (float(s), float(t)) for o, (s, t) in counts.items()}
                    for scope, counts in scopes.items()
                }
            except (TypeError, ValueError, AttributeError):
                trending._scopes = {}
            trending.version += 1
            trending._arrays.clear()
        return trending
