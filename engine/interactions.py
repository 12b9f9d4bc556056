"""The 1-1 learning loop: each interaction teaches its customer's model, then re-decides.

Stream stage: tailor.interactions (key customer) ─► validate ─► learn ─► decide ─►
Redis tailor:offers:{customer} + tailor.decisions; refused events ─► tailor.dead-letter;
yes-answers ─► tailor.store-answers (key store) for trending.

Questions and answers are joined in the customer's state: an impression opens a question
on an offer; a click or purchase is a yes (and a soft no to the other offers asked with
it); an impression with no yes within TAILOR_ANSWER_WINDOW_S is a no, learned at the
customer's next event or, if they do not come back, by the `close_questions` timer.

Work is done per batch: a customer who answers five times in one batch is learned from
five times and decided for once, and all Redis writes of the batch share one pipeline.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import faust
import orjson
from faust.types import EventT

from engine import metrics
from engine.app import (
    app,
    catalog,
    changelogs_known,
    customers,
    decider,
    decisions_topic,
    interactions_topic,
    learner,
    questions,
    rng,
    serving,
    settings,
    store_answers_topic,
)
from engine.dead_letter import dead_letter
from engine.events import Interaction, Rejection, decode_interaction
from engine.stores import situation_of, trending_of
from engine.topics import COMMAND_HEADER
from models.answer import STRENGTH, answer_of
from models.context import Context, daypart_at
from models.customer import CustomerModel
from models.trending import Trending


def context_of(event: Interaction, store_state: dict[str, Any] | None) -> Context:
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


@dataclass(frozen=True, slots=True)
class Command:
    """A record of tailor.interactions that is an instruction, not an event (header
    `tailor.command`): forget a customer, hand a session over, or merge a session in."""

    name: str
    customer_id: str
    body: dict[str, Any]


_COMMAND_FIELDS = {
    "forget": ("customer_id",),
    "handover": ("customer_id", "session_id", "context", "asked_at"),
    "merge": ("customer_id", "session_id", "context", "asked_at"),
}


def command_of(event: EventT[bytes]) -> Command | Rejection | None:
    """The command this record carries, a rejection if it is a malformed one, or None for
    an ordinary event."""
    headers = event.message.headers or []
    pairs = dict(headers.items() if isinstance(headers, dict) else headers)
    name = pairs.get(COMMAND_HEADER)
    if name is None:
        return None
    kind = bytes(name).decode(errors="replace")
    try:
        body = orjson.loads(event.value)
    except orjson.JSONDecodeError as exc:
        return Rejection("bad_command", f"{kind}: body is not JSON: {exc}")
    needed = _COMMAND_FIELDS.get(kind)
    if needed is None:
        return Rejection(
            "bad_command", f"unknown command {kind!r}; known: {sorted(_COMMAND_FIELDS)}"
        )
    if not isinstance(body, dict) or (missing := [f for f in needed if f not in body]):
        return Rejection(
            "bad_command", f"{kind}: missing {missing if isinstance(body, dict) else needed}"
        )
    return Command(kind, str(body["customer_id"]), body)


# When each customer was forgotten here (arrival time), so that a merge produced before
# the forget but arriving after it cannot bring them back. Bounded: old entries are pruned.
_forgotten_at: dict[str, float] = {}
_FORGET_MEMORY_S = 86400.0


def _remember_forgotten(customer_id: str, at: float) -> None:
    _forgotten_at[customer_id] = at
    if len(_forgotten_at) > 100_000:
        for cid in [c for c, t in _forgotten_at.items() if at - t > _FORGET_MEMORY_S]:
            del _forgotten_at[cid]


async def send_command(name: str, key: str, body: dict[str, Any]) -> None:
    await interactions_topic.send(
        key=key, value=orjson.dumps(body), headers=[(COMMAND_HEADER, name.encode())]
    )


class Batch:
    """What one batch learned, per customer, until its decisions are written."""

    def __init__(self) -> None:
        self.latest: dict[str, tuple[CustomerModel, Context, str | None]] = {}
        self.entered: dict[str, float] = {}  # when the customer's oldest event arrived
        self.popular: dict[str, float] = {}
        self.forgotten: set[str] = set()

    def model(self, customer_id: str) -> CustomerModel:
        if customer_id in self.latest:
            return self.latest[customer_id][0]
        return CustomerModel.from_state(customers.get(customer_id))

    def drop(self, customer_id: str) -> None:
        self.latest.pop(customer_id, None)
        self.entered.pop(customer_id, None)
        self.forgotten.add(customer_id)


async def run_command(batch: Batch, command: Command, kafka_ts: float) -> None:
    cid = command.customer_id
    if command.name == "forget":
        await forget(cid)
        batch.drop(cid)
        _remember_forgotten(cid, kafka_ts)
    elif command.name == "handover":  # we hold the session: send what it taught
        session = command.body["session_id"]
        if session in batch.latest or customers.get(session) is not None:
            state = batch.model(session).to_state()
            await send_command("merge", cid, {**command.body, "state": state})
        await forget(session, count=False)
        batch.drop(session)
    elif command.name == "merge":  # we hold the customer: take the session in
        if _forgotten_at.get(cid, float("-inf")) >= float(command.body["asked_at"]):
            return  # the customer asked to be forgotten after this login: stay forgotten
        model = batch.model(cid)
        model.merge(CustomerModel.from_state(command.body.get("state")))
        metrics.SESSIONS_MERGED.inc()
        ctx = Context(**command.body["context"])
        if cid in batch.latest:  # a newer event of this batch keeps its context
            _, ctx, event_id = batch.latest[cid]
            batch.latest[cid] = (model, ctx, event_id)
        else:
            batch.latest[cid] = (model, ctx, None)
        batch.entered.setdefault(cid, kafka_ts)
        batch.forgotten.discard(cid)


async def process(events: Sequence[EventT[bytes]]) -> None:
    started = time.perf_counter()
    # Events and commands in arrival order, with the time each entered Kafka; a command is
    # kept in line so it applies to what came before it and not after.
    items: list[tuple[Interaction | Command, float]] = []
    for event in events:
        command = command_of(event)
        if isinstance(command, Rejection):
            await dead_letter(event, command)
            continue
        if command is not None:
            items.append((command, event.message.timestamp))
            continue
        decoded = decode_interaction(event.value, catalog)
        if isinstance(decoded, Rejection):
            await dead_letter(event, decoded)
            metrics.EVENTS.labels("invalid", "dead_letter").inc()
        else:
            items.append((decoded, event.message.timestamp))
    store_ids = sorted({e.store_id for e, _ in items if isinstance(e, Interaction) and e.store_id})
    store_states = await serving().store_states(store_ids)
    trending: dict[str, Trending] = {s: trending_of(store_states.get(s)) for s in store_ids}

    batch = Batch()
    for item, kafka_ts in items:
        if isinstance(item, Command):
            await run_command(batch, item, kafka_ts)
            continue
        got, cid = item, item.customer_id
        batch.forgotten.discard(cid)  # an event after a forget starts afresh
        model = batch.model(cid)
        ctx = context_of(got, store_states.get(got.store_id or ""))
        if got.session_id and got.session_id != cid:
            # The customer was anonymous as this session: ask its owner to hand it over.
            handover = {
                "customer_id": cid,
                "session_id": got.session_id,
                "context": _context_json(ctx),
                "asked_at": kafka_ts,
            }
            await send_command("handover", got.session_id, handover)
        ts = got.ts.timestamp()  # the touchpoint's own time: its daypart and trending
        # Questions, answer windows and frequency caps run on arrival time, the clock the
        # questions timer and the decisions share (a client's clock may be off or simulated).
        now = kafka_ts
        store_trending = trending.get(got.store_id or "")
        group, _ = decider(cid)
        for _ in learner.expire(model, ctx, now, store_trending):
            metrics.ANSWERS.labels("no", "window", group).inc()
        answer = answer_of(got.type)
        if answer is None:
            model.shown(got.offer_id, now)
            metrics.QUESTIONS.labels(group).inc()
        else:
            offer = catalog.offers[got.offer_id]
            learner.answer(model, offer, ctx, answer, STRENGTH[got.type], now, store_trending)
            metrics.ANSWERS.labels("yes" if answer else "no", got.type, group).inc()
            if answer:
                batch.popular[got.offer_id] = (
                    batch.popular.get(got.offer_id, 0.0) + STRENGTH[got.type]
                )
                if got.store_id is not None:
                    await store_answers_topic.send(
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
    await changelogs_known()
    for cid, (model, ctx, event_id) in batch.latest.items():
        decision = decider(cid)[1].decide_for(
            cid,
            model,
            ctx.store_id,
            ctx,
            trending.get(ctx.store_id or ""),
            time.time(),
            rng,
            "d-" + uuid.uuid4().hex,
            stock_out=situation_of(store_states.get(ctx.store_id or "")).get("stock_out", ()),
        )
        customers[cid] = model.to_state()
        remember_questions(cid, model, ctx)
        decisions[cid] = {**decision.as_json(catalog), "channel": ctx.channel, "event_id": event_id}
    if decisions or batch.popular:
        await serving().write(offers=decisions, popular=batch.popular)
    await serving().forget(sorted(batch.forgotten))  # after the writes: nothing of them survives
    written = time.time()
    for cid in batch.latest:
        metrics.FRESHNESS_SECONDS.observe(max(0.0, written - batch.entered[cid]))
        await decisions_topic.send(key=cid, value=orjson.dumps(decisions[cid]))
    metrics.BATCH_SECONDS.observe(time.perf_counter() - started)


async def forget(customer_id: str, count: bool = True) -> None:
    """Delete the customer's model and open questions; the table deletes are tombstones in
    the changelogs, so every replica and every future recovery forgets them too."""
    await changelogs_known()
    for table in (customers, questions):
        if table.get(customer_id) is not None:
            del table[customer_id]
    if count:
        metrics.FORGOTTEN.inc()


def _context_json(ctx: Context) -> dict[str, Any]:
    return {
        "daypart": ctx.daypart,
        "weather": ctx.weather,
        "temperature_c": ctx.temperature_c,
        "queue_length": ctx.queue_length,
        "channel": ctx.channel,
        "store_id": ctx.store_id,
    }


def remember_questions(customer_id: str, model: CustomerModel, ctx: Context) -> None:
    """Keep `questions` to the customers with open questions, due when the first expires."""
    if model.pending:
        due = min(model.pending.values()) + settings.answer_window_s
        questions[customer_id] = {"due": due, "context": _context_json(ctx)}
    elif questions.get(customer_id) is not None:
        del questions[customer_id]


@app.timer(max(1.0, min(60.0, settings.answer_window_s / 4)))
async def close_questions() -> None:
    """Questions nobody answered within the window are no's, even if the customer never
    comes back (their next event would learn them too)."""
    now = time.time()
    due = [cid for cid, q in list(questions.items()) if q and q["due"] <= now]
    if not due:
        return
    await changelogs_known()
    for cid in due:
        model = CustomerModel.from_state(customers.get(cid))
        ctx = Context(**questions[cid]["context"])
        for _ in learner.expire(model, ctx, now):
            metrics.ANSWERS.labels("no", "window", decider(cid)[0]).inc()
        customers[cid] = model.to_state()
        remember_questions(cid, model, ctx)


@app.agent(interactions_topic)
async def learn(stream: faust.StreamT[bytes]) -> None:
    # take_events (not take) keeps each message's topic/partition/offset for dead letters.
    batches = stream.take_events(settings.batch_size, within=settings.batch_within_s)  # type: ignore[attr-defined]
    async for events in batches:
        await process(events)


@app.timer(15.0)
async def count_customers() -> None:
    metrics.CUSTOMERS.set(len(customers))
