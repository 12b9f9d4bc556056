"""Store agents: trending per store and store context, both rendered into the store's board.

Stream stage: tailor.store-answers + tailor.store-context (keyed by store) ─► `stores`
table ─► Redis tailor:board:{store} (what screens show) and tailor:store:{store} (the
trending and context snapshot customer decisions read). A timer re-renders the boards of
this worker's stores so dayparts turn and trending decays even when a store is quiet.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

import faust
import orjson
from faust.types import EventT

from engine.wire import metrics
from engine.wire.events import CHANNELS, Rejection, StoreContext, decode_store_context
from engine.wire.topics import STORE_ANSWERS
from engine.worker.app import Worker
from engine.worker.batch import Outgoing, written_as
from engine.worker.dead_letter import dead_letter_record
from engine.worker.sequence import Sequencer, watch
from models.answer import STRENGTH
from models.context import Context, daypart_at
from models.trending import Trending, scopes_for

NO_STORE = "-"  # the key of yes-answers given outside any store (popularity only)

BOARD_REFRESH_S = 30.0


def trending_of(w: Worker, state: dict[str, Any] | None) -> Trending:
    return Trending.from_state((state or {}).get("trending"), w.settings.trending_half_life_s)


def situation_of(state: dict[str, Any] | None) -> dict[str, Any]:
    """The store's latest known weather, temperature and queue ({} if never told)."""
    situation: dict[str, Any] = (state or {}).get("context") or {}
    return situation


def context_now(w: Worker, store_id: str, state: dict[str, Any] | None, now: float) -> Context:
    """The store's context now: its daypart by its clock, its latest weather and queue."""
    situation = situation_of(state)
    return Context(
        daypart=daypart_at(now, w.catalog.stores[store_id].utc_offset_h),
        weather=situation.get("weather"),
        temperature_c=situation.get("temperature_c"),
        queue_length=situation.get("queue_length"),
        store_id=store_id,
    )


def board_for(w: Worker, store_id: str, state: dict[str, Any] | None, now: float) -> dict[str, Any]:
    decision = w.learner.board(
        store_id,
        replace(context_now(w, store_id, state, now), channel="drive_thru"),
        trending_of(w, state),
        now,
        w.rng,
        "b-" + uuid.uuid4().hex,
        stock_out=situation_of(state).get("stock_out", ()),
    )
    return {**decision.as_json(w.catalog), "store_name": w.catalog.stores[store_id].name}


def shelves_for(
    w: Worker, store_id: str, state: dict[str, Any] | None, now: float
) -> dict[str, Any]:
    """The store's shelf for each policy (`models.shelf`): what the API tailors a
    customer's offers from at request time, for any channel."""
    ctx, trending = context_now(w, store_id, state, now), trending_of(w, state)
    stock_out = situation_of(state).get("stock_out", ())
    return {
        "store_id": store_id,
        "shelves": {
            learner.cfg.name: learner.shelf(ctx, trending, now, stock_out, CHANNELS).as_json()
            for learner in (w.learner, w.control)
        },
    }


def introductions(w: Worker, store_ids: Iterable[str], states: Mapping[str, Any]) -> list[Outgoing]:
    """An empty context update for each known store with no snapshot yet, so the worker
    that owns it starts its state and publishes its board and shelf: a store nobody has
    told anything still has a menu to show and to tailor from."""
    return [
        Outgoing(w.store_context_topic, s, StoreContext(store_id=s).model_dump_json().encode())
        for s in store_ids
        if s in w.catalog.stores and s not in states
    ]


async def publish(w: Worker, store_ids: set[str]) -> None:
    """Render and write the boards, snapshots and popularity of these (owned) stores."""
    now = time.time()
    states = {s: w.stores.get(s) or {} for s in store_ids}
    shops = {s: state for s, state in states.items() if s in w.catalog.stores}
    await w.health.retry(
        "redis",
        lambda: w.serving().write(
            boards={s: board_for(w, s, state, now) for s, state in shops.items()},
            shelves={s: shelves_for(w, s, state, now) for s, state in shops.items()},
            store_states=shops,
            popular={s: state["popular"] for s, state in states.items() if state.get("popular")},
            popular_scopes=[*w.catalog.stores, NO_STORE],
        ),
    )


