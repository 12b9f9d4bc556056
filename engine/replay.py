"""`tailor replay`: stream a dataset through the same `models/` code, test-then-train, and
measure the engine beside baselines computed in the same run on the same stream.

Progressive validation: every event is first predicted (or ranked) by every policy, the
prediction is recorded, and only then does every policy learn the event. Sources:

- `interactions`: any CSV of customer_id, offer_id, timestamp, reward (+ context columns);
  hit@10 among offers the customer has not said yes to before, AUC and log loss of P(yes).
- `coupon`: the UCI in-vehicle coupon survey in file order; AUC and log loss on the final
  20% of the stream, beside an offline gradient-boosting reference trained on the first 80%.
- `open-bandit`: the Open Bandit "Men" random log; IPS and SNIPS estimates (95% intervals)
  of each policy's click rate, and the check that the logger's estimate is the logged CTR.
- `simulator`: engine/world.py's customers, whose true P(yes) is known; each policy shows
  offers, the world answers; reward per visit and the share of an oracle's reward.

Data reading, the runner, the progress bar and the CLI live here; metrics and baselines are
pure (models/evaluation.py, models/baselines.py).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import random
import re
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

from tqdm import tqdm

from engine.world import Visit, World
from models.baselines import (
    BiasedMF,
    LearnerPolicy,
    Policy,
    Popularity,
    RandomPolicy,
    TrendingPolicy,
)
from models.context import Context, daypart_at
from models.customer import CustomerModel
from models.evaluation import (
    auc,
    epsilon_greedy_probability,
    hit_at_k,
    ips,
    logloss,
    mean_interval,
    snips,
)
from models.learner import Learner, LearnerConfig
from models.offer import DAYPARTS, Catalog, Offer, Store
from models.policy import PolicyConfig

SOURCES = ("interactions", "coupon", "open-bandit", "simulator")
DEFAULT_SEED = 7
HIT_K = 10
TEST_SHARE = 0.2  # coupon: the final 20% of the stream is scored
WARM_UP_SHARE = 0.2  # simulator: the first 20% of visits are not scored
SIM_VISITS = 20_000
SIM_CUSTOMERS = 500
SIM_VISIT_EVERY_S = 3.0  # as the demo: 20 visits/s at 60x simulated time
SIM_START = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)  # a Monday, breakfast
COUPON_EVERY_S = 60.0  # the survey has no clock: one answer a minute, in file order
OPEN_BANDIT_UTC_OFFSET_H = 9.0  # ZOZOTOWN is a Japanese shop
REPLAY_STORE = Store("replay", "replay")
CLICK_CAUTION = (
    "about 50 clicks in 10,000 rows give a 95% interval of about +-0.13 points of CTR: "
    "too wide to rank policies; use these figures to check formats and estimators"
)
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


class Task(Protocol):
    """What a source measures: called around every event, for every policy."""

    def start(self, event: Event) -> None: ...

    def observe(self, name: str, policy: Policy, event: Event) -> None: ...

    def finish(self, event: Event) -> None: ...

    def results(self, name: str) -> dict[str, Any]: ...


def _bar(items: Iterable[T], total: int, desc: str, progress: bool) -> Iterator[T]:
    """A progress bar on stderr (stdout stays clean for --json)."""
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
    for event in _bar(events, len(events), desc, progress):
        task.start(event)
        for name, policy in policies.items():
            task.observe(name, policy, event)
        for policy in policies.values():
            policy.learn(event.customer_id, event.offer, event.ctx, event.reward, event.ts)
        task.finish(event)
    return {name: task.results(name) for name in policies}


def make_policies(catalog: Catalog, seed: int, cfg: PolicyConfig) -> dict[str, Policy]:
    """The engine, the engine without 1-1 learning, and the baselines, all seeded alike."""
    return {
        "engine": LearnerPolicy(Learner(catalog, LearnerConfig(policy=cfg))),
        "engine_shared_only": LearnerPolicy(
            Learner(catalog, LearnerConfig(personal=False, policy=cfg))
        ),
        "popularity": Popularity(),
        "trending": TrendingPolicy(),
        "biased_mf": BiasedMF(seed),
        "random": RandomPolicy(seed),
    }


def _num(x: float | None, digits: int = 6) -> float | None:
    """JSON-safe: rounded, and None for undefined (NaN) figures."""
    if x is None or math.isnan(x):
        return None
    return round(x, digits)


def _plain_offer(
    offer_id: str,
    name: str | None = None,
    category: str = "offer",
    tags: frozenset[str] = frozenset(),
) -> Offer:
    """An offer worth 1 (a yes is a yes), sold everywhere at any time: a dataset's offers
    carry no price or menu, so availability never filters and P(yes) is the score."""
    return Offer(offer_id, name or offer_id, category, 1.0, 0, frozenset(DAYPARTS), tags)


def _open(path: Path) -> Iterator[dict[str, str]]:
    """CSV rows as dicts (any line endings, an optional BOM); a short row is refused."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            for row in reader:
                if None in row.values():
                    raise ReplayError(
                        f"{path}:{reader.line_num}: {sum(v is not None for v in row.values())}"
                        f" fields, the header has {len(reader.fieldnames or ())}"
                    )
                yield row
    except OSError as exc:
        raise ReplayError(f"cannot read {path}: {exc.strerror or exc}") from None


