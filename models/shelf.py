"""Request-time decisions: a store's shelf, scored for everyone, plus a customer's taste.

A customer's decision made at their last event is made for that event's store, channel,
daypart and weather; asked for later, elsewhere, it is wrong. So a decision is split in
two parts that are each cheap to keep fresh:

- a `Shelf` (one per store and policy, rewritten whenever the store's context, trending
  or the crowd moves): what the store sells now, stock-outs aside, with each offer's
  logit for everyone (menu prior, trending, the crowd) per channel, its trending lift
  and `Together`'s popularity there;
- a `Taste` (one per customer, rewritten at each of their events): their residual
  weights, the offers the frequency cap rests, and the lift of what goes with what they
  chose lately.

`tailor` adds the two and applies the rules for the store and channel asked: a few numpy
operations over the store's menu, no learning and no crowd lookups, so the API can do
it on every read. `Layers.shelf` and `Layers.taste` make the parts; a worker's own
decision (`Learner.decide_for`) ranks the same, which the tests hold it to.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from models.context import Context
from models.customer import CustomerModel
from models.offer import Catalog
from models.policy import PolicyConfig, RankedOffer, choose, reasons
from models.residual import Vector, clip, sigmoid_v
from models.scoring import Menu

NO_CHANNEL = ""  # the key of the scores for a request that names no channel
GOES_KEPT = 64  # a taste keeps the strongest lifts of what goes with recent choices


def _floats(v: Vector | None) -> list[float] | None:
    return None if v is None else [round(float(x), 5) for x in v]


def _vector(raw: Sequence[float] | None) -> Vector | None:
    return None if raw is None else np.asarray(raw, dtype=np.float64)


@dataclass(frozen=True, eq=False)
class Shelf:
    """One policy's scores of a store's offers now, for everyone, in the store's context
    (`context`, whose channel is left open: `z` holds one logit vector per channel)."""

    policy: str
    context: Context
    menu: Menu  # the offers on the shelf, in the order of every vector here
    z: Mapping[str, Vector]  # channel (NO_CHANNEL: none) -> prior + trending + crowd
    lift: Vector | None  # trending lift (None: no trending read)
    popularity: Vector | None  # `Together`'s, the crowd's odds of choosing here
    personal: bool  # does a customer's residual add (False: the holdout's policy)
    created_at: float

    def as_json(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "context": {k: v for k, v in self.context.as_json().items() if v is not None},
            "offers": [o.offer_id for o in self.menu.offers],
            "z": {channel: _floats(z) for channel, z in self.z.items()},
            "lift": _floats(self.lift),
            "popularity": _floats(self.popularity),
            "personal": self.personal,
            "created_at": round(self.created_at, 3),
        }

    @classmethod
    def from_json(
        cls,
        raw: Mapping[str, Any],
        catalog: Catalog,
        cfg: PolicyConfig,
        menus: dict[tuple[str, ...], Menu] | None = None,
    ) -> Shelf:
        """Read `as_json` back; `menus` caches the indexed menu per offer list (a shelf is
        read on every request, its offers change only with a stock-out or a daypart).
        Offers the catalog no longer knows are dropped. Raises KeyError or ValueError on
        a record that is not a shelf."""
        ids = tuple(raw["offers"])
        known = np.array([o in catalog.offers for o in ids], dtype=bool)
        kept = tuple(o for o in ids if o in catalog.offers)
        menu = menus.get(kept) if menus is not None else None
        if menu is None:
            menu = Menu.of(tuple(catalog.offers[o] for o in kept), cfg)
            if menus is not None:
                if len(menus) > 256:
                    menus.clear()
                menus[kept] = menu

        def vector(values: Sequence[float] | None) -> Vector | None:
            v = _vector(values)
            if v is not None and len(v) != len(ids):
                raise ValueError(f"a vector of {len(v)} for {len(ids)} offers")
            return None if v is None else v[known]

        z = {str(c): vector(v) for c, v in dict(raw["z"]).items()}
        return cls(
            str(raw["policy"]),
            Context.from_json(raw["context"]),
            menu,
            {c: v for c, v in z.items() if v is not None},
            vector(raw.get("lift")),
            vector(raw.get("popularity")),
            bool(raw.get("personal", True)),
            float(raw.get("created_at", 0.0)),
        )


@dataclass(frozen=True, eq=False)
class Taste:
    """What is a customer's own in their decisions, wherever they are asked for."""

    policy: str
    model: CustomerModel | None  # their residual (None: the policy is not 1-1)
    capped: Mapping[str, float]  # offer -> until when the frequency cap rests it
    goes: Mapping[str, float]  # offer -> weighted lift of going with their recent choices

    def as_json(self, state: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """JSON, with the weights of `state` (the model's `to_state()`, if the caller
        has it already: it is the costly part)."""
        out: dict[str, Any] = {"policy": self.policy}
        if self.model is not None:
            state = state or self.model.to_state()
            out["w"], out["b"] = state["w"], state["b"]
        if self.capped:
            out["capped"] = {o: round(t, 1) for o, t in self.capped.items()}
        if self.goes:
            out["goes"] = {o: round(v, 4) for o, v in self.goes.items()}
        return out

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Taste:
        model = None
        if "w" in raw:
            model = CustomerModel.from_state(
                {"v": CustomerModel.VERSION, "w": raw["w"], "b": raw.get("b", 0.0)}
            )
        capped = {str(o): float(t) for o, t in dict(raw.get("capped", {})).items()}
        goes = {str(o): float(v) for o, v in dict(raw.get("goes", {})).items()}
        return cls(str(raw["policy"]), model, capped, goes)


def pick(
    menu: Menu,
    at: np.ndarray[Any, np.dtype[np.intp]],
    p: Vector,
    score: Vector,
    lift: Vector | None,
    ctx: Context,
    customer: CustomerModel | None,
    rng: random.Random,
    cfg: PolicyConfig,
) -> list[RankedOffer]:
    """Fill the slots from the offers at positions `at` (their P(yes), scores and lifts
    given in that order), best first with category variety and a little exploring, each
    with its propensity and reasons (`customer`: whose taste a reason may name)."""
    order = np.argsort(-score, kind="stable")  # ties keep catalog order
    ranked = at[order]
    out = []
    for j, propensity, greedy in choose(menu.category_of[ranked].tolist(), rng, cfg):
        i = int(order[j])
        offer = menu.offers[int(at[i])]
        affinity = customer.affinity(offer) if customer is not None else 0.0
        why = reasons(offer, ctx, 1.0 if lift is None else float(lift[i]), affinity, greedy, cfg)
        out.append(RankedOffer(offer.offer_id, float(score[i]), float(p[i]), propensity, why))
    return out


def tailor(
    shelf: Shelf,
    taste: Taste | None,
    channel: str | None,
    now: float,
    rng: random.Random,
    cfg: PolicyConfig,
) -> tuple[Context, list[RankedOffer]]:
    """The customer's offers at this shelf's store now, on `channel`: the shelf's scores
    plus their taste, then the rules (the frequency cap; the shelf holds no stock-out),
    then the slots. Returns the context decided in, with the offers."""
    menu = shelf.menu
    ctx = replace(shelf.context, channel=channel)
    keep = np.ones(len(menu), dtype=bool)
    if taste is not None:
        for offer_id, until in taste.capped.items():
            if until > now and (i := menu.position.get(offer_id)) is not None:
                keep[i] = False
    at = np.flatnonzero(keep)
    if not len(at):
        return ctx, []
    z = shelf.z.get(channel or NO_CHANNEL)
    if z is None:
        z = shelf.z[NO_CHANNEL]
    z = z[at]
    model = taste.model if taste is not None and shelf.personal else None
    if model is None:
        p = clip(sigmoid_v(z), 1e-4, 1 - 1e-4)
    else:
        z = z + model.residuals(menu, at, ctx)
        p = sigmoid_v(z)
    wanted = p
    if shelf.popularity is not None:
        together = shelf.popularity[at]
        if taste is not None and taste.goes:
            goes = np.array([taste.goes.get(menu.offers[i].offer_id, 0.0) for i in at])
            together = together + goes
        wanted = sigmoid_v(z + together)
    score = wanted * menu.value[at]
    if ctx.peak:
        score = np.where(menu.slow[at] > 0, score * cfg.peak_penalty, score)
    lift = None if shelf.lift is None else shelf.lift[at]
    return ctx, pick(menu, at, p, score, lift, ctx, model, rng, cfg)
