"""The replay loop and what every source shares: the logged event, the policies compared
(the engine, the engine without 1-1 learning, the baselines), the progress bar on stderr,
and JSON-safe figures.

Progressive validation: every event is first predicted (or ranked) by every policy, the
prediction is recorded, and only then does every policy learn the event.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from engine.replay.baselines import (
    BiasedMF,
    LearnerPolicy,
    Policy,
    Popularity,
    RandomPolicy,
    TrendingPolicy,
)
from models.context import Context
from models.learner import Learner, LearnerConfig
from models.offer import DAYPARTS, Catalog, Offer, Store
from models.policy import PolicyConfig

DEFAULT_SEED = 7
REPLAY_STORE = Store("replay", "replay")
T = TypeVar("T")


class ReplayError(ValueError):
    """The data cannot be replayed (missing file, column or unreadable value)."""


@dataclass(frozen=True, slots=True)
class Event:
    """One logged answer: who (None: anonymous), which offer, in what context, how it went."""

    customer_id: str | None
    offer: Offer
    ctx: Context
    reward: float
    ts: float
    propensity: float | None = None  # the logging policy's probability of this offer
    scored: bool = True  # whether predictions of this event count in the metrics
    before: tuple[str, ...] = ()  # a served slate: the offers of its earlier slots


class Task(Protocol):
    """What a source measures: called around every event, for every policy."""

    def start(self, event: Event) -> None: ...

    def observe(self, name: str, policy: Policy, event: Event) -> None: ...

    def finish(self, event: Event) -> None: ...

    def results(self, name: str) -> dict[str, Any]: ...


def bar(items: Iterable[T], total: int, desc: str, progress: bool) -> Iterator[T]:
    """A progress bar on stderr (stdout stays clean for --json)."""
    from tqdm import tqdm

    yield from tqdm(
        items,
        total=total,
        desc=desc,
        unit="ev",
        file=sys.stderr,
        disable=not progress,
        mininterval=0.5,
        leave=False,
    )


def run(
    events: Sequence[Event],
    policies: Mapping[str, Policy],
    task: Task,
    *,
    desc: str = "replay",
    progress: bool = False,
) -> dict[str, dict[str, Any]]:
    """The one replay loop: each event is measured for every policy, then learned by all."""
    for event in bar(events, len(events), desc, progress):
        task.start(event)
        for name, policy in policies.items():
            task.observe(name, policy, event)
        for policy in policies.values():
            policy.learn(event.customer_id, event.offer, event.ctx, event.reward, event.ts)
        task.finish(event)
    return {name: task.results(name) for name in policies}


def make_policies(
    catalog: Catalog, seed: int, cfg: PolicyConfig, choices: bool = False
) -> dict[str, Policy]:
    """The engine, the engine without 1-1 learning, and the baselines, all seeded alike.
    `choices`: the log's yeses were chosen from the menu (purchases, ratings), not given
    to an offer that was made (a coupon, a bandit's pick)."""
    return {
        "engine": LearnerPolicy(Learner(catalog, LearnerConfig(policy=cfg)), choices=choices),
        "engine_shared_only": LearnerPolicy(
            Learner(catalog, LearnerConfig(personal=False, policy=cfg)), choices=choices
        ),
        "popularity": Popularity(),
        "trending": TrendingPolicy(),
        "biased_mf": BiasedMF(seed),
        "random": RandomPolicy(seed),
    }


def num(x: float | None, digits: int = 6) -> float | None:
    """JSON-safe: rounded, and None for undefined (NaN) figures."""
    if x is None or math.isnan(x):
        return None
    return round(x, digits)


def plain_offer(
    offer_id: str,
    name: str | None = None,
    category: str = "offer",
    tags: frozenset[str] = frozenset(),
) -> Offer:
    """An offer worth 1 (a yes is a yes), sold everywhere at any time: a dataset's offers
    carry no price or menu, so availability never filters and P(yes) is the score."""
    return Offer(offer_id, name or offer_id, category, 1.0, 0, frozenset(DAYPARTS), tags)
