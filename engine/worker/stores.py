"""Store agents: trending per store and store context, both rendered into the store's board.

Stream stage: tailor.store-answers + tailor.store-context (keyed by store) ─► `stores`
table ─► Redis tailor:board:{store} (what screens show) and tailor:store:{store} (the
trending and context snapshot customer decisions read). A timer re-renders the boards of
this worker's stores so dayparts turn and trending decays even when a store is quiet.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import faust
import orjson

from engine.wire import metrics
from engine.wire.events import Rejection, decode_store_context
from engine.worker.app import Worker
from engine.worker.dead_letter import dead_letter
from models.answer import STRENGTH
from models.context import Context, daypart_at
from models.trending import Trending, scopes_for

BOARD_REFRESH_S = 30.0


def trending_of(w: Worker, state: dict[str, Any] | None) -> Trending:
    return Trending.from_state((state or {}).get("trending"), w.settings.trending_half_life_s)


def situation_of(state: dict[str, Any] | None) -> dict[str, Any]:
    """The store's latest known weather, temperature and queue ({} if never told)."""
    situation: dict[str, Any] = (state or {}).get("context") or {}
    return situation


def board_for(w: Worker, store_id: str, state: dict[str, Any] | None, now: float) -> dict[str, Any]:
    store = w.catalog.stores[store_id]
    situation = situation_of(state)
    ctx = Context(
        daypart=daypart_at(now, store.utc_offset_h),
        weather=situation.get("weather"),
        temperature_c=situation.get("temperature_c"),
        queue_length=situation.get("queue_length"),
        channel="drive_thru",
        store_id=store_id,
    )
    decision = w.learner.board(
        store_id,
        ctx,
        trending_of(w, state),
        now,
        w.rng,
        "b-" + uuid.uuid4().hex,
        stock_out=situation.get("stock_out", ()),
    )
    return {**decision.as_json(w.catalog), "store_name": store.name}


async def publish(w: Worker, store_ids: set[str]) -> None:
    """Render and write the boards and snapshots of these (locally owned) stores."""
    now = time.time()
    states = {s: w.stores.get(s) or {} for s in store_ids}
    await w.serving().write(
        boards={s: board_for(w, s, state, now) for s, state in states.items()},
        store_states=states,
    )


def install(w: Worker) -> None:
    settings, stores = w.settings, w.stores

    @w.app.agent(w.store_answers_topic, name="tailor.trend")
    async def trend(stream: faust.StreamT[bytes]) -> None:
        """Decayed popularity of offers per store, from yes-answers repartitioned by store."""
        async for batch in stream.take(settings.batch_size, within=settings.batch_within_s):
            touched: dict[str, Trending] = {}
            for raw in batch:
                answer = orjson.loads(raw)  # validated upstream by interactions.learn
                store_id = answer["store_id"]
                trending = touched.get(store_id) or trending_of(w, stores.get(store_id))
                scopes = scopes_for(store_id, answer["daypart"], answer["weather"])
                trending.add(answer["offer_id"], STRENGTH[answer["type"]], answer["ts"], scopes)
                touched[store_id] = trending
            await w.changelogs_known()
            for store_id, trending in touched.items():
                stores[store_id] = {**(stores.get(store_id) or {}), "trending": trending.to_state()}
            await publish(w, set(touched))

    @w.app.agent(w.store_context_topic, name="tailor.store_context")
    async def context(stream: faust.StreamT[bytes]) -> None:
        """Weather, temperature and queue length per store; each update re-renders the board."""
        batches = stream.take_events(settings.batch_size, within=settings.batch_within_s)  # type: ignore[attr-defined]
        async for events in batches:
            touched: set[str] = set()
            for event in events:
                update = decode_store_context(event.value, w.catalog)
                if isinstance(update, Rejection):
                    await dead_letter(w.dead_letter_topic, event, update)
                    continue
                metrics.STORE_CONTEXTS.inc()
                await w.changelogs_known()
                state = stores.get(update.store_id) or {}
                situation = {
                    **situation_of(state),
                    **update.model_dump(exclude_none=True, exclude={"ts", "store_id"}),
                    "ts": update.ts.timestamp(),
                }
                stores[update.store_id] = {**state, "context": situation}
                touched.add(update.store_id)
            if touched:
                await publish(w, touched)

    @w.app.timer(BOARD_REFRESH_S, name="tailor.refresh_boards")
    async def refresh_boards() -> None:
        """Boards follow the clock when a store is quiet: dayparts turn, trending decays."""
        owned = {s for s in stores.keys() if s in w.catalog.stores}  # noqa: SIM118 - a Faust table
        if owned:
            await publish(w, owned)
