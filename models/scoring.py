"""Scoring a menu as vectors: the same numbers as `policy.prior` and the layered models,
one numpy operation per term instead of one dict walk per offer.

A `Menu` is what a store sells in a daypart, indexed once: positions, categories, tags,
values and the prior's base odds. `prior_logits` is `policy.prior` on a vector; the crowd
adds `SharedModel.crowd_part`, a customer `CustomerModel.residuals` (only the offers,
categories and tags they hold weights for).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from models.context import Context
from models.offer import Offer
from models.policy import PolicyConfig
from models.residual import Vector, clip
from models.shared import Index
from models.trending import Trending


@dataclass(frozen=True, eq=False)
class Menu:
    """The offers of one (store, daypart), as arrays in catalog order."""

    offers: tuple[Offer, ...]
    position: dict[str, int]
    categories: tuple[str, ...]
    category_of: Index
    members: tuple[Index, ...]  # positions of each category's offers
    tags: tuple[str, ...]
    tag_index: Index  # (offers, most tags) into `tags`, padded with len(tags)
    tagged: dict[str, Index]  # positions of each tag's offers
    value: Vector
    base_odds: Vector  # the prior's odds before trending, weather and daypart
    cold: Vector  # 1.0 where tagged "cold"
    hot: Vector
    slow: Vector
    category_at: dict[str, int] = field(default_factory=dict)
    tag_at: dict[str, int] = field(default_factory=dict)
    memo: dict[object, tuple[Index, Index]] = field(default_factory=dict)
    thermal_memo: dict[object, Vector] = field(default_factory=dict)

    @classmethod
    def of(cls, offers: tuple[Offer, ...], cfg: PolicyConfig) -> Menu:
        categories = tuple(dict.fromkeys(o.category for o in offers))
        cat_index = {c: i for i, c in enumerate(categories)}
        category_of = np.array([cat_index[o.category] for o in offers], dtype=np.intp)
        tags = tuple(sorted({t for o in offers for t in o.tags}))
        tag_pos = {t: i for i, t in enumerate(tags)}
        width = max((len(o.tags) for o in offers), default=0)
        tag_index = np.full((len(offers), width), len(tags), dtype=np.intp)
        for i, o in enumerate(offers):
            tag_index[i, : len(o.tags)] = sorted(tag_pos[t] for t in o.tags)
        value = np.array([o.value(cfg.value) for o in offers], dtype=np.float64)
        p0 = np.minimum(cfg.base_ev / np.maximum(value, 0.01), 0.5)
        flags = {
            tag: np.array([tag in o.tags for o in offers], dtype=bool) for tag in ("cold", "hot")
        }
        return cls(
            offers,
            {o.offer_id: i for i, o in enumerate(offers)},
            categories,
            category_of,
            tuple(np.flatnonzero(category_of == i) for i in range(len(categories))),
            tags,
            tag_index,
            {t: np.flatnonzero((tag_index == i).any(axis=1)) for i, t in enumerate(tags)},
            value,
            p0 / (1 - p0),
            flags["cold"].astype(np.float64),
            flags["hot"].astype(np.float64),
            np.array([o.prep_s > cfg.slow_prep_s for o in offers], dtype=np.float64),
            cat_index,
            tag_pos,
        )

    def log_odds(self, thermal: str, weather_lift: float) -> Vector:
        """log of the prior's odds before trending: base rate, weather and daypart."""
        key = ("log_odds", thermal, weather_lift)
        hit = self.thermal_memo.get(key)
        if hit is None:
            odds = self.base_odds
            if thermal in ("hot", "cold"):
                up, down = (self.cold, self.hot) if thermal == "hot" else (self.hot, self.cold)
                odds = np.where(
                    up > 0, odds * weather_lift, np.where(down > 0, odds / weather_lift, odds)
                )
            hit = self.thermal_memo[key] = np.log(odds)
        return hit

    def __len__(self) -> int:
        return len(self.offers)

    def trending_scores(self, trending: Trending, scope: str, now: float) -> Vector:
        """Each offer's decayed trending score in `scope` (0 for offers never counted)."""
        ids, decayed = trending.scores(scope, now)
        key = (trending.token, scope, len(ids))  # a scope's offers only ever grow, in order
        hit = self.memo.get(key)
        if hit is None:
            at = [(i, self.position[o]) for i, o in enumerate(ids) if o in self.position]
            pairs = np.array(at, dtype=np.intp).reshape(-1, 2)
            if len(self.memo) > 64:
                self.memo.clear()
            hit = self.memo[key] = (pairs[:, 0], pairs[:, 1])
        out = np.zeros(len(self.offers))
        out[hit[1]] = decayed[hit[0]]
        return out


_PRIOR_CLIP = math.log((1 - 1e-4) / 1e-4)  # the prior's P(yes) lies in [1e-4, 1 - 1e-4]


def prior_logits(
    menu: Menu, at: Index, ctx: Context, lift: Vector | None, cfg: PolicyConfig
) -> Vector:
    """`policy.prior` for the offers at positions `at`, as the crowd's offset: its odds'
    logarithm (lifts multiply the odds, so they add here), clipped as `prior` clips."""
    z = menu.log_odds(ctx.thermal, cfg.weather_lift)[at]
    if lift is not None:
        z = z + np.log(lift)
    out: Vector = clip(z, -_PRIOR_CLIP, _PRIOR_CLIP)
    return out
