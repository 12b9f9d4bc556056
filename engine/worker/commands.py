"""Commands: records of tailor.interactions that are instructions, not events.

A command carries the header `tailor.command` and rides its owner's partition, so it
applies after every event sent before it: `forget` (the API's DELETE, or an idle
expiry), `handover` (a login asks the session's worker for what the session taught),
`merge` (the answer, keyed by the customer, taken into their model) and `expire` (the
questions timer: unanswered questions become no's, in order with the customer's events).
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
from engine.worker.batch import Batch, Outgoing
from models.context import Context
from models.customer import CustomerModel

_FORGET_MEMORY_S = 86400.0
_FORGET_MEMORY_MAX = 100_000

_FIELDS = {
    "forget": ("customer_id",),
    "handover": ("customer_id", "session_id", "context", "asked_at"),
    "merge": ("customer_id", "session_id", "context", "asked_at"),
    "expire": ("customer_id",),
}


@dataclass(frozen=True, slots=True)
class Command:
    """An instruction on tailor.interactions."""

    name: str
    customer_id: str
    body: dict[str, Any]

    @property
    def owner(self) -> str:
        """Whose state it changes, the key it was sent with: a handover goes to the session."""
        return str(self.body["session_id"]) if self.name == "handover" else self.customer_id

    @property
    def identity(self) -> str | None:
        """What makes a resent merge the same merge (it is dedupe'd like an event_id)."""
        if self.name == "merge":
            return f"merge:{self.body['session_id']}:{self.body['asked_at']}"
        return None


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


def command(w: Worker, name: str, key: str, body: dict[str, Any]) -> Outgoing:
    """A command record for `key`'s partition of tailor.interactions."""
    return Outgoing(
        w.interactions_topic, key, orjson.dumps(body), [(COMMAND_HEADER, name.encode())]
    )


def _remember_forgotten(w: Worker, customer_id: str, at: float) -> None:
    w.forgotten_at[customer_id] = at
    if len(w.forgotten_at) > _FORGET_MEMORY_MAX:
        for cid in [c for c, t in w.forgotten_at.items() if at - t > _FORGET_MEMORY_S]:
            del w.forgotten_at[cid]


def run_command(w: Worker, batch: Batch, cmd: Command, model: CustomerModel, at: float) -> None:
    """Apply a command to its owner's `model` (in memory; the batch writes it back)."""
    cid = cmd.customer_id
    if cmd.name == "forget":
        idle_since = cmd.body.get("if_idle_since")
        if idle_since is not None and (model.last_seen or 0.0) > float(idle_since):
            return  # an idle expiry, but the customer came back since: keep them
        forget(w, batch, cid)
        _remember_forgotten(w, cid, at)
    elif cmd.name == "handover":  # we hold the session: send what it taught
        session = cmd.owner
        if model.answers or model.pending or model.unanswered:
            batch.sends.append(command(w, "merge", cid, {**cmd.body, "state": model.to_state()}))
        forget(w, batch, session, count=False)
    elif cmd.name == "merge":  # we hold the customer: take the session in
        if w.forgotten_at.get(cid, float("-inf")) >= float(cmd.body["asked_at"]):
            return  # the customer asked to be forgotten after this login: stay forgotten
        model.merge(CustomerModel.from_state(cmd.body.get("state")))
        metrics.SESSIONS_MERGED.inc()
        ctx, event_id = batch.latest.get(cid, (Context(**cmd.body["context"]), None))
        batch.touch(cid, ctx, event_id, at)  # a newer event of this batch keeps its context
    elif cmd.name == "expire":  # the questions timer: unanswered questions are no's now
        ctx = Context(**cmd.body.get("context") or {"daypart": "lunch"})
        # In the customer's event time: the timer's clock less how late their events come.
        for _ in w.learner.expire(model, ctx, at - float(cmd.body.get("lag") or 0.0)):
            metrics.ANSWERS.labels("no", "window", w.decider(cid)[0]).inc()
        batch.touch(cid, ctx, None, at)  # decided for again, and its questions re-filed


def forget(w: Worker, batch: Batch, customer_id: str, count: bool = True) -> None:
    """Delete the customer's model and open questions. The table deletes are tombstones in
    the changelogs, so every replica and every future recovery forgets them too."""
    batch.drop(customer_id)
    for table in (w.customers, w.questions):
        if table.get(customer_id) is not None:
            del table[customer_id]
    if count:
        metrics.FORGOTTEN.inc()
