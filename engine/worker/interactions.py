"""The 1-1 learning loop: each interaction teaches its customer's model, then re-decides.

Stream stage: tailor.interactions (key customer) ─► validate ─► learn ─► decide ─►
Redis tailor:offers:{customer} + tailor.decisions; refused events ─► tailor.dead-letter;
yes-answers ─► tailor.store-answers (key store) for trending. A loyalty scan (`identify`)
teaches nothing: its customer is decided for at the scan's store, and that decision goes
to Redis tailor:lane:{store}:{lane} too, until TAILOR_LANE_PERSONAL_S after the scan.

Questions and answers are joined in the customer's state: an impression opens a question
on an offer; a click or purchase is a yes (and a soft no to the other offers asked with
it); an impression with no yes within TAILOR_ANSWER_WINDOW_S is a no, learned at the
customer's next event or, if they do not come back, by the timer in `questions`.

Work is done per batch: a customer who answers five times in one batch is learned from
five times and decided for once, and all Redis writes of the batch share one pipeline.

Exactly once on at-least-once delivery: each customer's state remembers the last record
applied (partition, offset) and its recent event ids, so a record Kafka delivers again
after a crash or rebalance, or an event a client sent twice, is not learned again. A
batch's effects (state, Redis, Kafka records) are all made durable, each retried through
outages, before the batch is acknowledged.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Sequence
from typing import Any

import faust
import orjson
from faust.types import EventT

from engine.wire import metrics
from engine.wire.events import Identification, Interaction, Rejection, check_time, decode_event
from engine.wire.serving import lane_board
from engine.wire.topics import INTERACTIONS
from engine.worker.app import Worker
from engine.worker.batch import Batch, Outgoing, written_as
from engine.worker.commands import Command, command, command_of, run_command
from engine.worker.crowd import lessons_out
from engine.worker.dead_letter import dead_letter_record
from engine.worker.questions import remember
from engine.worker.sequence import Sequencer, watch
from engine.worker.stores import NO_STORE, introductions, situation_of, trending_of
from models.answer import STRENGTH, answer_of
from models.context import Context, daypart_at
from models.customer import CustomerModel
from models.offer import Catalog
from models.shelf import Taste
from models.trending import Trending

log = logging.getLogger("tailor.interactions")


def context_of(
    catalog: Catalog, event: Interaction | Identification, store_state: dict[str, Any] | None
) -> Context:
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


def read(w: Worker, event: EventT[bytes]) -> Interaction | Identification | Command | Rejection:
    """What a record of tailor.interactions is: an event, a command, or refused and why."""
    command_or_refusal = command_of(event)
    if command_or_refusal is not None:
        return command_or_refusal
    key = event.message.key
    decoded = decode_event(event.value, w.catalog)
    if isinstance(decoded, Rejection):
        return decoded
    if key is not None and key != decoded.customer_id.encode():
        shown = bytes(key)[:64].decode(errors="backslashreplace")
        return Rejection(
            "bad_key",
            f"record key {shown!r} is not the event's customer_id {decoded.customer_id!r}: "
            "events are keyed by customer so that each customer's answers stay in order",
        )
    s = w.settings
    return check_time(decoded, arrival(event), s.max_future_skew_s, s.max_event_age_s) or decoded


def arrival(event: EventT[bytes]) -> float:
    """When the record entered Kafka (its timestamp, in seconds)."""
    return float(event.message.timestamp)


async def process(w: Worker, events: Sequence[EventT[bytes]]) -> None:
    started = time.perf_counter()
    generation = w.app.rebalancing_count
    batch = Batch(w.customers, w.live_models())
    # Events and commands in arrival order; a command is kept in line so it applies to
    # what came before it and not after.
    items: list[tuple[Interaction | Identification | Command, EventT[bytes]]] = []
    for event in events:
        try:
            item = read(w, event)
        except Exception as exc:  # whatever a record holds, it cannot stop the partition
            item = Rejection("unreadable", f"{type(exc).__name__}: {exc}")
        if isinstance(item, Rejection):
            batch.refused.append((event, item))
        else:
            items.append((item, event))
    store_ids = sorted({e.store_id for e, _ in items if not isinstance(e, Command) and e.store_id})
    store_states = await w.health.retry("redis", lambda: w.serving().store_states(store_ids))
    trending: dict[str, Trending] = {s: trending_of(w, store_states.get(s)) for s in store_ids}
    batch.sends += introductions(w, store_ids, store_states)
    await w.health.retry("kafka", w.changelogs_known)

    for item, event in items:
        try:
            apply(w, batch, item, event, store_states, trending)
        except Exception as exc:  # a bug or a record no rule foresaw: refuse it, go on
            log.exception("could not apply %s", event.message.offset)
            batch.refused.append((event, Rejection("processing_error", f"{exc!r}")))

    decisions, tastes = decide(w, batch, store_states, trending)
    lanes = lane_boards(batch, decisions, time.time())
    for (store_id, lane), board in lanes.items():  # forgetting the customer clears it too
        cid = batch.lanes[(store_id, lane)][0]
        batch.models[cid].lane = (store_id, lane, board["until"], board["decision_id"])
        decisions[cid]["lane"] = [store_id, lane, board["decision_id"]]
    tasted: dict[str, dict[str, Any]] = {}  # each with the weights of the state just made
    for cid in batch.changed:
        with written_as(batch.records.get(cid)):
            w.customers[cid] = state = batch.models[cid].to_state()
            if cid in tastes:
                tasted[cid] = tastes[cid].as_json(state)
            if cid in batch.latest:
                before = batch.pending_before.get(cid, {})
                remember(w, cid, batch.models[cid], batch.latest[cid][0], before, batch.lag)
    w.keep_live({c: batch.models[c] for c in batch.changed}, batch.forgotten, generation)
    await w.health.retry(
        "redis", lambda: w.serving().write(offers=decisions, lanes=lanes, tastes=tasted)
    )
    # After the writes, so nothing of a forgotten customer survives them.
    await w.health.retry("redis", lambda: w.serving().forget(sorted(batch.forgotten)))
    written = time.time()
    for cid in decisions:
        metrics.FRESHNESS_SECONDS.observe(max(0.0, written - batch.entered[cid]))
    batch.sends += [
        Outgoing(w.decisions_topic, cid, orjson.dumps(decision))
        for cid, decision in decisions.items()
    ]
    batch.sends += lessons_out(w)  # what the batch taught, for the one crowd
    for event, rejection in batch.refused:
        batch.sends.append(dead_letter_record(w, event, rejection))
        metrics.EVENTS.labels("invalid", "dead_letter").inc()
    for out in batch.sends:
        await w.send(out)
    await w.durable()  # only now may Faust acknowledge the batch
    metrics.BATCH_SECONDS.observe(time.perf_counter() - started)


def apply(
    w: Worker,
    batch: Batch,
    item: Interaction | Identification | Command,
    event: EventT[bytes],
    store_states: dict[str, dict[str, Any]],
    trending: dict[str, Trending],
) -> None:
    """Apply one record to its owner's model in memory, unless it was applied already."""
    msg, at = event.message, arrival(event)
    owner = item.owner if isinstance(item, Command) else item.customer_id
    model = batch.model(owner)
    batch.record(owner, event)
    identity = item.identity if isinstance(item, Command) else item.event_id
    if model.replayed(msg.partition, msg.offset):
        # Delivered again after a crash or rebalance: learned already, but the effects
        # downstream may have been lost with the crash; they are idempotent, so resend.
        metrics.DUPLICATES.labels("replayed").inc()
        if isinstance(item, Identification):
            identified(w, batch, item, at, store_states)  # the lane too, as it was
        elif isinstance(item, Interaction):
            ctx = context_of(w.catalog, item, store_states.get(item.store_id or ""))
            if model.first_seen_at(item.event_id) == msg.offset:
                answered(w, batch, item, ctx, msg.partition, msg.offset)
            batch.touch(owner, ctx, item.event_id, at)  # rewrite a decision Redis may lack
        return
    if identity is not None and model.first_seen_at(identity) is not None:
        metrics.DUPLICATES.labels("resent").inc()  # the same event_id again: a client retry
        model.applied(msg.partition, msg.offset, at)
        batch.changed.add(owner)
        return
    if isinstance(item, Command):
        run_command(w, batch, item, model, at)
    elif isinstance(item, Identification):
        identified(w, batch, item, at, store_states)
        metrics.EVENTS.labels(item.type, "identification").inc()
    else:
        learn(w, batch, item, model, at, (msg.partition, msg.offset), store_states, trending)
    if owner in batch.models:  # not forgotten by it
        model.applied(msg.partition, msg.offset, at, identity)
        batch.changed.add(owner)