def _require(path: Path, header: Sequence[str] | None, needed: Iterable[str]) -> None:
    missing = [c for c in needed if c not in (header or ())]
    if missing:
        raise ReplayError(f"{path}: missing column(s) {missing}; found {list(header or [])}")


def _header(path: Path) -> list[str]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            return next(csv.reader(f), [])
    except OSError as exc:
        raise ReplayError(f"cannot read {path}: {exc.strerror or exc}") from None


# ---- metrics shared by tasks -----------------------------------------------------------


@dataclass(slots=True)
class _Answers:
    """A policy's P(yes) beside each answer, for AUC and log loss."""

    labels: list[int] = field(default_factory=list)
    probs: list[float] = field(default_factory=list)

    def add(self, yes: bool, p: float) -> None:
        self.labels.append(int(yes))
        self.probs.append(p)

    def figures(self, suffix: str = "") -> dict[str, Any]:
        return {
            f"auc{suffix}": _num(auc(self.labels, self.probs)),
            f"logloss{suffix}": _num(logloss(self.labels, self.probs)),
        }


# ---- interactions ----------------------------------------------------------------------

INTERACTION_COLUMNS = ("customer_id", "offer_id", "timestamp", "reward")
CONTEXT_COLUMNS = ("daypart", "weather", "temperature_c", "queue_length", "channel", "store_id")


def parse_timestamp(text: str) -> float:
    """Epoch seconds, or ISO 8601 (naive times are UTC), as epoch seconds.

    >>> parse_timestamp("86400"), parse_timestamp("1970-01-02T00:00:00Z")
    (86400.0, 86400.0)
    """
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def _is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def read_interactions(path: Path) -> tuple[list[Event], Catalog]:
    """The CSV as events in timestamp order (ties keep file order) and its offers.

    Columns named like Context's fields (daypart, weather, temperature_c, queue_length,
    channel, store_id) fill them; the daypart otherwise follows the timestamp (UTC). Every
    other column is an `extra` feature: numeric columns (every non-empty value a number)
    scaled to [-1, 1] by their range in the file (labels are not looked at), the rest
    categories. An empty value is no feature; an empty customer_id is an anonymous event.
    """
    header = _header(path)
    _require(path, header, INTERACTION_COLUMNS)
    rows = list(_open(path))
    extras = [c for c in header if c not in INTERACTION_COLUMNS and c not in CONTEXT_COLUMNS]
    numeric: dict[str, tuple[float, float]] = {}
    for col in extras:
        values = [r[col] for r in rows if r.get(col)]
        if values and all(_is_number(v) for v in values):
            floats = [float(v) for v in values]
            numeric[col] = (min(floats), max(floats))
    parsed: list[tuple[float, int, dict[str, str]]] = []
    for i, row in enumerate(rows):
        line = i + 2
        try:
            ts = parse_timestamp(row.get("timestamp") or "")
        except ValueError:
            raise ReplayError(
                f"{path}:{line}: timestamp {row['timestamp']!r} is neither epoch seconds "
                "nor ISO 8601"
            ) from None
        if not row.get("offer_id"):
            raise ReplayError(f"{path}:{line}: empty offer_id")
        if not _is_number(row.get("reward") or ""):
            raise ReplayError(f"{path}:{line}: reward {row['reward']!r} is not a number")
        parsed.append((ts, i, row))
    parsed.sort(key=lambda t: (t[0], t[1]))
    offers: dict[str, Offer] = {}
    for _, _, row in parsed:
        if row["offer_id"] not in offers:
            offers[row["offer_id"]] = _plain_offer(row["offer_id"])
    events = []
    for ts, i, row in parsed:
        extra: dict[str, str | float] = {}
        for col in extras:
            value = row.get(col) or ""
            if not value:
                continue
            if col in numeric:
                lo, hi = numeric[col]
                extra[col] = 0.0 if hi == lo else 2 * (float(value) - lo) / (hi - lo) - 1
            else:
                extra[col] = value
        ctx = _interaction_context(path, i + 2, row, ts, extra)
        events.append(
            Event(
                (row.get("customer_id") or "").strip() or None,
                offers[row["offer_id"]],
                ctx,
                float(row["reward"]),
                ts,
            )
        )
    return events, Catalog.of(offers.values(), [REPLAY_STORE])


