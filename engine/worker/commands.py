"""Commands: records of tailor.interactions that are instructions, not events.

A command carries the header `tailor.command` and rides the customer's own partition, so
it applies after every event the customer sent before it: `forget` (the API's DELETE),
`handover` (a login asks the session's worker for what the session taught) and `merge`
(the answer, keyed by the customer, taken into their model).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from faust.types import EventT

from engine.wire import metrics
from engine.wire.events import Rejection
from engine.wire.topics import COMMAND_HEADER
from engine.worker.app import Worker
from engine.worker.batch import Batch
from models.context import Context
from models.customer import CustomerModel

_FORGET_MEMORY_S = 86400.0
_FORGET_MEMORY_MAX = 100_000

_FIELDS = {
    "forget": ("customer_id",),
    "handover": ("customer_id", "session_id", "context", "asked_at"),
    "merge": ("customer_id", "session_id", "context", "asked_at"),
}


@dataclass(frozen=True, slots=True)
class Command:
    """An instruction on tailor.interactions: forget a customer, hand a session over, or
    merge a session in."""

    name: str
    customer_id: str
    body: dict[str, Any]


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
    needed = _FIELDS.get(kind)
    if needed is None:
        return Rejection("bad_command", f"unknown command {kind!r}; known: {sorted(_FIELDS)}")
    if not isinstance(body, dict) or (missing := [f for f in needed if f not in body]):
        return Rejection(
            "bad_command", f"{kind}: missing {missing if isinstance(body, dict) else needed}"
        )
    return Command(kind, str(body["customer_id"]), body)


async def send_command(w: Worker, name: str, key: str, body: dict[str, Any]) -> None:
    await w.interactions_topic.send(
        key=key, value=orjson.dumps(body), headers=[(COMMAND_HEADER, name.encode())]
    )


def _remember_forgotten(w: Worker, customer_id: str, at: float) -> None:
    w.forgotten_at[customer_id] = at
    if len(w.forgotten_at) > _FORGET_MEMORY_MAX:
        for cid in [c for c, t in w.forgotten_at.items() if at - t > _FORGET_MEMORY_S]:
            del w.forgotten_at[cid]


async def run_command(w: Worker, batch: Batch, command: Command, kafka_ts: float) -> None:
    cid = command.customer_id
    if command.name == "forget":
        await forget(w, cid)
        batch.drop(cid)
        _remember_forgotten(w, cid, kafka_ts)
    elif command.name == "handover":  # we hold the session: send what it taught
        session = command.body["session_id"]
        if session in batch.latest or w.customers.get(session) is not None:
            state = batch.model(session).to_state()
            await send_command(w, "merge", cid, {**command.body, "state": state})
        await forget(w, session, count=False)
        batch.drop(session)
    elif command.name == "merge":  # we hold the customer: take the session in
        if w.forgotten_at.get(cid, float("-inf")) >= float(command.body["asked_at"]):
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


async def forget(w: Worker, customer_id: str, count: bool = True) -> None:
    """Delete the customer's model and open questions; the table deletes are tombstones in
    the changelogs, so every replica and every future recovery forgets them too."""
    await w.changelogs_known()
    for table in (w.customers, w.questions):
        if table.get(customer_id) is not None:
            del table[customer_id]
    if count:
        metrics.FORGOTTEN.inc()
