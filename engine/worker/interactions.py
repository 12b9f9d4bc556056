"""The 1-1 learning loop: each interaction teaches its customer's model, then re-decides.

Stream stage: tailor.interactions (key customer) ─► validate ─► learn ─► decide ─►
Redis tailor:offers:{customer} + tailor.decisions; refused events ─► tailor.dead-letter;
yes-answers ─► tailor.store-answers (key store) for trending.

Questions and answers are joined in the customer's state: an impression opens a question
on an offer; a click or purchase is a yes (and a soft no to the other offers asked with
it); an impression with no yes within TAILOR_ANSWER_WINDOW_S is a no, learned at the
customer's next event or, if they do not come back, by the timer in `questions`.

Work is done per batch: a customer who answers five times in one batch is learned from
five times and decided for once, and all Redis writes of the batch share one pipeline.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from typing import Any

import faust
import orjson
from faust.types import EventT

from engine.wire import metrics
from engine.wire.events import Interaction, Rejection, decode_interaction
from engine.worker.app import Worker
from engine.worker.batch import Batch
from engine.worker.commands import Command, command_of, run_command, send_command
from engine.worker.dead_letter import dead_letter
from engine.worker.questions import remember
from engine.worker.stores import situation_of, trending_of
from models.answer import STRENGTH, answer_of
from models.context import Context, daypart_at
from models.offer import Catalog
from models.trending import Trending


def context_of(catalog: Catalog, event: Interaction, store_state: dict[str, Any] | None) -> Context:
    """The touchpoint's context: what the event says, else what its store last told us."""
    store = catalog.stores.get(event.store_id or "")
    known = situation_of(store_state)
    told = event.context
    return Context(
        daypart=daypart_at(event.ts.timestamp(), store.utc_offset_h if store else 0.0),
        weather=told.weather if told and told.weather else known.get("weather"),
        temperature_c=(
            told.temperature_c
            if told and told.temperature_c is not None
            else known.get("temperature_c")
        ),
        queue_length=(
            told.queue_length
            if told and told.queue_length is not None
            else known.get("queue_length")
        ),
        channel=event.channel,
        store_id=event.store_id,
    )


async def process(w: Worker, events: Sequence[EventT[bytes]]) -> None:
    started = time.perf_counter()
    # Events and commands in arrival order, with the time each entered Kafka; a command is
    # kept in line so it applies to what came before it and not after.
    items: list[tuple[Interaction | Command, float]] = []
    for event in events:
        command = command_of(event)
        if isinstance(command, Rejection):
            await dead_letter(w.dead_letter_topic, event, command)
            continue
        if command is not None:
            items.append((command, event.message.timestamp))
            continue
        decoded = decode_interaction(event.value, w.catalog)
        if isinstance(decoded, Rejection):
            await dead_letter(w.dead_letter_topic, event, decoded)
            metrics.EVENTS.labels("invalid", "dead_letter").inc()
        else:
            items.append((decoded, event.message.timestamp))
    store_ids = sorted({e.store_id for e, _ in items if isinstance(e, Interaction) and e.store_id})
    store_states = await w.serving().store_states(store_ids)
    trending: dict[str, Trending] = {s: trending_of(w, store_states.get(s)) for s in store_ids}

    batch = Batch(w.customers)
    for item, kafka_ts in items:
        if isinstance(item, Command):
            await run_command(w, batch, item, kafka_ts)
            continue
        got, cid = item, item.customer_id
        batch.forgotten.discard(cid)  # an event after a forget starts afresh
        model = batch.model(cid)
        ctx = context_of(w.catalog, got, store_states.get(got.store_id or ""))
        if got.session_id and got.session_id != cid:
            # The customer was anonymous as this session: ask its owner to hand it over.
            handover = {
                "customer_id": cid,
                "session_id": got.session_id,
                "context": ctx.as_json(),
                "asked_at": kafka_ts,
            }
            await send_command(w, "handover", got.session_id, handover)
        ts = got.ts.timestamp()  # the touchpoint's own time: its daypart and trending
        # Questions, answer windows and frequency caps run on arrival time, the clock the
        # questions timer and the decisions share (a client's clock may be off or simulated).
        now = kafka_ts
        store_trending = trending.get(got.store_id or "")
        group, _ = w.decider(cid)
        for _ in w.learner.expire(model, ctx, now, store_trending):
            metrics.ANSWERS.labels("no", "window", group).inc()
        answer = answer_of(got.type)
        if answer is None:
            model.shown(got.offer_id, now)
            metrics.QUESTIONS.labels(group).inc()
        else:
            offer = w.catalog.offers[got.offer_id]
            w.learner.answer(model, offer, ctx, answer, STRENGTH[got.type], now, store_trending)
            metrics.ANSWERS.labels("yes" if answer else "no", got.type, group).inc()
            if answer:
                batch.popular[got.offer_id] = (
                    batch.popular.get(got.offer_id, 0.0) + STRENGTH[got.type]
                )
                if got.store_id is not None:
                    await w.store_answers_topic.send(
                        key=got.store_id,
                        value=orjson.dumps(
                            {
                                "store_id": got.store_id,
                                "offer_id": got.offer_id,
                                "type": got.type,
                                "ts": ts,
                                "daypart": ctx.daypart,
                                "weather": ctx.weather,
                            }
                        ),
                    )
        metrics.EVENTS.labels(got.type, "question" if answer is None else "answer").inc()
        batch.latest[cid] = (model, ctx, got.event_id)
        batch.entered.setdefault(cid, kafka_ts)

    decisions: dict[str, dict[str, Any]] = {}
    await w.changelogs_known()
    for cid, (model, ctx, event_id) in batch.latest.items():
        decision = w.decider(cid)[1].decide_for(
            cid,
            model,
            ctx.store_id,
            ctx,
            trending.get(ctx.store_id or ""),
            time.time(),
            w.rng,
            "d-" + uuid.uuid4().hex,
            stock_out=situation_of(store_states.get(ctx.store_id or "")).get("stock_out", ()),
        )
        w.customers[cid] = model.to_state()
        remember(w, cid, model, ctx)
        decisions[cid] = {
            **decision.as_json(w.catalog),
            "channel": ctx.channel,
            "event_id": event_id,
        }
    if decisions or batch.popular:
        await w.serving().write(offers=decisions, popular=batch.popular)
    await w.serving().forget(sorted(batch.forgotten))  # after the writes: nothing of them survives
    written = time.time()
    for cid in batch.latest:
        metrics.FRESHNESS_SECONDS.observe(max(0.0, written - batch.entered[cid]))
        await w.decisions_topic.send(key=cid, value=orjson.dumps(decisions[cid]))
    metrics.BATCH_SECONDS.observe(time.perf_counter() - started)


def install(w: Worker) -> None:
    @w.app.agent(w.interactions_topic, name="tailor.learn")
    async def learn(stream: faust.StreamT[bytes]) -> None:
        # take_events (not take) keeps each message's topic/partition/offset for dead letters.
        batches = stream.take_events(w.settings.batch_size, within=w.settings.batch_within_s)  # type: ignore[attr-defined]
        async for events in batches:
            await process(w, events)

    @w.app.timer(15.0, name="tailor.count_customers")
    async def count_customers() -> None:
        metrics.CUSTOMERS.set(len(w.customers))
