"""The layers of P(yes), summed over a menu at once.

    P(yes) = sigmoid( menu prior  +  crowd residual  +  customer residual )
    score  = sigmoid( menu prior  +  crowd residual  +  together  +  customer residual ) x value

`Layers` is what deciding and learning share (`models.learner.Learner` is the rest): the
menu of a store in a daypart indexed once (`models.scoring.Menu`), trending lifts as a
vector, the crowd's part, `Together`'s and the customer's, and for a large menu the
context's candidate pool; each a few numpy operations over the menu.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from models.candidates import CANDIDATES_ABOVE, Pool, context_key
from models.context import Context
from models.customer import CustomerModel
from models.decision import ENGINE
from models.offer import Catalog
from models.policy import PolicyConfig
from models.residual import Vector, clip, relogit_v, sigmoid_v
from models.scoring import Menu, prior_logits
from models.shared import Index, Lesson, SharedModel, choice_scope
from models.shelf import GOES_KEPT, NO_CHANNEL, Shelf, Taste
from models.trending import Trending, scopes_for


@dataclass(frozen=True, slots=True)
class LearnerConfig:
    personal: bool = True  # False: the engine without 1-1 learning (a baseline)
    shared: bool = True  # False: the menu prior and trending only (the control policy)
    answer_window_s: float = 900.0  # an impression with no yes this long after is a no
    crowd_learns_here: bool = True  # False: `lessons` go to the crowd's owner (a worker)
    name: str = ENGINE  # recorded on every decision, for evaluation and lift
    policy: PolicyConfig = field(default_factory=PolicyConfig)


class Layers:
    def __init__(
        self, catalog: Catalog, cfg: LearnerConfig | None = None, shared: SharedModel | None = None
    ) -> None:
        self.catalog = catalog
        self.cfg = cfg or LearnerConfig()
        self.shared = shared or SharedModel()
        self._menus: dict[tuple[str, str], tuple[Menu, tuple[Index, Index, Index]]] = {}
        self._pools: dict[tuple[object, ...], Pool] = {}
        self._last_lifts: tuple[object, dict[str, float]] = ((), {})
        self.lessons: list[Lesson] = []  # for the crowd's owner, when it is not here

    def use_crowd(self, shared: SharedModel) -> None:
        """Decide with this crowd from now on (its tables are new: cached rows go)."""
        self.shared = shared
        self._menus.clear()
        self._pools.clear()

    def _together(self, menu: Menu, ctx: Context, who: CustomerModel | None) -> Vector:
        """`Together.logits` over the whole menu (with `who`'s recent choices if 1-1)."""
        basket = who.recent if who is not None and self.cfg.personal else ()
        return self.shared.together.logits(self._ids(menu), choice_scope(ctx), basket)

    def _ids(self, menu: Menu) -> Index:
        """The menu's offers' indexes in `Together` (which grows as offers are chosen)."""
        together = self.shared.together
        key = ("together", id(together), len(together.ids))
        hit = menu.memo.get(key)
        if hit is None:
            hit = menu.memo[key] = (together.positions([o.offer_id for o in menu.offers]),) * 2
        return hit[0]

    def menu_p_yes(
        self, ctx: Context, customer: CustomerModel | None, trending: Trending | None, now: float
    ) -> tuple[Menu, Vector, Vector]:
        """`estimate` of every offer on the context's menu (store, daypart) at once, and
        the scores they are ranked by."""
        menu, rows = self._menu(ctx.store_id, ctx.daypart)
        at = np.arange(len(menu))
        lift = self._lift(menu, at, ctx, trending, now, ())
        return menu, *self._scores(menu, rows, at, ctx, customer, lift)

    def _menu_lifts(
        self, ctx: Context, trending: Trending | None, now: float, ids: Sequence[str]
    ) -> dict[str, float]:
        """The trending lifts of the offers `ids` against the whole menu's mean."""
        menu, _ = self._menu(ctx.store_id, ctx.daypart)
        at = np.array([menu.position[o] for o in ids if o in menu.position], dtype=np.intp)
        lift = self._lift(menu, at, ctx, trending, now, ()) if len(at) else None
        if lift is None:
            return {}
        return {menu.offers[i].offer_id: float(v) for i, v in zip(at, lift, strict=True)}

    def _menu(self, store_id: str | None, daypart: str) -> tuple[Menu, tuple[Index, Index, Index]]:
        """The menu of a store in a daypart, indexed once, with its crowd rows."""
        key = (store_id or "", daypart)
        hit = self._menus.get(key)
        if hit is None:
            menu = Menu.of(self.catalog.available(store_id, daypart), self.cfg.policy)
            hit = self._menus[key] = (menu, self.shared.rows(menu.offers))
        return hit

    def _lift(
        self,
        menu: Menu,
        at: Index,
        ctx: Context,
        trending: Trending | None,
        now: float,
        excluded: Collection[int],
        power: bool = True,
    ) -> Vector | None:
        """Trending lifts at positions `at`, against the mean of the menu without
        `excluded` (what the rules keep out), as `Trending.lifts` computes them."""
        if trending is None:
            return None
        scope = trending.scope_for(scopes_for(ctx.store_id, ctx.daypart, ctx.weather), now)
        scores = menu.trending_scores(trending, scope, now)
        kept = len(menu) - len(excluded)
        total = scores.sum() - (scores[list(excluded)].sum() if excluded else 0.0)
        mean = total / kept if kept else 0.0
        lift: Vector = (scores[at] + trending.smoothing) / (mean + trending.smoothing)
        return lift**self.shared.together.trend_weight if power else lift

    def _scores(
        self,
        menu: Menu,
        rows: tuple[Index, Index, Index],
        at: Index,
        ctx: Context,
        customer: CustomerModel | None,
        lift: Vector | None,
    ) -> tuple[Vector, Vector]:
        """(P(yes), score) of the offers at positions `at`: `estimate` as vectors. The
        score ranks by P(yes) with `Together`'s logits added: how likely this offer is
        wanted now, not only liked when shown, which P(yes) keeps to (calibrated)."""
        z = prior_logits(menu, at, ctx, lift, self.cfg.policy)
        if self.cfg.shared:
            part = self.shared.crowd_part(rows, at, menu.category_of[at], menu.tag_index[at], ctx)
            z = relogit_v(z + part)
        if customer is None or not self.cfg.personal:
            p = clip(sigmoid_v(z), 1e-4, 1 - 1e-4)
        else:
            z = z + customer.residuals(menu, at, ctx)
            p = sigmoid_v(z)
        wanted = p
        if self.cfg.shared and self.shared.together.clock:
            wanted = sigmoid_v(z + self._together(menu, ctx, customer)[at])
        score = wanted * menu.value[at]
        if ctx.peak:
            score = np.where(menu.slow[at] > 0, score * self.cfg.policy.peak_penalty, score)
        return p, score

    def _pool(
        self,
        store_id: str | None,
        menu: Menu,
        rows: tuple[Index, Index, Index],
        ctx: Context,
        trending: Trending | None,
        now: float,
    ) -> Pool:
        """The context's crowd-and-prior scores over the whole menu, cached per context."""
        key = (store_id or "", context_key(ctx), trending is None)
        version = (0, 0) if trending is None else (trending.token, trending.version)
        pool = self._pools.get(key)
        if pool is None or pool.stale(self.shared.answers, version, now):
            at = np.arange(len(menu))
            lift = self._lift(menu, at, ctx, trending, now, ())
            _, score = self._scores(menu, rows, at, ctx, None, lift)
            if len(self._pools) > 256:
                self._pools.clear()
            pool = self._pools[key] = Pool.of(score, self.shared.answers, version, now)
        return pool

    # --- the parts of a request-time decision (`models.shelf`) -------------------------

    def shelf(
        self,
        ctx: Context,
        trending: Trending | None,
        now: float,
        stock_out: Collection[str] = (),
        channels: Sequence[str] = (),
    ) -> Shelf:
        """The store's (`ctx.store_id`) offers now for everyone, on each of `channels` and
        on none: what `tailor` adds a customer's taste to. A large menu keeps the
        context's pool (the crowd's best), not every offer."""
        menu, rows = self._menu(ctx.store_id, ctx.daypart)
        excluded = {menu.position[o] for o in stock_out if o in menu.position}
        keep = np.ones(len(menu), dtype=bool)
        if len(menu) > CANDIDATES_ABOVE:
            keep[:] = False
            keep[self._pool(ctx.store_id, menu, rows, ctx, trending, now).top] = True
        if excluded:
            keep[list(excluded)] = False
        at = np.flatnonzero(keep)
        lift = self._lift(menu, at, ctx, trending, now, excluded)
        z = {}
        for channel in (NO_CHANNEL, *channels) if self.cfg.shared else (NO_CHANNEL,):
            where = replace(ctx, channel=channel or None)
            logits = prior_logits(menu, at, where, lift, self.cfg.policy)
            if self.cfg.shared:
                part = self.shared.crowd_part(
                    rows, at, menu.category_of[at], menu.tag_index[at], where
                )
                logits = relogit_v(logits + part)
            z[channel] = logits
        popularity = None
        if self.cfg.shared and self.shared.together.clock:
            popularity = self._together(menu, ctx, None)[at]
        on_shelf = Menu.of(tuple(menu.offers[i] for i in at), self.cfg.policy)
        return Shelf(
            self.cfg.name, replace(ctx, channel=None), on_shelf, z, lift, popularity,
            self.cfg.personal, now,
        )  # fmt: skip

    def taste(self, customer: CustomerModel, now: float) -> Taste:
        """What is the customer's own in a decision, wherever it is asked for: their
        residual (if 1-1), the offers the frequency cap rests now and until when, and
        (if 1-1) the lift of what goes with their recent choices, the strongest kept."""
        cfg = self.cfg.policy
        capped = {
            o: last + cfg.frequency_cap_period_s
            for o, (count, last) in customer.unanswered.items()
            if customer.times_unanswered(o, now, cfg.frequency_cap_period_s) >= cfg.frequency_cap
        }
        personal = self.cfg.personal
        goes: dict[str, float] = {}
        together = self.shared.together
        if personal and self.cfg.shared and together.clock and customer.recent:
            offers = [o for o in self.catalog.offers if o in together.index]
            if len(offers) > CANDIDATES_ABOVE:  # a large catalog: only the recent's partners
                rows = [together.index[o] for o in customer.recent if o in together.index]
                near = {int(j) for r in rows[-together.history :] for j in together._row(r)[0]}
                offers = [together.ids[j] for j in sorted(near)]
            lifts = together.goes_weight * together.goes_with(
                together.positions(offers), customer.recent
            )
            strongest = np.argsort(-np.abs(lifts))[:GOES_KEPT]
            goes = {offers[i]: float(lifts[i]) for i in strongest if lifts[i] != 0.0}
        return Taste(self.cfg.name, customer if personal else None, capped, goes)
