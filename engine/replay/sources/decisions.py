"""`decisions`: a log of served decisions and their answers, and each policy's value off
policy: IPS, self-normalized IPS and doubly robust estimates with 95% intervals.

The log is JSON lines, in any order: a decision as `tailor.decisions` carries it
(`decision_id`, `policy`, `store_id`, `context`, `created_at`, `offers` in slot order with
each one's `propensity`, and `customer_id` for a customer's decision), and an answer,
`{"decision_id": ..., "offer_id": ..., "reward": ...}` (what the answer earned: the price
of a purchase; several answers to one offer add up). A served offer with no answer
earned 0. Offers are read from the catalog that served the log (the project's, or
`--catalog`), whose menus are what every policy chooses among.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson

from engine.replay.baselines import LearnerPolicy, Policy
from engine.replay.loop import DEFAULT_SEED, Event, ReplayError, make_policies, num, run
from engine.replay.tasks import ServedTask
from models.context import Context
from models.learner import Learner, LearnerConfig
from models.offer import Catalog
from models.policy import PolicyConfig


def read_decisions(path: Path, catalog: Catalog) -> list[Event]:
    """One event per served slot, in the order decisions were made; its reward joined
    from the answers by decision id and offer."""
    decisions: list[dict[str, Any]] = []
    earned: dict[tuple[str, str], float] = defaultdict(float)
    with path.open("rb") as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = orjson.loads(line)
                if "offers" in record:
                    decisions.append(record)
                else:
                    key = (str(record["decision_id"]), str(record["offer_id"]))
                    earned[key] += float(record["reward"])
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                raise ReplayError(
                    f"{path}:{line_no}: neither a decision nor an answer ({exc})"
                ) from None
    decisions.sort(key=lambda d: float(d.get("created_at", 0.0)))
    events = []
    for d in decisions:
        ctx = Context.from_json({**d["context"], "store_id": d.get("store_id")})
        before: list[str] = []
        for slot in d["offers"]:
            offer = catalog.offers.get(str(slot["offer_id"]))
            if offer is None:
                raise ReplayError(f"{path}: offer {slot['offer_id']!r} is not in the catalog")
            reward = earned.get((str(d["decision_id"]), offer.offer_id), 0.0)
            events.append(
                Event(
                    d.get("customer_id"),
                    offer,
                    ctx,
                    reward,
                    float(d.get("created_at", 0.0)),
                    propensity=float(slot["propensity"]),
                    before=tuple(before),
                )
            )
            before.append(offer.offer_id)
    return events


def replay_decisions(
    path: Path,
    catalog: Catalog,
    *,
    limit: int | None = None,
    seed: int = DEFAULT_SEED,
    progress: bool = False,
    extra: dict[str, Policy] | None = None,
) -> dict[str, Any]:
    """Every policy (and `extra` ones, such as a known policy to check the estimators
    against) evaluated on the served log."""
    events = read_decisions(path, catalog)
    events = events[:limit] if limit is not None else events
    if not events:
        raise ReplayError(f"{path}: no served decisions")
    cfg = PolicyConfig()
    policies = {**make_policies(catalog, seed, cfg), **(extra or {})}
    model = LearnerPolicy(Learner(catalog, LearnerConfig(personal=False, policy=cfg)))
    task = ServedTask(catalog, cfg.explore_rate, model)
    results = run(events, policies, task, desc="decisions", progress=progress)
    logged = sum(e.reward for e in events) / len(events)
    return {
        "source": "decisions",
        "events": len(events),
        "policies": results,
        "reference": {"logged_reward_per_slot": num(logged), "epsilon": cfg.explore_rate},
    }