def learn(
    w: Worker,
    batch: Batch,
    got: Interaction,
    model: CustomerModel,
    now: float,
    source: tuple[int, int],
    store_states: dict[str, dict[str, Any]],
    trending: dict[str, Trending],
) -> None:
    """One event (from `source`, its partition and offset) teaches its customer's model:
    a question asked, or an answer given.

    Questions and answer windows run on the event's own time, so a backfill or a feed
    running late keeps apart what happened apart (and together what happened together),
    but never ahead of its arrival `now`: a clock set in the future cannot hold a question
    open. How far behind it arrived (`Batch.lag`) sets the questions timer's clock.
    """
    cid = got.customer_id
    when = min(got.ts.timestamp(), now)
    batch.lag[cid] = now - when
    ctx = context_of(w.catalog, got, store_states.get(got.store_id or ""))
    if got.session_id and got.session_id != cid:
        # The customer was anonymous as this session: ask its owner to hand it over.
        handover = {
            "customer_id": cid,
            "session_id": got.session_id,
            "context": ctx.as_json(),
            "asked_at": now,
        }
        batch.sends.append(command(w, "handover", got.session_id, handover))
    store_trending = trending.get(got.store_id or "")
    group, _ = w.decider(cid)
    for _ in w.learner.expire(model, ctx, when, store_trending):
        metrics.ANSWERS.labels("no", "window", group).inc()
    answer = answer_of(got.type)
    if answer is None:
        model.shown(got.offer_id, when, ctx, got.slot)
        metrics.QUESTIONS.labels(group).inc()
    else:
        offer = w.catalog.offers[got.offer_id]
        strength, choice = STRENGTH[got.type], got.type == "purchase"
        w.learner.answer(model, offer, ctx, answer, strength, when, store_trending, choice)
        metrics.ANSWERS.labels("yes" if answer else "no", got.type, group).inc()
        if answer:
            answered(w, batch, got, ctx, *source)
    metrics.EVENTS.labels(got.type, "question" if answer is None else "answer").inc()
    batch.touch(cid, ctx, got.event_id, now)


