"""`interactions`: any CSV of customer_id, offer_id, timestamp, reward (+ context columns),
in timestamp order; hit@10 among offers the customer has not said yes to before, AUC and
log loss of P(yes).
"""

from __future__ import annotations

from collections.abc import Mapping
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
from engine.replay.sources.files import (
    is_number,
    parse_timestamp,
    read_header,
    read_rows,
    require_columns,
)
from engine.replay.tasks import HIT_K, InteractionsTask
from models.context import Context, daypart_at
from models.offer import DAYPARTS, Catalog, Offer
from models.policy import PolicyConfig

INTERACTION_COLUMNS = ("customer_id", "offer_id", "timestamp", "reward")
CONTEXT_COLUMNS = ("daypart", "weather", "temperature_c", "queue_length", "channel", "store_id")


def read_interactions(path: Path) -> tuple[list[Event], Catalog]:
    """The CSV as events in timestamp order (ties keep file order) and its offers.

    Columns named like Context's fields (daypart, weather, temperature_c, queue_length,
    channel, store_id) fill them; the daypart otherwise follows the timestamp (UTC). Every
    other column is an `extra` feature: numeric columns (every non-empty value a number)
    scaled to [-1, 1] by their range in the file (labels are not looked at), the rest
    categories. An empty value is no feature; an empty customer_id is an anonymous event.
    """
    header = read_header(path)
    require_columns(path, header, INTERACTION_COLUMNS)
    rows = list(read_rows(path))
    extras = [c for c in header if c not in INTERACTION_COLUMNS and c not in CONTEXT_COLUMNS]
    numeric: dict[str, tuple[float, float]] = {}
    for col in extras:
        values = [r[col] for r in rows if r.get(col)]
        if values and all(is_number(v) for v in values):
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
        if not is_number(row.get("reward") or ""):
            raise ReplayError(f"{path}:{line}: reward {row['reward']!r} is not a number")
        parsed.append((ts, i, row))
    parsed.sort(key=lambda t: (t[0], t[1]))
    offers: dict[str, Offer] = {}
    for _, _, row in parsed:
        if row["offer_id"] not in offers:
            offers[row["offer_id"]] = plain_offer(row["offer_id"])
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
        if not is_number(text):
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
    policies = make_policies(catalog, seed, PolicyConfig(value="yes"), choices=True)
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
            "positive_rate": num(positives / len(events)) if events else None,
        },
    }