def _interaction_context(
    path: Path, line: int, row: Mapping[str, str], ts: float, extra: dict[str, str | float]
) -> Context:
    def number(col: str) -> float | None:
        text = row.get(col) or ""
        if not text:
            return None
        if not _is_number(text):
            raise ReplayError(f"{path}:{line}: {col} {text!r} is not a number")
        return float(text)

    daypart = row.get("daypart") or ""
    queue = number("queue_length")
    return Context(
        daypart=daypart if daypart in DAYPARTS else daypart_at(ts),
        weather=row.get("weather") or None,
        temperature_c=number("temperature_c"),
        queue_length=None if queue is None else int(queue),
        channel=row.get("channel") or None,
        store_id=row.get("store_id") or None,
        extra=extra,
    )


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
        self.answers: dict[str, _Answers] = {}

    def start(self, event: Event) -> None:
        self._ranked, self._new = event.reward > 0, None
        before = self.said_yes.get(event.customer_id or "", set())
        if self._ranked and event.offer.offer_id not in before:
            self._new = [i for i, o in enumerate(self.offers) if o.offer_id not in before]
            self._target = self._new.index(self.index[event.offer.offer_id])

    def observe(self, name: str, policy: Policy, event: Event) -> None:
        p = policy.p_yes(event.customer_id, event.offer, event.ctx, event.ts)
        self.answers.setdefault(name, _Answers()).add(event.reward > 0, p)
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
            f"hit_at_{self.k}": _num(math.fsum(hits) / len(hits)) if hits else None,
            f"hit_at_{self.k}_all": _num(math.fsum(hits_all) / len(hits_all)) if hits_all else None,
            "ranked": len(hits),
            "ranked_all": len(hits_all),
            **self.answers.get(name, _Answers()).figures(),
        }


def replay_interactions(
    path: Path,
    *,
    limit: int | None = None,
    seed: int = DEFAULT_SEED,
    k: int = HIT_K,
    progress: bool = False,
) -> dict[str, Any]:
    events, catalog = read_interactions(path)
    events = events[:limit] if limit is not None else events
    policies = make_policies(catalog, seed, PolicyConfig(value="yes"))
    task = InteractionsTask(list(catalog.offers.values()), k)
    results = run(events, policies, task, desc="interactions", progress=progress)
    positives = sum(1 for e in events if e.reward > 0)
    return {
        "source": "interactions",
        "events": len(events),
        "policies": results,
        "reference": {
            "offers": len(catalog.offers),
            "customers": len({e.customer_id for e in events if e.customer_id}),
            "positive_rate": _num(positives / len(events)) if events else None,
        },
    }


# ---- in-vehicle coupon -----------------------------------------------------------------

COUPON_FILE = "in-vehicle-coupon-recommendation.csv"
COUPON_HABITS = ("Bar", "CoffeeHouse", "CarryAway", "RestaurantLessThan20", "Restaurant20To50")
COUPON_DEMOGRAPHICS = (
    "gender",
    "age",
    "maritalStatus",
    "has_children",
    "education",
    "occupation",
    "income",
    "car",
    *COUPON_HABITS,
)
COUPON_CATEGORIES = ("destination", "passanger", "time", "expiration")
COUPON_FLAGS = ("toCoupon_GEQ5min", "toCoupon_GEQ15min", "toCoupon_GEQ25min")
COUPON_NUMERIC = ("temperature", "has_children", *COUPON_FLAGS, "direction_same", "direction_opp")
COUPON_WEATHER = {"Sunny": "sunny", "Rainy": "rain", "Snowy": "snow"}


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "none"


def coupon_customer(row: Mapping[str, str]) -> str:
    """A respondent's id: their rows share the demographic and habit columns, so a hash of
    those stands in for the id the survey does not have (equal profiles merge)."""
    key = "|".join(row.get(c, "") for c in COUPON_DEMOGRAPHICS)
    return "r-" + hashlib.sha1(key.encode()).hexdigest()[:12]


def _coupon_hour(text: str) -> int:
    m = re.fullmatch(r"(\d{1,2})\s*([AP]M)", text.strip().upper())
    if not m:
        raise ValueError(text)
    return int(m.group(1)) % 12 + (12 if m.group(2) == "PM" else 0)


