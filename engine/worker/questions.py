"""The question/answer join's clock: unanswered questions become no's.

An impression opens a question in the customer's state; `remember` keeps the `questions`
table to the customers with open questions and when the first expires; the `close` timer
learns the no's of customers who never came back (their next event would learn them too).
"""

from __future__ import annotations

import time

from engine.wire import metrics
from engine.worker.app import Worker
from models.context import Context
from models.customer import CustomerModel


def remember(w: Worker, customer_id: str, model: CustomerModel, ctx: Context) -> None:
    """Keep `questions` to the customers with open questions, due when the first expires."""
    if model.pending:
        due = min(model.pending.values()) + w.settings.answer_window_s
        w.questions[customer_id] = {"due": due, "context": ctx.as_json()}
    elif w.questions.get(customer_id) is not None:
        del w.questions[customer_id]


async def close(w: Worker) -> None:
    """Questions nobody answered within the window are no's."""
    now = time.time()
    due = [cid for cid, q in list(w.questions.items()) if q and q["due"] <= now]
    if not due:
        return
    await w.changelogs_known()
    for cid in due:
        model = CustomerModel.from_state(w.customers.get(cid))
        ctx = Context(**w.questions[cid]["context"])
        for _ in w.learner.expire(model, ctx, now):
            metrics.ANSWERS.labels("no", "window", w.decider(cid)[0]).inc()
        w.customers[cid] = model.to_state()
        remember(w, cid, model, ctx)


def install(w: Worker) -> None:
    interval = max(1.0, min(60.0, w.settings.answer_window_s / 4))

    @w.app.timer(interval, name="tailor.close_questions")
    async def close_questions() -> None:
        await close(w)
