"""What a replay measures around each event, per policy (the `Task`s that `loop.run` calls):
ranking and P(yes) on logged answers, calibration on a scored tail, and the off-policy
probabilities behind IPS and SNIPS.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.replay.baselines import Policy
from engine.replay.loop import Event, ReplayError, num
from engine.replay.metrics import (
    auc,
    doubly_robust,
    ece,
    epsilon_greedy_probability,
    hit_at_k,
    ips,
    logloss,
    reliability,
    snips,
)
from models.offer import Catalog, Offer

HIT_K = 10


@dataclass(slots=True)
class Answers:
    """A policy's P(yes) beside each answer, for AUC, log loss and calibration."""

    labels: list[int] = field(default_factory=list)
    probs: list[float] = field(default_factory=list)

    def add(self, yes: bool, p: float) -> None:
        self.labels.append(int(yes))
        self.probs.append(p)

    def figures(self, suffix: str = "") -> dict[str, Any]:
        return {
            f"auc{suffix}": num(auc(self.labels, self.probs)),
            f"logloss{suffix}": num(logloss(self.labels, self.probs)),
            f"ece{suffix}": num(ece(self.labels, self.probs)),
            f"reliability{suffix}": reliability(self.labels, self.probs),
        }


class InteractionsTask:
    """Ranking and P(yes) on logged answers. On every yes each policy scores the whole
    catalog, before learning it: `hit_at_k` asks whether the offer was in the top k of the
    offers this customer had not said yes to before (a discovery; a repeat yes is not
    counted, and an impression without a yes is a question, not an interaction), and
    `hit_at_k_all` whether it was in the top k of all offers (repeats count: what a
    returning customer is shown). AUC and log loss of P(yes) cover every event."""

    def __init__(self, offers: Sequence[Offer], k: int = HIT_K) -> None:
        self.offers = list(offers)
        self.index = {o.offer_id: i for i, o in enumerate(self.offers)}
        self.k = k
        self.said_yes: dict[str, set[str]] = {}
        self._ranked = False
        self._new: list[int] | None = None  # catalog positions of the not-yet-bought offers
        self._target = -1  # the answered offer's position among them
        self.hits: dict[str, list[float]] = {}
        self.hits_all: dict[str, list[float]] = {}
        self.answers: dict[str, Answers] = {}

    def start(self, event: Event) -> None:
        self._ranked, self._new = event.reward > 0, None
        before = self.said_yes.get(event.customer_id or "", set())
        if self._ranked and event.offer.offer_id not in before:
            self._new = [i for i, o in enumerate(self.offers) if o.offer_id not in before]
            self._target = self._new.index(self.index[event.offer.offer_id])

    def observe(self, name: str, policy: Policy, event: Event) -> None:
        p = policy.p_yes(event.customer_id, event.offer, event.ctx, event.ts)
        self.answers.setdefault(name, Answers()).add(event.reward > 0, p)
        if not self._ranked:
            return
        scores = policy.scores(event.customer_id, self.offers, event.ctx, event.ts)
        target = self.index[event.offer.offer_id]
        self.hits_all.setdefault(name, []).append(hit_at_k(scores, target, self.k))
        if self._new is not None:
            new = [scores[i] for i in self._new]
            self.hits.setdefault(name, []).append(hit_at_k(new, self._target, self.k))

    def finish(self, event: Event) -> None:
        if event.reward > 0 and event.customer_id:
            self.said_yes.setdefault(event.customer_id, set()).add(event.offer.offer_id)

    def results(self, name: str) -> dict[str, Any]:
        hits, hits_all = self.hits.get(name, []), self.hits_all.get(name, [])
        return {
            f"hit_at_{self.k}": num(math.fsum(hits) / len(hits)) if hits else None,
            f"hit_at_{self.k}_all": num(math.fsum(hits_all) / len(hits_all)) if hits_all else None,
            "ranked": len(hits),
            "ranked_all": len(hits_all),
            **self.answers.get(name, Answers()).figures(),
        }


class CalibrationTask:
    """AUC and log loss of P(yes) on the scored events, and on every event ("_all")."""

    def __init__(self) -> None:
        self.scored: dict[str, Answers] = {}
        self.all: dict[str, Answers] = {}

    def start(self, event: Event) -> None:
        return None

    def observe(self, name: str, policy: Policy, event: Event) -> None:
        p = policy.p_yes(event.customer_id, event.offer, event.ctx, event.ts)
        self.all.setdefault(name, Answers()).add(event.reward > 0, p)
        if event.scored:
            self.scored.setdefault(name, Answers()).add(event.reward > 0, p)

    def finish(self, event: Event) -> None:
        return None

    def results(self, name: str) -> dict[str, Any]:
        return {
            **self.scored.get(name, Answers()).figures(),
            **self.all.get(name, Answers()).figures("_all"),
        }