def read_coupon(path: Path) -> tuple[list[Event], Catalog, list[dict[str, str]]]:
    """The survey in file order as events (and the raw rows, for the offline reference)."""
    header = _header(path)
    needed = (
        "coupon",
        "Y",
        "weather",
        "temperature",
        *COUPON_CATEGORIES,
        *COUPON_DEMOGRAPHICS,
        *COUPON_FLAGS,
        "direction_same",
    )
    _require(path, header, needed)
    rows = list(_open(path))
    offers: dict[str, Offer] = {}
    events = []
    for i, row in enumerate(rows):
        line = i + 2
        kind = row["coupon"]
        if kind not in offers:
            offers[kind] = _plain_offer(_slug(kind), kind, category=_slug(kind))
        try:
            hour = _coupon_hour(row["time"])
            fahrenheit = float(row["temperature"])
            extra: dict[str, str | float] = {c: row[c] for c in COUPON_CATEGORIES if row[c]}
            extra["direction"] = "same" if row["direction_same"] == "1" else "opposite"
            for flag in COUPON_FLAGS:
                extra[flag] = float(row[flag])
            for habit in COUPON_HABITS:
                if row[habit]:
                    extra[habit] = row[habit]
            for col in COUPON_NUMERIC:  # the offline reference reads them as numbers
                if col in row:
                    float(row[col])
            y = row["Y"].strip()
            if y not in ("0", "1"):
                raise ValueError(f"Y {y!r}")
            ctx = Context(
                daypart=daypart_at(hour * 3600.0),
                weather=COUPON_WEATHER.get(row["weather"], row["weather"].lower() or None),
                temperature_c=round((fahrenheit - 32.0) * 5.0 / 9.0, 1),
                extra=extra,
            )
        except ValueError as exc:
            raise ReplayError(f"{path}:{line}: unreadable value ({exc})") from None
        events.append(Event(coupon_customer(row), offers[kind], ctx, float(y), i * COUPON_EVERY_S))
    return events, Catalog.of(offers.values(), [REPLAY_STORE]), rows


class CalibrationTask:
    """AUC and log loss of P(yes) on the scored events, and on every event ("_all")."""

    def __init__(self) -> None:
        self.scored: dict[str, _Answers] = {}
        self.all: dict[str, _Answers] = {}

    def start(self, event: Event) -> None:
        return None

    def observe(self, name: str, policy: Policy, event: Event) -> None:
        p = policy.p_yes(event.customer_id, event.offer, event.ctx, event.ts)
        self.all.setdefault(name, _Answers()).add(event.reward > 0, p)
        if event.scored:
            self.scored.setdefault(name, _Answers()).add(event.reward > 0, p)

    def finish(self, event: Event) -> None:
        return None

    def results(self, name: str) -> dict[str, Any]:
        return {
            **self.scored.get(name, _Answers()).figures(),
            **self.all.get(name, _Answers()).figures("_all"),
        }


def coupon_reference(rows: Sequence[Mapping[str, str]], cut: int, seed: int) -> dict[str, Any]:
    """An offline model as the bar: scikit-learn's HistGradientBoostingClassifier on every
    column (categories ordinal-encoded and split as categories), fit on rows[:cut] and
    scored on rows[cut:], the same rows the stream is scored on."""
    import numpy as np
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.preprocessing import OrdinalEncoder

    columns = [c for c in rows[0] if c != "Y"]
    categorical = [c for c in columns if c not in COUPON_NUMERIC]
    numeric = [c for c in columns if c in COUPON_NUMERIC]
    cats = np.array([[r[c] for c in categorical] for r in rows], dtype=object)
    nums = np.array([[float(r[c]) for c in numeric] for r in rows], dtype=float)
    y = np.array([int(r["Y"]) for r in rows])
    encoder = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan)
    encoder.fit(cats[:cut])
    x = np.hstack([encoder.transform(cats), nums])
    mask = [True] * len(categorical) + [False] * len(numeric)
    model = HistGradientBoostingClassifier(categorical_features=mask, random_state=seed)
    model.fit(x[:cut], y[:cut])
    p = [float(v) for v in model.predict_proba(x[cut:])[:, 1]]
    labels = [int(v) for v in y[cut:]]
    return {
        "model": "HistGradientBoostingClassifier, all columns, first 80% -> final 20%",
        "auc": _num(auc(labels, p)),
        "logloss": _num(logloss(labels, p)),
        "train_rows": cut,
        "test_rows": len(rows) - cut,
    }


