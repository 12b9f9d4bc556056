"""Seeded logs of the documented interactions CSV shape, for tuning and timing.

No real log of a shop's scale is on this machine, and a figure is never tuned on the
data it is reported on: the engine's hyperparameters are chosen on these (development),
its figures reported on ../shared/data and on logs the team does not have.

- `ratings_log`: MovieLens-100k-shaped (943 customers with Zipf activity, 1,682 offers,
  8-dimensional latent tastes, a yes for about 44% of ratings). `taste` = 0 picks what
  is rated by popularity alone (nothing to find beyond it); `taste` > 0 lets a
  customer's factors choose too, so offers liked by the same people go together.
- `baskets_log`: bakery-shaped: anonymous-or-not baskets of 1-4 items, each visit at a
  time of day whose favourites differ, items bought together in pairs.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

START_TS = 874_724_710  # MovieLens 100k's first rating (1997-09-20)
SPAN_S = 215 * 86_400


def ratings_log(
    path: Path, events: int, offers: int, customers: int, seed: int = 1, taste: float = 0.0
) -> None:
    """A ratings log: customer_id, offer_id, timestamp, reward (0/1)."""
    rng = np.random.default_rng(seed)
    dims = 8
    users = rng.normal(size=(customers, dims))
    items = rng.normal(size=(offers, dims))
    item_bias = rng.normal(scale=0.5, size=offers)
    activity = 1.0 / np.arange(1, customers + 1) ** 0.9
    popularity = 1.0 / np.arange(1, offers + 1) ** 0.9
    who = rng.choice(customers, size=events, p=activity / activity.sum())
    if taste > 0:
        logits = np.log(popularity)[None, :] + taste * (users @ items.T) / np.sqrt(dims)
        cdf = np.cumsum(np.exp(logits - logits.max(axis=1, keepdims=True)), axis=1)
        draw = rng.random(events) * cdf[who, -1]
        what = np.array([np.searchsorted(cdf[u], d) for u, d in zip(who, draw, strict=True)])
    else:
        what = rng.choice(offers, size=events, p=popularity / popularity.sum())
    logit = (users[who] * items[what]).sum(axis=1) / np.sqrt(dims) + item_bias[what] - 0.25
    reward = (rng.random(events) < 1.0 / (1.0 + np.exp(-logit))).astype(int)
    ts = np.sort(START_TS + rng.integers(0, SPAN_S, size=events))
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["customer_id", "offer_id", "timestamp", "reward"])
        for u, i, t, r in zip(who, what, ts, reward, strict=True):
            out.writerow([f"u{u:04d}", f"item-{i:04d}", int(t), int(r)])


DAYPART_HOURS = {"morning": (7, 11), "afternoon": (11, 17), "evening": (17, 21)}


def baskets_log(
    path: Path, baskets: int, items: int = 94, seed: int = 1, anonymous: bool = False
) -> None:
    """A bakery's till: one row per item bought (reward 1), baskets by time of day.

    Each time of day has its own favourites; each item has a partner bought with it
    often (coffee and a pastry), so what is in the basket says what comes next."""
    rng = np.random.default_rng(seed)
    base = np.log(1.0 / np.arange(1, items + 1) ** 1.1)
    by_part = {p: base + rng.normal(scale=1.0, size=items) for p in DAYPART_HOURS}
    partner = rng.permutation(items)
    day0 = 1_477_900_800  # 2016-10-31, as the well-known bakery log begins
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["customer_id", "offer_id", "timestamp", "reward"])
        for b in range(baskets):
            part = list(DAYPART_HOURS)[rng.choice(3, p=[0.35, 0.5, 0.15])]
            lo, hi = DAYPART_HOURS[part]
            ts = day0 + (b * 160 * 86_400) // baskets // 86_400 * 86_400
            ts += int(rng.integers(lo * 3600, hi * 3600))
            p = np.exp(by_part[part] - by_part[part].max())
            first = int(rng.choice(items, p=p / p.sum()))
            chosen = [first]
            for _ in range(int(rng.choice([0, 1, 2, 3], p=[0.35, 0.35, 0.2, 0.1]))):
                nxt = (
                    int(partner[chosen[-1]])
                    if rng.random() < 0.5
                    else int(rng.choice(items, p=p / p.sum()))
                )
                if nxt not in chosen:
                    chosen.append(nxt)
            who = "" if anonymous else f"b{b:05d}"
            for k, item in enumerate(chosen):
                out.writerow([who, f"item-{item:03d}", ts + 30 * k, 1])
