"""One crowd for every worker: each sends its answers to one owner, every one reads back
the model the owner learns.

Stream stage: each batch's crowd lessons (`models.shared.Lesson`, what `Learner.answer`
would have taught a local crowd) ─► tailor.crowd-lessons (one partition) ─► the worker
that owns it learns them in order ─► Redis tailor:crowd:{app id} (the model, with the
lessons offset it covers) ─► every worker's `refresh` timer puts it in its learners.

So every worker decides with the same crowd, a worker's restart or a deploy keeps it
(holdout lift is not reset by them), and the owner's takeover restores it from Redis.
The owner writes its snapshot before its batch is acknowledged and skips lessons at or
below the offset the snapshot covers, so a lesson is learned once through crashes.
A decision sees the crowd of a few seconds ago (`REFRESH_S`); the customer's own model
still learns at once.
"""

from __future__ import annotations

import functools
import logging
import time
from typing import Any

import faust
import orjson

from engine.wire import metrics
from engine.wire.topics import CROWD_LESSONS
from engine.worker.app import Worker
from engine.worker.batch import Outgoing
from engine.worker.sequence import Sequencer, watch
from models.context import Context, daypart_at
from models.offer import DAYPARTS
from models.shared import Lesson, SharedModel

log = logging.getLogger("tailor.crowd")

REFRESH_S = 2.0  # how often every worker looks for a newer crowd
OWNER_BATCH_S = 1.0  # the owner's batches (each ends with a snapshot written)
LESSONS_PER_RECORD = 2_000  # keeps a record far below Kafka's message size limit


def lessons_out(w: Worker) -> list[Outgoing]:
    """The records carrying what the batch taught the crowd."""
    lessons = [lesson.as_json() for lesson in w.learner.take_lessons()]
    return [
        Outgoing(w.crowd_topic, None, orjson.dumps(lessons[i : i + LESSONS_PER_RECORD]))
        for i in range(0, len(lessons), LESSONS_PER_RECORD)
    ]


def install(w: Worker) -> None:
    sequencer = Sequencer("tailor.crowd", lambda: w.app.rebalancing)
    owned: dict[str, Any] = {"generation": -1, "model": None, "covered": -1}

    @w.app.agent(w.crowd_topic, name="tailor.crowd")
    async def learn_crowd(stream: faust.StreamT[bytes]) -> None:
        """The owner of tailor.crowd-lessons' one partition learns every worker's lessons."""
        batches = stream.take_events(w.settings.batch_size * 4, within=OWNER_BATCH_S)  # type: ignore[attr-defined]
        async for events in batches:
            generation = w.app.rebalancing_count
            events[:] = await sequencer.admit(w.app.consumer, generation, events)
            if owned["generation"] != generation:  # taken over: start from the snapshot
                state = await w.health.retry("redis", lambda: w.serving().crowd(w.settings.app_id))
                owned.update(
                    generation=generation,
                    model=SharedModel.from_state(state),
                    covered=int((state or {}).get("o", -1)),
                )
            model: SharedModel = owned["model"]
            learned = 0
            for event in events:
                if event.message.offset <= owned["covered"]:
                    metrics.DUPLICATES.labels("crowd_lessons").inc()
                    continue
                try:
                    for raw in orjson.loads(event.value):
                        lesson = Lesson.from_json(raw)
                        offer = w.catalog.offers.get(lesson.offer_id)
                        if offer is not None:
                            model.learn_lesson(offer, lesson)
                            learned += 1
                except Exception:  # written by workers; a bad one must not stop the crowd
                    log.exception("unreadable crowd lessons at %d", event.message.offset)
                owned["covered"] = event.message.offset
            if learned:
                await w.health.retry("redis", functools.partial(publish, model, owned["covered"]))
            sequencer.done()

    watch(w.app, w.health, sequencer, CROWD_LESSONS)  # a dropped last lesson, a stall

    async def publish(model: SharedModel, covered: int) -> None:
        state = {**model.to_state(), "o": covered}
        await w.serving().write_crowd(w.settings.app_id, state, model.answers)

    loaded: dict[str, int | None] = {"version": None}

    async def refresh() -> None:
        """Decide with the owner's latest crowd (every worker, the owner too)."""
        serving, app_id = w.serving(), w.settings.app_id
        # Through an outage this waits (and /ready says why), rather than fail every tick.
        version = await w.health.retry("redis", lambda: serving.crowd_version(app_id))
        if version is None or version == loaded["version"]:
            return
        crowd = SharedModel.from_state(await w.health.retry("redis", lambda: serving.crowd(app_id)))
        w.learner.use_crowd(crowd)
        loaded["version"] = version
        metrics.CROWD_ANSWERS.set(crowd.answers)

    w.app.timer(REFRESH_S, name="tailor.refresh_crowd")(w.health.guarded("refresh_crowd", refresh))

    @w.app.page("/crowd")
    async def crowd_page(web: faust.web.View, request: faust.web.Request) -> faust.web.Response:
        """What the crowd this worker decides with predicts, P(yes) of every offer in the
        context asked (?daypart=&store_id=&channel=&weather=), beside its answer count and
        snapshot version: workers reading one crowd answer the same."""
        q = request.query
        daypart = q.get("daypart") or daypart_at(time.time())
        if daypart not in DAYPARTS:
            return web.json({"error": f"daypart must be one of {', '.join(DAYPARTS)}"}, status=400)
        ctx = Context(
            daypart, weather=q.get("weather"), channel=q.get("channel"), store_id=q.get("store_id")
        )
        shared = w.learner.shared
        p_yes = {o.offer_id: shared.predict_one(o, ctx, 0.0) for o in w.catalog.offers.values()}
        return web.json({"answers": shared.answers, "version": loaded["version"], "p_yes": p_yes})