def replay_coupon(
    path: Path, *, limit: int | None = None, seed: int = DEFAULT_SEED, progress: bool = False
) -> dict[str, Any]:
    events, catalog, rows = read_coupon(path)
    if limit is not None:
        events, rows = events[:limit], rows[:limit]
    cut = int(len(events) * (1 - TEST_SHARE))
    events = [replace(e, scored=i >= cut) for i, e in enumerate(events)]
    policies = make_policies(catalog, seed, PolicyConfig(value="yes"))
    results = run(events, policies, CalibrationTask(), desc="coupon", progress=progress)
    reference: dict[str, Any] = {
        "scored_from_event": cut,
        "respondents": len({e.customer_id for e in events}),
        "acceptance_rate": _num(sum(e.reward for e in events) / len(events)) if events else None,
    }
    if 0 < cut < len(events):
        reference["gbm"] = coupon_reference(rows, cut, seed)
    return {"source": "coupon", "events": len(events), "policies": results, "reference": reference}


# ---- open bandit -----------------------------------------------------------------------

OPEN_BANDIT_USER = ("user_feature_0", "user_feature_1", "user_feature_2", "user_feature_3")


def read_open_bandit_items(folder: Path, log: str) -> list[Offer]:
    """The items of a log (`{log}_item_context.csv`): hashed features become the category
    and tags, so the models can share what they learn between similar items."""
    path = folder / f"{log}_item_context.csv"
    header = _header(path)
    _require(path, header, ("item_id", "item_feature_1", "item_feature_2", "item_feature_3"))
    items = sorted(_open(path), key=lambda r: int(r["item_id"]))
    return [
        _plain_offer(
            r["item_id"],
            f"item {r['item_id']}",
            category="f1-" + r["item_feature_1"][:8],
            tags=frozenset({"f2-" + r["item_feature_2"][:8], "f3-" + r["item_feature_3"][:8]}),
        )
        for r in items
    ]


def read_open_bandit(folder: Path, log: str, offers: Sequence[Offer]) -> list[Event]:
    """A log's rows as anonymous events: user features and slot position are the context."""
    path = folder / f"{log}.csv"
    header = _header(path)
    _require(
        path,
        header,
        ("timestamp", "item_id", "position", "click", "propensity_score", *OPEN_BANDIT_USER),
    )
    by_id = {o.offer_id: o for o in offers}
    events = []
    for i, row in enumerate(_open(path)):
        line = i + 2
        offer = by_id.get(row["item_id"])
        if offer is None:
            raise ReplayError(f"{path}:{line}: item_id {row['item_id']!r} is not in the items")
        try:
            ts = parse_timestamp(row["timestamp"])
            propensity = float(row["propensity_score"])
            click = float(row["click"])
        except ValueError as exc:
            raise ReplayError(f"{path}:{line}: unreadable value ({exc})") from None
        extra: dict[str, str | float] = {c[-6:]: row[c][:8] for c in OPEN_BANDIT_USER}
        extra["position"] = row["position"]
        ctx = Context(daypart_at(ts, OPEN_BANDIT_UTC_OFFSET_H), extra=extra)
        events.append(Event(None, offer, ctx, click, ts, propensity=propensity))
    events.sort(key=lambda e: e.ts)  # stable: ties keep file order
    return events


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


def logger_check(events: Sequence[Event]) -> dict[str, Any]:
    """The estimators' correctness check: IPS of the logging policy itself (pi = the logged
    propensity, every weight exactly 1) must reproduce the logged CTR exactly."""
    rewards = [e.reward for e in events]
    logged = [e.propensity or 0.0 for e in events]
    ctr = math.fsum(rewards) / len(rewards)
    estimate = ips(rewards, logged, logged).estimate
    return {
        "rows": len(events),
        "clicks": int(math.fsum(rewards)),
        "logged_ctr": ctr,
        "ips_of_logger": estimate,
        "snips_of_logger": snips(rewards, logged, logged).estimate,
        "reproduces_logged_ctr": estimate == ctr,
    }


