"""The Faust app, its topics and tables, declared once, built from settings by `build`.

Nothing happens at import: `build(settings)` makes the app, the brain and the clients,
then installs the agents and timers of `interactions`, `questions` and `stores`.
"""

from __future__ import annotations

import random
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import faust
from faust.sensors.prometheus import setup_prometheus_sensors
from faust.types import FutureMessage

from config.catalog import load_catalog
from config.settings import Settings
from engine.wire.serving import Serving
from engine.wire.topics import (
    CROWD_LESSONS,
    DEAD_LETTER,
    DECISIONS,
    INTERACTIONS,
    STORE_ANSWERS,
    STORE_CONTEXT,
)
from engine.worker.batch import Outgoing, Stream
from engine.worker.changelog import InFlight, Table
from engine.worker.health import Health, ready
from models.customer import CustomerModel
from models.decision import CONTROL
from models.holdout import Group, group_of
from models.learner import Learner, LearnerConfig
from models.offer import Catalog


@dataclass
class Worker:
    """Everything a worker process wires together; agents receive it, not globals."""

    settings: Settings
    catalog: Catalog
    app: Any  # faust.App
    learner: Learner
    control: Learner  # the holdout's policy: the menu prior and trending, nothing learned
    rng: random.Random
    interactions_topic: Any
    store_answers_topic: Any
    store_context_topic: Any
    decisions_topic: Any
    dead_letter_topic: Any
    crowd_topic: Any  # lessons for the one crowd (`crowd`)
    customers: Any  # customer models, co-partitioned with tailor.interactions
    questions: Any  # customers with open questions: when the first expires, in what context
    stores: Any  # trending and latest context per store, co-partitioned with the store topics
    health: Health
    # When each customer was forgotten here (arrival time), so a merge produced before the
    # forget but arriving after it cannot bring them back. Bounded by `commands`.
    forgotten_at: dict[str, float] = field(default_factory=dict)
    # Live models of recently seen customers, decoded once: the table stays the truth (each
    # batch writes back what changed), this only saves decoding.
    live: OrderedDict[str, CustomerModel] = field(default_factory=OrderedDict)
    live_generation: int = 0  # the rebalance the live models belong to
    in_flight: InFlight = field(init=False)  # what was sent and is not yet in Kafka
    _serving: Serving | None = None

    def __post_init__(self) -> None:
        self.in_flight = InFlight(self.health, (self.customers, self.questions, self.stores))

    def live_models(self) -> OrderedDict[str, CustomerModel]:
        """The live models, none kept across a rebalance: a partition that comes back may
        have been changed by another worker meanwhile."""
        if self.app.rebalancing_count != self.live_generation:
            self.live.clear()
            self.live_generation = self.app.rebalancing_count
        return self.live

    def keep_live(self, models: dict[str, CustomerModel], gone: set[str], generation: int) -> None:
        """Remember these models as the latest, forget `gone`, evict the least recent. A
        batch that began before the latest rebalance (or during one) keeps nothing."""
        if generation != self.app.rebalancing_count:
            return
        for cid in gone:
            self.live.pop(cid, None)
        for cid, model in models.items():
            self.live[cid] = model
            self.live.move_to_end(cid)
        while len(self.live) > self.settings.live_customers:
            self.live.popitem(last=False)

    def decider(self, customer_id: str) -> tuple[Group, Learner]:
        """Which policy decides for this customer (stable: a hash of the id)."""
        group = group_of(customer_id, self.settings.holdout_share)
        return group, self.control if group == "control" else self.learner

    def serving(self) -> Serving:
        """The worker's Redis client, created on first use inside the running event loop."""
        if self._serving is None:
            s = self.settings
            self._serving = Serving.from_url(s.redis, s.offers_ttl_s, s.board_ttl_s)
        return self._serving

    async def send(self, out: Outgoing) -> FutureMessage:
        """Send one record, retried through a broker outage; `durable` waits for it."""
        fut: FutureMessage = await self.health.retry(
            "kafka", lambda: out.topic.send(key=out.key, value=out.value, headers=out.headers)
        )
        self.in_flight.add(fut, lambda: self.send(out))
        return fut

    async def durable(self) -> None:
        """Return once every record sent so far, changelogs included, is in Kafka: call it
        before a batch ends, so nothing is acknowledged before its effects are durable."""
        await self.in_flight.settle()

    async def changelogs_known(self) -> None:
        """Make sure the producer has metadata for every changelog; call before table writes.

        With `use_partitioner`, a table write asks the producer for its key's partition
        from cached metadata, without waiting; a changelog topic created at this start may
        not be in that cache yet, and the write would crash its agent. Once known, this
        returns at once.
        """
        producer = self.app.producer._ensure_producer()
        for table in (self.customers, self.questions, self.stores):
            await producer.partitions_for(table.changelog_topic.get_topic_name())