def identified(
    w: Worker,
    batch: Batch,
    scan: Identification,
    now: float,
    store_states: dict[str, dict[str, Any]],
) -> None:
    """A loyalty scan: no question and no answer, so the customer's model learns nothing;
    they are decided for at the scan's store now, and the lane shows that decision until
    TAILOR_LANE_PERSONAL_S after the scan (its own time, never ahead of arrival `now`), the
    same end however often the record is applied."""
    ctx = context_of(w.catalog, scan, store_states.get(scan.store_id))
    until = min(scan.ts.timestamp(), now) + w.settings.lane_personal_s
    batch.lanes[(scan.store_id, scan.lane)] = (scan.customer_id, until)
    batch.touch(scan.customer_id, ctx, scan.event_id, now)


def lane_boards(
    batch: Batch, decisions: dict[str, dict[str, Any]], now: float
) -> dict[tuple[str, int], dict[str, Any]]:
    """Each scanned lane's personal board: its customer's decision of this batch, if made at
    the lane's store (a later event elsewhere moved it: the lane keeps the store board) and
    the scan is still current."""
    boards = {}
    for (store_id, lane), (cid, until) in batch.lanes.items():
        decision = decisions.get(cid)
        if decision is not None and decision.get("store_id") == store_id and until > now:
            boards[(store_id, lane)] = lane_board(decision, lane, until)
    return boards


