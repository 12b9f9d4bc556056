"""Trending: exponentially decayed popularity of offers in one scope (a store).

>>> t = Trending(half_life_s=3600)
>>> t.add("fries", 1.0, ts=0.0)
>>> t.add("fries", 1.0, ts=3600.0)
>>> round(t.score("fries", now=3600.0), 3)
1.5
>>> round(t.lift("fries", now=3600.0), 2)  # fries against an average offer
1.0
"""

from __future__ import annotations

from collections.abc import Iterable


class Trending:
    """Decayed counts: each answer's weight halves every `half_life_s` seconds.

    Scores decay lazily (on read and on the next add), so an update is O(1) whatever
    the catalog size.
    """

    VERSION = 1

    def __init__(self, half_life_s: float, smoothing: float = 1.0) -> None:
        if half_life_s <= 0:
            raise ValueError(f"half_life_s must be > 0, got {half_life_s}")
        self.half_life_s = half_life_s
        self.smoothing = smoothing
        self._counts: dict[str, tuple[float, float]] = {}

    def _decayed(self, offer_id: str, now: float) -> float:
        s, t = self._counts.get(offer_id, (0.0, now))
        return float(s * 2.0 ** (-max(0.0, now - t) / self.half_life_s))

    def add(self, offer_id: str, weight: float, ts: float) -> None:
        self._counts[offer_id] = (self._decayed(offer_id, ts) + weight, ts)

    def score(self, offer_id: str, now: float) -> float:
        return self._decayed(offer_id, now)

    def scores(self, now: float) -> dict[str, float]:
        return {o: self._decayed(o, now) for o in self._counts}

    def lift(self, offer_id: str, now: float, among: Iterable[str] | None = None) -> float:
        """How much more this offer is bought than the average offer (1.0 = average).

        Smoothed toward 1.0 so that a handful of answers moves it only a little.
        """
        ids = list(among) if among is not None else list(self._counts)
        if not ids:
            return 1.0
        mean = sum(self._decayed(o, now) for o in ids) / len(ids)
        return (self._decayed(offer_id, now) + self.smoothing) / (mean + self.smoothing)

    def to_state(self) -> dict[str, object]:
        return {"v": self.VERSION, "h": self.half_life_s, "c": self._counts}

    @classmethod
    def from_state(cls, state: dict[str, object] | None, half_life_s: float) -> Trending:
        """Rebuild from `to_state`; an unknown or broken state starts afresh."""
        trending = cls(half_life_s)
        if not state or state.get("v") != cls.VERSION:
            return trending
        counts = state.get("c")
        if isinstance(counts, dict):
            trending._counts = {str(o): (float(s), float(t)) for o, (s, t) in counts.items()}
        return trending