def learn_answer(w: Worker, state: dict[str, Any], answer: dict[str, Any]) -> bool:
    """Add one yes-answer to a store's trending and popularity, unless applied already.

    Each answer names its source (partition and offset of tailor.interactions); the store
    keeps the highest offset applied per source partition, so an answer resent after a
    crash upstream, or redelivered here, counts once.
    """
    source = answer.get("src")
    marks: dict[str, int] = state.setdefault("applied", {})
    if source is not None:
        partition, offset = str(source[0]), int(source[1])
        if offset <= marks.get(partition, -1):
            metrics.DUPLICATES.labels("store_answer").inc()
            return False
        marks[partition] = offset
    weight = STRENGTH[answer["type"]]
    popular: dict[str, float] = state.setdefault("popular", {})
    popular[answer["offer_id"]] = round(popular.get(answer["offer_id"], 0.0) + weight, 4)
    store_id = answer["store_id"]
    if store_id is not None:
        trending = trending_of(w, state)
        scopes = scopes_for(store_id, answer["daypart"], answer["weather"])
        trending.add(answer["offer_id"], weight, answer["ts"], scopes)
        state["trending"] = trending.to_state()
    return True


def install(w: Worker) -> None:
    settings, stores = w.settings, w.stores

    sequencer = Sequencer("tailor.trend", lambda: w.app.rebalancing)

    @w.app.agent(w.store_answers_topic, name="tailor.trend")
    async def trend(stream: faust.StreamT[bytes]) -> None:
        """Decayed popularity of offers per store, from yes-answers repartitioned by store."""
        batches = stream.take_events(settings.batch_size, within=settings.batch_within_s)  # type: ignore[attr-defined]
        async for events in batches:
            # Its high-water dedupe must see every answer in order: holes are read again.
            events[:] = await sequencer.admit(w.app.consumer, w.app.rebalancing_count, events)
            touched: dict[str, dict[str, Any]] = {}
            records: dict[str, EventT[bytes]] = {}
            refused = []
            for event in events:
                try:
                    answer = orjson.loads(event.value)  # written by interactions.learn
                    key = answer["store_id"] or NO_STORE
                    state = touched.get(key) or dict(stores.get(key) or {})
                    if learn_answer(w, state, answer):
                        touched[key], records[key] = state, event
                except Exception as exc:
                    refused.append(dead_letter_record(w, event, Rejection("bad_answer", repr(exc))))
            await w.health.retry("kafka", w.changelogs_known)
            for key, state in touched.items():
                with written_as(records[key]):
                    stores[key] = state
            await publish(w, set(touched))
            for out in refused:
                await w.send(out)
            await w.durable()
            sequencer.done()

    @w.app.agent(w.store_context_topic, name="tailor.store_context")
    async def context(stream: faust.StreamT[bytes]) -> None:
        """Weather, temperature and queue length per store; each update re-renders the board."""
        batches = stream.take_events(settings.batch_size, within=settings.batch_within_s)  # type: ignore[attr-defined]
        async for events in batches:
            touched: set[str] = set()
            refused = []
            await w.health.retry("kafka", w.changelogs_known)
            for event in events:
                try:
                    update = decode_store_context(event.value, w.catalog)
                except Exception as exc:
                    update = Rejection("unreadable", repr(exc))
                if isinstance(update, Rejection):
                    refused.append(dead_letter_record(w, event, update))
                    continue
                metrics.STORE_CONTEXTS.inc()
                state = stores.get(update.store_id) or {}
                situation = {
                    **situation_of(state),
                    **update.model_dump(exclude_none=True, exclude={"ts", "store_id"}),
                    "ts": update.ts.timestamp(),
                }
                with written_as(event):
                    stores[update.store_id] = {**state, "context": situation}
                touched.add(update.store_id)
            if touched:
                await publish(w, touched)
            for out in refused:
                await w.send(out)
            await w.durable()

    async def refresh_boards() -> None:
        """Boards follow the clock when a store is quiet: dayparts turn, trending decays;
        a store never heard of is introduced to its owner."""
        owned = {s for s in stores.keys() if s in w.catalog.stores or s == NO_STORE}  # noqa: SIM118 - a Faust table
        if owned:
            await publish(w, owned)
        known = await w.health.retry(
            "redis", lambda: w.serving().store_states(list(w.catalog.stores))
        )
        for out in introductions(w, w.catalog.stores, known):
            await w.send(out)

    watch(w.app, w.health, sequencer, STORE_ANSWERS)

    w.app.timer(BOARD_REFRESH_S, name="tailor.refresh_boards")(
        w.health.guarded("refresh_boards", refresh_boards)
    )
