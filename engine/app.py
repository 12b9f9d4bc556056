"""The Faust app: topics and tables, declared once. Agents live in `interactions` and `stores`.

Data flow:
    tailor.interactions (key customer) ─► interactions.learn ─► Redis tailor:offers:{customer}
        │                                   ├─► tailor.decisions   (audit, off-policy evaluation)
        │                                   ├─► tailor.dead-letter (bad events, with reason)
        │                                   └─► tailor.store-answers (key store) ─► stores.trend
    tailor.store-context (key store) ─────────────────────────────────────────────► stores.context
    stores.* ─► Redis tailor:board:{store}
"""

from __future__ import annotations

import logging
import random

import faust
from faust.sensors.prometheus import setup_prometheus_sensors

from config.catalog import load_catalog
from config.settings import get_settings
from engine.serving import Serving
from engine.topics import DEAD_LETTER, DECISIONS, INTERACTIONS, STORE_ANSWERS, STORE_CONTEXT
from models.policy import PolicyConfig

settings = get_settings()
catalog = load_catalog(settings.catalog)
policy = PolicyConfig(k=settings.offers_per_decision, explore_rate=settings.explore_rate)
rng = random.Random(settings.seed)
log = logging.getLogger("tailor.worker")

app = faust.App(
    settings.app_id,
    broker=f"kafka://{settings.kafka}",
    store="memory://",
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

# Values are raw bytes: the agents validate them, and a bad one reaches the dead-letter
# topic byte for byte.
interactions_topic = app.topic(
    INTERACTIONS,
    key_type=str,
    key_serializer="raw",
    value_serializer="raw",
    partitions=settings.interactions_partitions,
)
store_answers_topic = app.topic(
    STORE_ANSWERS,
    key_type=str,
    key_serializer="raw",
    value_serializer="raw",
    partitions=settings.store_partitions,
)
store_context_topic = app.topic(
    STORE_CONTEXT,
    key_type=str,
    key_serializer="raw",
    value_serializer="raw",
    partitions=settings.store_partitions,
)
decisions_topic = app.topic(DECISIONS, key_type=str, key_serializer="raw", value_serializer="raw")
dead_letter_topic = app.topic(
    DEAD_LETTER, key_type=str, key_serializer="raw", value_serializer="raw"
)

# Customer models, co-partitioned with tailor.interactions. `use_partitioner` puts each
# changelog record in its key's partition even when a batch spans partitions.
state_schema: faust.Schema[str, dict] = faust.Schema(  # type: ignore[type-arg]
    key_type=str, key_serializer="raw", value_serializer="json"
)
customers = app.Table(
    "customers",
    default=None,
    schema=state_schema,
    partitions=settings.interactions_partitions,
    use_partitioner=True,
)
# Store state (trending and latest context), small and read by every customer decision,
# so every worker keeps all of it.
stores = app.GlobalTable(
    "stores",
    default=None,
    schema=state_schema,
    partitions=settings.store_partitions,
    use_partitioner=True,
)

_serving: Serving | None = None


def serving() -> Serving:
    """The worker's Redis client, created on first use inside the running event loop."""
    global _serving
    if _serving is None:
        _serving = Serving.from_url(settings.redis, settings.offers_ttl_s, settings.board_ttl_s)
    return _serving