class OffPolicyTask:
    """Each policy's probability of choosing the logged offer (epsilon-greedy over its
    scores, before learning the row), for IPS and SNIPS against the logged clicks."""

    def __init__(self, offers: Sequence[Offer], epsilon: float) -> None:
        self.offers = list(offers)
        self.index = {o.offer_id: i for i, o in enumerate(self.offers)}
        self.epsilon = epsilon
        self.pi: dict[str, list[float]] = {}
        self.rewards: list[float] = []
        self.propensities: list[float] = []

    def start(self, event: Event) -> None:
        if event.propensity is None:
            raise ReplayError("an off-policy replay needs the logged propensity of each row")
        self.rewards.append(event.reward)
        self.propensities.append(event.propensity)

    def observe(self, name: str, policy: Policy, event: Event) -> None:
        scores = policy.scores(event.customer_id, self.offers, event.ctx, event.ts)
        chosen = self.index[event.offer.offer_id]
        self.pi.setdefault(name, []).append(
            epsilon_greedy_probability(scores, chosen, self.epsilon)
        )

    def finish(self, event: Event) -> None:
        return None

    def results(self, name: str) -> dict[str, Any]:
        pi = self.pi.get(name, [])
        if not pi:
            return {"ips": None, "snips": None}
        return {
            "ips": ips(self.rewards, pi, self.propensities).as_json(),
            "snips": snips(self.rewards, pi, self.propensities).as_json(),
        }


class ServedTask:
    """The value of each policy from a log of served decisions: per logged slot, the
    policy's probability of choosing the logged offer among what the store still had for
    that slot (its menu in the daypart less the earlier slots' offers; epsilon-greedy over
    its scores), for IPS, SNIPS and doubly robust. The reward model of DR is the engine
    without personal models (P(yes) x price), learned along the log like every policy."""

    def __init__(self, catalog: Catalog, epsilon: float, reward_model: Policy) -> None:
        self.catalog = catalog
        self.epsilon = epsilon
        self.model = reward_model
        self.rewards: list[float] = []
        self.propensities: list[float] = []
        self.modelled: list[float] = []
        self.pi: dict[str, list[float]] = {}
        self.expected: dict[str, list[float]] = {}
        self._menu: list[Offer] = []
        self._at = -1
        self._q: list[float] = []

    def start(self, event: Event) -> None:
        if event.propensity is None or event.propensity <= 0:
            raise ReplayError(f"a served offer needs its propensity > 0 ({event.offer.offer_id})")
        menu = self.catalog.available(event.ctx.store_id, event.ctx.daypart)
        self._menu = [o for o in menu if o.offer_id not in event.before]
        ids = [o.offer_id for o in self._menu]
        if event.offer.offer_id not in ids:
            raise ReplayError(
                f"{event.offer.offer_id} is not on the menu of {event.ctx.store_id} at "
                f"{event.ctx.daypart} (is the catalog the one that served the log?)"
            )
        self._at = ids.index(event.offer.offer_id)
        self._q = [
            self.model.p_yes(event.customer_id, o, event.ctx, event.ts) * o.price
            for o in self._menu
        ]
        self.rewards.append(event.reward)
        self.propensities.append(event.propensity)
        self.modelled.append(self._q[self._at])

    def observe(self, name: str, policy: Policy, event: Event) -> None:
        scores = policy.scores(event.customer_id, self._menu, event.ctx, event.ts)
        self.pi.setdefault(name, []).append(
            epsilon_greedy_probability(scores, self._at, self.epsilon)
        )
        best = max(scores)
        top = [q for q, s in zip(self._q, scores, strict=True) if s == best]
        q_pi = (1 - self.epsilon) * sum(top) / len(top) + self.epsilon * sum(self._q) / len(self._q)
        self.expected.setdefault(name, []).append(q_pi)

    def finish(self, event: Event) -> None:
        self.model.learn(event.customer_id, event.offer, event.ctx, event.reward, event.ts)

    def results(self, name: str) -> dict[str, Any]:
        pi = self.pi.get(name, [])
        if not pi:
            return {"ips": None, "snips": None, "dr": None}
        r, mu = self.rewards, self.propensities
        return {
            "ips": ips(r, pi, mu).as_json(),
            "snips": snips(r, pi, mu).as_json(),
            "dr": doubly_robust(r, pi, mu, self.modelled, self.expected[name]).as_json(),
        }