def answered(
    w: Worker, batch: Batch, got: Interaction, ctx: Context, partition: int, offset: int
) -> None:
    """A yes goes to its store's trending and popularity, tagged with where it came from
    (source partition and offset) so the store side applies it once however often sent."""
    record = {
        "store_id": got.store_id,
        "offer_id": got.offer_id,
        "type": got.type,
        "ts": got.ts.timestamp(),  # the touchpoint's own time: its daypart and trending
        "daypart": ctx.daypart,
        "weather": ctx.weather,
        "src": [partition, offset],
    }
    key = got.store_id or NO_STORE
    batch.sends.append(Outgoing(w.store_answers_topic, key, orjson.dumps(record)))


def decide(
    w: Worker,
    batch: Batch,
    store_states: dict[str, dict[str, Any]],
    trending: dict[str, Trending],
) -> tuple[dict[str, dict[str, Any]], dict[str, Taste]]:
    """A new decision for every customer the batch touched, each in their latest context,
    and their taste: what the API tailors their offers from wherever they are asked for."""
    decisions: dict[str, dict[str, Any]] = {}
    tastes: dict[str, Taste] = {}
    now = time.time()
    for cid, (ctx, event_id) in batch.latest.items():
        model = batch.model(cid)
        store = ctx.store_id or ""
        learner = w.decider(cid)[1]
        try:
            decision = learner.decide_for(
                cid,
                model,
                ctx.store_id,
                ctx,
                trending.get(store),
                now,
                w.rng,
                "d-" + uuid.uuid4().hex,
                stock_out=situation_of(store_states.get(store)).get("stock_out", ()),
            )
        except Exception:
            log.exception("no decision for %s this batch", cid)
            continue
        batch.changed.add(cid)  # deciding asks a question: the model remembers it
        decisions[cid] = {
            **decision.as_json(w.catalog),
            "channel": ctx.channel,
            "event_id": event_id,
        }
        if model.lane is not None and model.lane[2] > now:
            # Which lane may still show them: forgetting them clears it (`Serving.forget`).
            decisions[cid]["lane"] = [model.lane[0], model.lane[1], model.lane[3]]
        elif model.lane is not None:
            model.lane = None
        tastes[cid] = learner.taste(model, now)
    return decisions, tastes


def install(w: Worker) -> None:
    sequencer = Sequencer("tailor.learn", lambda: w.app.rebalancing)

    @w.app.agent(w.interactions_topic, name="tailor.learn")
    async def learn_agent(stream: faust.StreamT[bytes]) -> None:
        # take_events (not take) keeps each message's topic/partition/offset for dead letters.
        batches = stream.take_events(w.settings.batch_size, within=w.settings.batch_within_s)  # type: ignore[attr-defined]
        async for events in batches:
            # What the sequencer holds back is not acknowledged: it is read again.
            events[:] = await sequencer.admit(w.app.consumer, w.app.rebalancing_count, events)
            if events:
                await process(w, events)
            sequencer.done()

    watch(w.app, w.health, sequencer, INTERACTIONS)

    async def count_customers() -> None:
        metrics.CUSTOMERS.set(len(w.customers))

    w.app.timer(15.0, name="tailor.count_customers")(
        w.health.guarded("count_customers", count_customers)
    )