def replay_open_bandit(
    folder: Path, *, limit: int | None = None, seed: int = DEFAULT_SEED, progress: bool = False
) -> dict[str, Any]:
    offers = read_open_bandit_items(folder, "random")
    events = read_open_bandit(folder, "random", offers)
    events = events[:limit] if limit is not None else events
    if not events:
        raise ReplayError(f"{folder}/random.csv has no rows")
    cfg = PolicyConfig(value="yes")
    catalog = Catalog.of(offers, [REPLAY_STORE])
    task = OffPolicyTask(offers, cfg.explore_rate)
    results = run(
        events, make_policies(catalog, seed, cfg), task, desc="open-bandit", progress=progress
    )
    ctr = mean_interval([e.reward for e in events])
    reference: dict[str, Any] = {
        "logged_ctr": ctr.as_json(),
        "epsilon": cfg.explore_rate,
        "logger_check": logger_check(events),
        "caution": CLICK_CAUTION,
    }
    if (folder / "bts.csv").exists() and (folder / "bts_item_context.csv").exists():
        bts = read_open_bandit(folder, "bts", read_open_bandit_items(folder, "bts"))
        reference["logger_check_bts"] = logger_check(bts[:limit] if limit is not None else bts)
    return {
        "source": "open-bandit",
        "events": len(events),
        "policies": results,
        "reference": reference,
    }


# ---- simulator -------------------------------------------------------------------------


class Actor(Protocol):
    """A policy acting in the simulated world: what it shows, and what it learns."""

    def show(self, visit: Visit, ctx: Context, now: float) -> list[str]: ...

    def learn(
        self, visit: Visit, ctx: Context, shown: Sequence[str], bought: str | None, now: float
    ) -> None: ...


class EngineActor:
    """The worker's loop without Kafka: decide_for, impressions, the purchase as a yes (a
    soft no to the others shown), impressions with no yes as no's when their window ends."""

    def __init__(self, policy: LearnerPolicy, seed: int, name: str) -> None:
        self.policy = policy
        self.rng = random.Random(f"{seed}:{name}")

    def show(self, visit: Visit, ctx: Context, now: float) -> list[str]:
        cid = visit.customer.customer_id
        model = self.policy.customer(cid)
        decision = self.policy.learner.decide_for(
            cid,
            model,
            visit.store_id,
            ctx,
            self.policy.trending_for(visit.store_id),
            now,
            self.rng,
            f"d-{visit.seq}",
        )
        shown = [o.offer_id for o in decision.offers][: visit.slots]
        for offer_id in shown:
            model.shown(offer_id, now)
        return shown

    def learn(
        self, visit: Visit, ctx: Context, shown: Sequence[str], bought: str | None, now: float
    ) -> None:
        learner = self.policy.learner
        cid = visit.customer.customer_id
        model = self.policy.customer(cid)
        if bought is not None:
            self.policy.learn(cid, learner.catalog.offers[bought], ctx, 1.0, now)
        window = learner.cfg.answer_window_s
        learner.expire(
            model,
            ctx,
            now + window + 1.0,
            self.policy.trending_for(visit.store_id),
        )


def pick_within_rules(
    ranked: Sequence[Offer],
    cap: CustomerModel,
    cfg: PolicyConfig,
    now: float,
    slots: int,
) -> list[str]:
    """The first `slots` of `ranked` that the business rules allow (the frequency cap, at
    most `max_per_category` per category), recorded as shown. The oracle and every
    baseline keep the rules the engine keeps, so their rewards compare."""
    shown: list[str] = []
    per_category: dict[str, int] = {}
    for offer in ranked:
        if len(shown) == slots:
            break
        if (
            cap.times_unanswered(offer.offer_id, now, cfg.frequency_cap_period_s)
            >= cfg.frequency_cap
        ):
            continue
        if per_category.get(offer.category, 0) < cfg.max_per_category:
            shown.append(offer.offer_id)
            per_category[offer.category] = per_category.get(offer.category, 0) + 1
    for offer_id in shown:
        cap.shown(offer_id, now)
    return shown


class RankingActor:
    """A baseline shows its top offers among those the store sells now (within the rules),
    and learns each shown offer as a yes (bought) or a no."""

    def __init__(self, policy: Policy, catalog: Catalog, cfg: PolicyConfig) -> None:
        self.policy = policy
        self.catalog = catalog
        self.cfg = cfg
        self.caps: dict[str, CustomerModel] = {}  # only its frequency-cap bookkeeping

    def show(self, visit: Visit, ctx: Context, now: float) -> list[str]:
        offers = self.catalog.available(visit.store_id, ctx.daypart)
        scores = self.policy.scores(visit.customer.customer_id, offers, ctx, now)
        order = sorted(range(len(offers)), key=lambda i: -scores[i])  # stable on ties
        cap = self.caps.setdefault(visit.customer.customer_id, CustomerModel())
        return pick_within_rules([offers[i] for i in order], cap, self.cfg, now, visit.slots)

    def learn(
        self, visit: Visit, ctx: Context, shown: Sequence[str], bought: str | None, now: float
    ) -> None:
        for offer_id in shown:
            reward = 1.0 if offer_id == bought else 0.0
            self.policy.learn(
                visit.customer.customer_id, self.catalog.offers[offer_id], ctx, reward, now
            )
        if bought is not None:
            self.caps[visit.customer.customer_id].close(bought, True, shown)


