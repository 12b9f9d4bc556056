"""The question/answer join's clock: unanswered questions become no's; idle customers go.

An impression opens a question in the customer's state; `remember` keeps the `questions`
table to the customers with open questions and when the first expires. The `close` timer
sends an `expire` command to each due customer's own partition, so the no's are learned
by the agent that owns their state, in order with their events (a timer writing the
state itself would race the agent, and a standby copy must never be written back).
The `sweep` timer forgets idle anonymous sessions (TAILOR_SESSION_TTL_S) and, if set,
idle known customers (TAILOR_CUSTOMER_TTL_S) the same way, by a conditional `forget`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from engine.worker.app import Worker
from engine.worker.commands import command
from models.context import Context
from models.customer import CustomerModel

SWEEP_EVERY_S = 600.0


def due_of(w: Worker, pending: Mapping[str, float]) -> float | None:
    """When the first of these open questions expires, if there is one."""
    return min(pending.values()) + w.settings.answer_window_s if pending else None


def remember(
    w: Worker,
    customer_id: str,
    model: CustomerModel,
    ctx: Context,
    pending_before: Mapping[str, float],
    lags: Mapping[str, float],
) -> None:
    """Keep `questions` to the customers with open questions, due when the first expires.

    Written only when that time changed from what the table holds (it was written from
    `pending_before`), so the context kept is the one in which the first open question
    was asked, and a batch of impressions does not rewrite every customer's entry.
    `due` is in event time; `lag` (how far behind their events arrive) turns it into the
    timer's: a backfill's questions stay open while its answers are still arriving."""
    due = due_of(w, model.pending)
    if due == due_of(w, pending_before):
        return
    if due is not None:
        lag = lags.get(customer_id)
        if lag is None:  # re-filed by a command: the lag its last events had
            lag = float((w.questions.get(customer_id) or {}).get("lag", 0.0))
        w.questions[customer_id] = {"due": due, "lag": lag, "context": ctx.as_json()}
    elif w.questions.get(customer_id) is not None:
        del w.questions[customer_id]


async def close(w: Worker) -> None:
    """Questions nobody answered within the window are no's: ask their owners to learn them."""
    now = time.time()
    due = [
        (cid, q)
        for cid, q in list(w.questions.items())
        if q and q["due"] + q.get("lag", 0.0) <= now
    ]
    for cid, q in due:
        body = {"customer_id": cid, "context": q["context"], "due": q["due"]}
        body["lag"] = q.get("lag", 0.0)
        await w.send(command(w, "expire", cid, body))
    await w.durable()


async def sweep(w: Worker) -> None:
    """Forget customers idle past their time to live (anonymous sessions by default)."""
    session_ttl, customer_ttl = w.settings.session_ttl_s, w.settings.customer_ttl_s
    if session_ttl is None and customer_ttl is None:
        return
    now = time.time()
    for cid, state in list(w.customers.items()):
        ttl = session_ttl if cid.startswith("anon-") else customer_ttl
        last = (state or {}).get("t")
        if ttl is None or last is None or now - float(last) <= ttl:
            continue
        await w.send(command(w, "forget", cid, {"customer_id": cid, "if_idle_since": last}))
    await w.durable()


def install(w: Worker) -> None:
    interval = max(1.0, min(60.0, w.settings.answer_window_s / 4))
    w.app.timer(interval, name="tailor.close_questions")(
        w.health.guarded("close_questions", lambda: close(w))
    )
    w.app.timer(SWEEP_EVERY_S, name="tailor.sweep_idle")(
        w.health.guarded("sweep_idle", lambda: sweep(w))
    )
