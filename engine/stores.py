"""Store agents: trending per store and store context, both rendered into the store's board.

Stream stage: tailor.store-answers + tailor.store-context (keyed by store) ─► `stores`
table ─► Redis tailor:board:{store}. A leader timer re-renders every board so dayparts
turn and trending decays even when a store is quiet.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import faust
import orjson

from engine import metrics
from engine.app import (
    app,
    catalog,
    policy,
    rng,
    serving,
    settings,
    store_answers_topic,
    store_context_topic,
    stores,
)
from engine.dead_letter import dead_letter
from engine.events import Rejection, decode_store_context
from models.answer import STRENGTH
from models.context import Context, daypart_at
from models.decision import decide_board
from models.trending import Trending

BOARD_REFRESH_S = 30.0


def load_trending(store_id: str | None) -> Trending | None:
    if store_id is None:
        return None
    state = stores.get(store_id) or {}
    return Trending.from_state(state.get("trending"), settings.trending_half_life_s)


def situation_of(store_id: str | None) -> dict[str, Any]:
    """The store's latest known weather, temperature and queue ({} if never told)."""
    if store_id is None:
        return {}
    state = stores.get(store_id) or {}
    situation: dict[str, Any] = state.get("context") or {}
    return situation


def _save(
    store_id: str, trending: Trending | None = None, situation: dict[str, Any] | None = None
) -> None:
    state = dict(stores.get(store_id) or {})
    if trending is not None:
        state["trending"] = trending.to_state()
    if situation is not None:
        state["context"] = situation
    stores[store_id] = state


def board_for(store_id: str, now: float) -> dict[str, Any]:
    store = catalog.stores[store_id]
    situation = situation_of(store_id)
    ctx = Context(
        daypart=daypart_at(now, store.utc_offset_h),
        weather=situation.get("weather"),
        temperature_c=situation.get("temperature_c"),
        queue_length=situation.get("queue_length"),
        channel="drive_thru",
    )
    decision = decide_board(
        catalog, store_id, ctx, load_trending(store_id), now, rng, policy, "b-" + uuid.uuid4().hex
    )
    board = decision.as_json(catalog)
    board["store_name"] = store.name
    return board


async def publish_boards(store_ids: set[str]) -> None:
    now = time.time()
    await serving().write(boards={s: board_for(s, now) for s in store_ids})


@app.agent(store_answers_topic)
async def trend(stream: faust.StreamT[bytes]) -> None:
    """Decayed popularity of offers per store, from yes-answers repartitioned by store."""
    async for batch in stream.take(settings.batch_size, within=settings.batch_within_s):
        touched: dict[str, Trending] = {}
        for raw in batch:
            answer = orjson.loads(raw)  # validated upstream by interactions.learn
            store_id = answer["store_id"]
            trending = touched.get(store_id) or load_trending(store_id)
            assert trending is not None
            trending.add(answer["offer_id"], STRENGTH[answer["type"]], answer["ts"])
            touched[store_id] = trending
        for store_id, trending in touched.items():
            _save(store_id, trending=trending)
        await publish_boards(set(touched))


@app.agent(store_context_topic)
async def context(stream: faust.StreamT[bytes]) -> None:
    """Weather, temperature and queue length per store; each update re-renders the board."""
    batches = stream.take_events(settings.batch_size, within=settings.batch_within_s)  # type: ignore[attr-defined]
    async for events in batches:
        touched: set[str] = set()
        for event in events:
            update = decode_store_context(event.value, catalog)
            if isinstance(update, Rejection):
                await dead_letter(event, update)
                continue
            metrics.STORE_CONTEXTS.inc()
            situation = {**situation_of(update.store_id), **update.model_dump(exclude_none=True)}
            situation["ts"] = update.ts.timestamp()
            _save(update.store_id, situation=situation)
            touched.add(update.store_id)
        if touched:
            await publish_boards(touched)


@app.timer(BOARD_REFRESH_S, on_leader=True)
async def refresh_boards() -> None:
    """Every store has a board from the start, and boards follow the clock when quiet."""
    await publish_boards(set(catalog.stores))