class OracleActor:
    """Knows every customer's true P(yes): shows the top offers by P(yes) x price within the
    rules, so its reward is the best any rule-abiding policy could earn here."""

    def __init__(self, world: World, cfg: PolicyConfig) -> None:
        self.world = world
        self.cfg = cfg
        self.caps: dict[str, CustomerModel] = {}  # only its frequency-cap bookkeeping

    def show(self, visit: Visit, ctx: Context, now: float) -> list[str]:
        offers = list(self.world.catalog.available(visit.store_id, ctx.daypart))
        offers.sort(key=lambda o: -self.world.p_yes(visit.customer, o.offer_id, ctx) * o.price)
        cap = self.caps.setdefault(visit.customer.customer_id, CustomerModel())
        return pick_within_rules(offers, cap, self.cfg, now, visit.slots)

    def learn(
        self, visit: Visit, ctx: Context, shown: Sequence[str], bought: str | None, now: float
    ) -> None:
        if bought is not None:
            self.caps[visit.customer.customer_id].close(bought, True, shown)


@dataclass(slots=True)
class _Takings:
    rewards: list[float] = field(default_factory=list)
    purchases: int = 0


def replay_simulator(
    catalog_path: Path | None = None,
    *,
    limit: int | None = None,
    seed: int = DEFAULT_SEED,
    progress: bool = False,
) -> dict[str, Any]:
    """Every policy meets the same visits (customers, stores, weather, queues); each shows
    its offers and the world answers, with a generator seeded per visit, so the policies
    are compared on common random numbers and none disturbs another's answers."""
    from config.catalog import CatalogError, load_catalog

    try:
        catalog = load_catalog(catalog_path)
    except CatalogError as exc:
        raise ReplayError(str(exc)) from None
    visits = SIM_VISITS if limit is None else limit
    world = World(catalog, start=SIM_START, seed=seed, customers=SIM_CUSTOMERS)
    cfg = PolicyConfig()
    policies = make_policies(catalog, seed, cfg)
    actors: dict[str, Actor] = {}
    for name, policy in policies.items():
        if isinstance(policy, LearnerPolicy):
            actors[name] = EngineActor(policy, seed, name)
        else:
            actors[name] = RankingActor(policy, catalog, PolicyConfig())
    actors["oracle"] = OracleActor(world, PolicyConfig())
    takings = {name: _Takings() for name in actors}
    warm_up = int(visits * WARM_UP_SHARE)
    for i in _bar(range(visits), visits, "simulator", progress):
        world.advance_sim(SIM_VISIT_EVERY_S)
        visit = world.next_visit()
        ctx = replace(visit.context, store_id=visit.store_id)
        now = world.clock.ts
        for name, actor in actors.items():
            shown = actor.show(visit, ctx, now)
            bought = world.choose(visit.customer, shown, ctx, random.Random(visit.answer_seed))
            actor.learn(visit, ctx, shown, bought, now)
            if i >= warm_up:
                t = takings[name]
                t.rewards.append(catalog.offers[bought].price if bought else 0.0)
                t.purchases += bought is not None
    oracle = takings.pop("oracle")
    oracle_mean = math.fsum(oracle.rewards) / len(oracle.rewards) if oracle.rewards else 0.0
    results: dict[str, dict[str, Any]] = {}
    for name, t in takings.items():
        scored = len(t.rewards)
        mean = math.fsum(t.rewards) / scored if scored else math.nan
        results[name] = {
            "reward_per_event": _num(mean),
            "purchase_rate": _num(t.purchases / scored) if scored else None,
            "oracle_share": _num(mean / oracle_mean) if oracle_mean > 0 else None,
        }
    return {
        "source": "simulator",
        "events": visits,
        "policies": results,
        "reference": {
            "oracle": {
                "reward_per_event": _num(oracle_mean),
                "purchase_rate": _num(oracle.purchases / len(oracle.rewards))
                if oracle.rewards
                else None,
            },
            "warm_up_visits": warm_up,
            "customers": SIM_CUSTOMERS,
            "sim_hours": round(visits * SIM_VISIT_EVERY_S / 3600.0, 1),
        },
    }


