"""Candidate generation: which offers of a large menu are worth scoring exactly.

Scoring 20,000 offers exactly for every decision is wasted work: only a few can win a
slot. Above `CANDIDATES_ABOVE` offers a decision scores exactly the crowd's (and the
menu prior's) best `POOL` offers in this context, which the context's cached `Pool`
holds, plus the customer's own: the offers they like and the best few neighbours of
each category and tag they like. The rules apply to what is left, as on a small menu.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from models.context import Context
from models.customer import CustomerModel
from models.residual import Vector
from models.scoring import Menu
from models.shared import Index

CANDIDATES_ABOVE = 500  # menus up to this size are scored whole
POOL = 300  # the crowd's best, per context
NEIGHBOURS = 10  # per category or tag the customer likes
LIKED_MAX = 8  # categories and tags looked at per customer
# A pool is recomputed after this many answers to the crowd, trending updates or seconds.
# (A trending rebuilt from its state, as the worker does per batch, is not by itself news.)
STALE_ANSWERS, STALE_TRENDING, STALE_S = 1000, 200, 300.0


def context_key(ctx: Context) -> tuple[object, ...]:
    """What a pool depends on most: the daypart, what the weather makes people crave, the
    lane and the channel. The rest of the context (the exact temperature, the weather's
    name, any extra features) moves the crowd's scores a little; it is scored exactly on
    the candidates, and need not make a pool of its own."""
    return (ctx.daypart, ctx.thermal, ctx.peak, ctx.channel, ctx.store_id)


@dataclass
class Pool:
    """The context's static scores (crowd and menu prior, nobody's taste) and their top."""

    score: Vector
    top: Index
    answers: int  # the crowd's answer count when computed
    trending: tuple[int, int]  # (token, version) of the trending read
    now: float
    _best: dict[tuple[str, str], Index] = field(default_factory=dict)

    @classmethod
    def of(cls, score: Vector, answers: int, trending: tuple[int, int], now: float) -> Pool:
        n = min(POOL, len(score))
        top = np.argpartition(-score, n - 1)[:n] if n < len(score) else np.arange(len(score))
        return cls(score, top.astype(np.intp), answers, trending, now)

    def stale(self, answers: int, trending: tuple[int, int], now: float) -> bool:
        return (
            answers - self.answers >= STALE_ANSWERS
            or (
                trending[0] == self.trending[0] and trending[1] - self.trending[1] >= STALE_TRENDING
            )
            or abs(now - self.now) > STALE_S
        )

    def best(self, kind: str, name: str, members: Index) -> Index:
        """The `NEIGHBOURS` best of `members` (a category's or a tag's offers)."""
        hit = self._best.get((kind, name))
        if hit is None:
            n = min(NEIGHBOURS, len(members))
            order = np.argpartition(-self.score[members], n - 1)[:n] if n else members[:0]
            hit = self._best[(kind, name)] = members[order]
        return hit


def candidates(menu: Menu, pool: Pool, customer: CustomerModel | None) -> NDArray[np.bool_]:
    """Which of the menu's positions to score exactly, as a mask over the menu."""
    keep = np.zeros(len(menu), dtype=bool)
    parts = [pool.top]
    if customer is not None:
        offers, categories, tags = customer.liked()
        own = [menu.position[o] for o in offers if o in menu.position]
        if own:
            parts.append(np.array(own, dtype=np.intp))
            categories = [menu.offers[i].category for i in own] + categories
        for name in list(dict.fromkeys(categories))[:LIKED_MAX]:
            if (i := menu.category_at.get(name)) is not None:
                parts.append(pool.best("c", name, menu.members[i]))
        for name in list(dict.fromkeys(tags))[:LIKED_MAX]:
            if name in menu.tagged:
                parts.append(pool.best("t", name, menu.tagged[name]))
    for part in parts:
        keep[part] = True
    return keep
