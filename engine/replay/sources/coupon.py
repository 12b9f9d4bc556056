"""`coupon`: the UCI in-vehicle coupon survey in file order; AUC and log loss on the final
20% of the stream, beside an offline gradient-boosting reference (scikit-learn, imported
only when it runs) trained on the first 80%.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from engine.replay.loop import (
    DEFAULT_SEED,
    REPLAY_STORE,
    Event,
    ReplayError,
    make_policies,
    num,
    plain_offer,
    run,
)
from engine.replay.metrics import auc, logloss
from engine.replay.sources.files import read_header, read_rows, require_columns
from engine.replay.tasks import CalibrationTask
from models.context import Context, daypart_at
from models.offer import Catalog, Offer
from models.policy import PolicyConfig

TEST_SHARE = 0.2  # coupon: the final 20% of the stream is scored
COUPON_EVERY_S = 60.0  # the survey has no clock: one answer a minute, in file order
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
    header = read_header(path)
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
    require_columns(path, header, needed)
    rows = list(read_rows(path))
    offers: dict[str, Offer] = {}
    events = []
    for i, row in enumerate(rows):
        line = i + 2
        kind = row["coupon"]
        if kind not in offers:
            offers[kind] = plain_offer(_slug(kind), kind, category=_slug(kind))
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
        "auc": num(auc(labels, p)),
        "logloss": num(logloss(labels, p)),
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
        "acceptance_rate": num(sum(e.reward for e in events) / len(events)) if events else None,
    }
    if 0 < cut < len(events):
        reference["gbm"] = coupon_reference(rows, cut, seed)
    return {"source": "coupon", "events": len(events), "policies": results, "reference": reference}