def write_simulated_interactions(path: Path, visits: int, seed: int = DEFAULT_SEED) -> int:
    """An interactions CSV from the simulator under a uniformly random logging policy (each
    visit shows `slots` random offers the store sells now; the purchase is reward 1, every
    other shown offer 0), to replay with `tailor replay interactions`. Returns its rows."""
    from config.catalog import load_catalog

    catalog = load_catalog()
    world = World(catalog, start=SIM_START, seed=seed, customers=SIM_CUSTOMERS)
    rng = random.Random(f"{seed}:interactions-log")
    rows = 0
    with path.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(
            [
                *INTERACTION_COLUMNS,
                "store_id",
                "channel",
                "weather",
                "temperature_c",
                "queue_length",
            ]
        )
        for _ in range(visits):
            world.advance_sim(SIM_VISIT_EVERY_S)
            visit = world.next_visit()
            ctx = visit.context
            offers = catalog.available(visit.store_id, ctx.daypart)
            shown = [o.offer_id for o in rng.sample(offers, min(visit.slots, len(offers)))]
            bought = world.choose(visit.customer, shown, ctx, random.Random(visit.answer_seed))
            stamp = visit.ts.strftime("%Y-%m-%dT%H:%M:%SZ")
            for offer_id in shown:
                out.writerow(
                    [
                        visit.customer.customer_id,
                        offer_id,
                        stamp,
                        int(offer_id == bought),
                        visit.store_id,
                        visit.channel,
                        ctx.weather,
                        ctx.temperature_c,
                        ctx.queue_length,
                    ]
                )
                rows += 1
    return rows


# ---- entry points ----------------------------------------------------------------------


def resolve(source: str, data: Path | None) -> Path | None:
    """The file or folder a source reads, from what --data names: the file itself, its
    folder, or the shared data folder holding it."""
    if source == "simulator":
        return data if data is not None and data.is_file() else None
    if data is None:
        raise ReplayError(f"replay {source} needs --data PATH")
    if source == "interactions":
        if not data.is_file():
            raise ReplayError(f"{data}: not a CSV file")
        return data
    if source == "coupon":
        for candidate in (data, data / COUPON_FILE, data / "in-vehicle-coupon" / COUPON_FILE):
            if candidate.is_file():
                return candidate
        raise ReplayError(f"{data}: no {COUPON_FILE} there (nor in in-vehicle-coupon/)")
    if source == "open-bandit":
        for candidate in (data, data / "open-bandit-men"):
            if (candidate / "random.csv").is_file():
                return candidate
        raise ReplayError(f"{data}: no random.csv there (nor in open-bandit-men/)")
    raise ReplayError(f"unknown source {source!r}; one of {', '.join(SOURCES)}")


def replay(
    source: str,
    data: Path | None,
    *,
    limit: int | None = None,
    seed: int = DEFAULT_SEED,
    progress: bool = False,
) -> dict[str, Any]:
    """Replay one source; the report is JSON-able: source, events, policies, reference."""
    if limit is not None and limit < 1:
        raise ReplayError(f"--limit must be >= 1, got {limit}")
    path = resolve(source, data)
    if source == "simulator":
        return replay_simulator(path, limit=limit, seed=seed, progress=progress)
    assert path is not None
    if source == "interactions":
        return replay_interactions(path, limit=limit, seed=seed, progress=progress)
    if source == "coupon":
        return replay_coupon(path, limit=limit, seed=seed, progress=progress)
    return replay_open_bandit(path, limit=limit, seed=seed, progress=progress)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict) and "estimate" in value:
        return f"{value['estimate']:.4f} [{value['low']:.4f}, {value['high']:.4f}]"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def _flatten(prefix: str, value: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict) and "estimate" not in value:
        for k, v in value.items():
            yield from _flatten(f"{prefix}.{k}" if prefix else str(k), v)
    else:
        yield prefix, value


def format_report(report: Mapping[str, Any]) -> str:
    """A readable table: a row per policy, a column per figure, then the reference."""
    policies: Mapping[str, Mapping[str, Any]] = report["policies"]
    columns = list(dict.fromkeys(k for m in policies.values() for k in m))
    rows = [["policy", *columns]]
    rows += [[name, *(_cell(m.get(c)) for c in columns)] for name, m in policies.items()]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [f"tailor replay {report['source']}: {report['events']} events", ""]
    for j, r in enumerate(rows):
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines += ["", "reference:"]
    lines += [f"  {k}: {_cell(v)}" for k, v in _flatten("", report["reference"])]
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    """`tailor replay`: the report on stdout (JSON or a table), progress on stderr."""
    try:
        report = replay(args.source, args.data, limit=args.limit, seed=args.seed, progress=True)
    except ReplayError as exc:
        print(f"tailor replay: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report, allow_nan=False))
    else:
        print(format_report(report))
    return 0