def build(settings: Settings) -> Worker:
    """The worker's Faust app with its topics, tables, agents and timers."""
    from engine.worker import crowd, interactions, questions, stores  # they install onto the app

    catalog = load_catalog(settings.catalog)
    policy = settings.policy
    # The crowd is learned by one owner from every worker's lessons (`crowd`); this
    # learner keeps its lessons for it and decides with the crowd read back from Redis.
    learner = Learner(
        catalog,
        LearnerConfig(
            answer_window_s=settings.answer_window_s, policy=policy, crowd_learns_here=False
        ),
    )
    # The holdout's answers still teach `learner`; only what they are shown differs.
    control = Learner(
        catalog, LearnerConfig(personal=False, shared=False, name=CONTROL, policy=policy)
    )

    datadir = settings.state_dir / "faust" / settings.app_id  # not the working directory
    datadir.mkdir(parents=True, exist_ok=True)
    session_s = settings.session_timeout_s
    app = faust.App(
        settings.app_id,
        broker=f"kafka://{settings.kafka}",
        # RocksDB: a restart recovers from local disk plus the changelog's tail, and state
        # lives on disk, not all in RAM.
        store=f"{settings.table_store}://",
        datadir=str(datadir),
        autodiscover=False,
        topic_partitions=settings.interactions_partitions,
        topic_replication_factor=settings.replication_factor,
        table_standby_replicas=settings.standby_replicas,
        # A dead worker's partitions move after `session_s`, not Kafka's default 45-60 s;
        # with a stable worker id (static membership) a restart takes them straight back.
        broker_session_timeout=session_s,
        broker_heartbeat_interval=max(0.5, session_s / 4),
        consumer_group_instance_id=settings.worker_id,
        consumer_auto_offset_reset="earliest",
        web_host="127.0.0.1",
        web_bind=settings.worker_web_bind,
        web_port=settings.worker_web_port,
        web_in_thread=False,
        producer_linger_ms=5,
        Table=Table,  # keeps its changelog futures, for `Worker.durable`
        Stream=Stream,  # its take_events acknowledges only what it yielded
    )
    setup_prometheus_sensors(app, pattern="/metrics", name_prefix="tailor_faust")

    def raw_topic(name: str, partitions: int | None = None) -> Any:
        """Keys and values as raw bytes: agents validate values themselves, so a bad one
        reaches the dead-letter topic byte for byte."""
        return app.topic(
            name,
            key_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            partitions=partitions,
        )

    def state_table(name: str, partitions: int) -> Any:
        """JSON state by string key. `use_partitioner` puts each changelog record in its
        key's partition even when a batch spans partitions."""
        table: Any = app.Table(
            name, default=None, key_type=str, partitions=partitions, use_partitioner=True
        )
        # Faust serializes str keys as JSON ('"c-1"'), which the producer's partitioner
        # hashes to another partition than the record keyed b"c-1": a customer's state
        # would sit in a changelog partition its owner does not own, and be recovered
        # stale by whoever takes the partition over. Raw keys keep them co-partitioned.
        table.key_serializer = "raw"
        table.changelog_topic = table._new_changelog_topic()
        return table

    worker = Worker(
        settings=settings,
        catalog=catalog,
        app=app,
        learner=learner,
        control=control,
        rng=random.Random(settings.seed),
        interactions_topic=raw_topic(INTERACTIONS, settings.interactions_partitions),
        store_answers_topic=raw_topic(STORE_ANSWERS, settings.store_partitions),
        store_context_topic=raw_topic(STORE_CONTEXT, settings.store_partitions),
        decisions_topic=raw_topic(DECISIONS),
        dead_letter_topic=raw_topic(DEAD_LETTER),
        crowd_topic=raw_topic(CROWD_LESSONS, 1),
        customers=state_table("customers", settings.interactions_partitions),
        # Faust's windowed tables would do, but their on_window_close bookkeeping is
        # unreliable: a timer in `questions` walks this table instead.
        questions=state_table("questions", settings.interactions_partitions),
        # A GlobalTable would do, but misses its changelog when created at startup: the
        # snapshot goes to Redis, where customer decisions on any worker read it.
        stores=state_table("stores", settings.store_partitions),
        health=Health(settings.retry_max_s),
    )
    _install_ready_page(worker)

    interactions.install(worker)
    questions.install(worker)
    stores.install(worker)
    crowd.install(worker)
    return worker


def _install_ready_page(worker: Worker) -> None:
    app = worker.app

    @app.page("/ready")
    async def ready_page(web: faust.web.View, request: faust.web.Request) -> faust.web.Response:
        """Readiness (a Kubernetes readiness probe): 200 only while this worker serves fresh
        decisions; 503 with every reason it does not (recovering, rebalancing, Redis or
        Kafka failing or unreachable, an agent down, lagging past TAILOR_READY_MAX_LAG,
        records stalled)."""
        is_ready, body = await ready(
            app, worker.health, worker.settings.ready_max_lag, lambda: worker.serving().ping()
        )
        return web.json(body, status=200 if is_ready else 503)
