"""The Faust app: topics and tables, declared once. Agents live in `interactions` and `stores`.

Data flow:
    tailor.interactions (key customer) ─► interactions.learn ─► Redis tailor:offers:{customer}
        │                                   ├─► tailor.decisions   (audit, off-policy evaluation)
        │                                   ├─► tailor.dead-letter (bad events, with reason)
        │                                   └─► tailor.store-answers (key store) ─► stores.trend
    tailor.store-context (key store) ─────────────────────────────────────────────► stores.context
    stores.* ─► Redis tailor:board:{store} and tailor:store:{store} (trending + context snapshot)

Commands ride tailor.interactions too, on the customer's partition so they are ordered with
its events (header `tailor.command`): `forget` (from the API's DELETE), `handover` and
`merge` (a login that names its anonymous session).
"""

from __future__ import annotations

import logging
import random

import faust
from faust.sensors.prometheus import setup_prometheus_sensors
from faust.types import TableT

from config.catalog import load_catalog
from config.settings import get_settings
from engine.serving import Serving
from engine.topics import DEAD_LETTER, DECISIONS, INTERACTIONS, STORE_ANSWERS, STORE_CONTEXT
from models.decision import CONTROL
from models.holdout import Group, group_of
from models.learner import Learner, LearnerConfig
from models.policy import PolicyConfig

settings = get_settings()
catalog = load_catalog(settings.catalog)
# The worker's brain. Its shared model learns from this worker's partitions and lives in
# memory: after a restart it relearns, starting again from the menu's prior.
_policy = PolicyConfig(
    k=settings.offers_per_decision,
    explore_rate=settings.explore_rate,
    value=settings.value,
    frequency_cap=settings.frequency_cap,
)
learner = Learner(catalog, LearnerConfig(answer_window_s=settings.answer_window_s, policy=_policy))
# The holdout's policy: the menu prior and trending, nothing learned. Its customers' answers
# still teach `learner`; only what they are shown differs.
control = Learner(
    catalog,
    LearnerConfig(personal=False, shared=False, name=CONTROL, policy=_policy),
)


def decider(customer_id: str) -> tuple[Group, Learner]:
    """Which policy decides for this customer (stable: a hash of the id)."""
    group = group_of(customer_id, settings.holdout_share)
    return group, control if group == "control" else learner


rng = random.Random(settings.seed)
log = logging.getLogger("tailor.worker")

_datadir = settings.state_dir / "faust" / settings.app_id  # not the working directory
_datadir.mkdir(parents=True, exist_ok=True)

app = faust.App(
    settings.app_id,
    broker=f"kafka://{settings.kafka}",
    store="memory://",
    datadir=str(_datadir),
    autodiscover=False,
    topic_partitions=settings.interactions_partitions,
    topic_replication_factor=1,
    consumer_auto_offset_reset="earliest",
    web_host="127.0.0.1",
    web_bind="127.0.0.1",
    web_port=settings.worker_web_port,
    web_in_thread=False,
    producer_linger_ms=5,
)
setup_prometheus_sensors(app, pattern="/metrics", name_prefix="tailor_faust")


def _raw_topic(name: str, partitions: int | None = None) -> faust.TopicT:
    """Keys and values as raw bytes: agents validate values themselves, so a bad one
    reaches the dead-letter topic byte for byte."""
    return app.topic(
        name, key_type=str, key_serializer="raw", value_serializer="raw", partitions=partitions
    )


interactions_topic = _raw_topic(INTERACTIONS, settings.interactions_partitions)
store_answers_topic = _raw_topic(STORE_ANSWERS, settings.store_partitions)
store_context_topic = _raw_topic(STORE_CONTEXT, settings.store_partitions)
decisions_topic = _raw_topic(DECISIONS)
dead_letter_topic = _raw_topic(DEAD_LETTER)

# Customer models, co-partitioned with tailor.interactions. `use_partitioner` puts each
# changelog record in its key's partition even when a batch spans partitions.
state_schema: faust.Schema[str, dict] = faust.Schema(  # type: ignore[type-arg]
    key_type=str, key_serializer="raw", value_serializer="json"
)


def _state_table(name: str, partitions: int) -> TableT:  # type: ignore[type-arg]
    """JSON state by string key. `use_partitioner` puts each changelog record in its key's
    partition even when a batch spans partitions."""
    return app.Table(
        name, default=None, schema=state_schema, partitions=partitions, use_partitioner=True
    )


customers = _state_table("customers", settings.interactions_partitions)
# Customers with open questions: when their answer window ends and the context they were
# asked in. A timer in `interactions` turns each expired question into a no. (Faust's
# windowed tables would do, but their on_window_close bookkeeping is unreliable.)
questions = _state_table("questions", settings.interactions_partitions)
# Store state (trending and latest context), co-partitioned with the store topics. Its
# snapshot goes to Redis beside the board, where customer decisions on any worker read it
# (a GlobalTable would do, but misses its changelog when it is created at startup).
stores = _state_table("stores", settings.store_partitions)


async def changelogs_known() -> None:
    """Make sure the producer has metadata for every changelog; call before table writes.

    With `use_partitioner`, a table write asks the producer for its key's partition from
    cached metadata, without waiting; a changelog topic created at this start may not be
    in that cache yet, and the write would crash its agent. Once known, this returns at once.
    """
    producer = app.producer._ensure_producer()  # type: ignore[attr-defined]
    for table in (customers, questions, stores):
        await producer.partitions_for(table.changelog_topic.get_topic_name())


_serving: Serving | None = None


def serving() -> Serving:
    """The worker's Redis client, created on first use inside the running event loop."""
    global _serving
    if _serving is None:
        _serving = Serving.from_url(settings.redis, settings.offers_ttl_s, settings.board_ttl_s)
    return _serving


@app.page("/ready")
async def ready(web: faust.web.View, request: faust.web.Request) -> faust.web.Response:
    """Readiness: partitions assigned and tables recovered (a Kubernetes readiness probe).

    An event sent before this answers 200 may wait for a rebalance; one sent after is
    consumed at once.
    """
    recovered = app.tables.recovery.completed.is_set()  # type: ignore[attr-defined]
    is_ready = recovered and not app.rebalancing and not app.in_recovery
    body = {"ready": is_ready, "recovered": recovered, "rebalancing": bool(app.rebalancing)}
    return web.json(body, status=200 if is_ready else 503)
