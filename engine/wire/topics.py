"""Kafka topic names, in one place, and their creation with the right partition counts.

Any process may be first to touch a topic; creating them explicitly keeps a broker's
auto-creation (one partition, the broker's replication) from fixing a topic's partition
count or durability by accident. Every topic created here, changelogs too, gets
`TAILOR_REPLICATION_FACTOR` replicas and `min.insync.replicas` =
`TAILOR_MIN_INSYNC_REPLICAS` (1 and 1 for the single local broker; 3 and 2 in production).
"""

from __future__ import annotations

import contextlib
import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from config.settings import Settings

INTERACTIONS = "tailor.interactions"
STORE_CONTEXT = "tailor.store-context"
DECISIONS = "tailor.decisions"
DEAD_LETTER = "tailor.dead-letter"
STORE_ANSWERS = "tailor.store-answers"  # yes-answers repartitioned by store, for trending
CROWD_LESSONS = "tailor.crowd-lessons"  # every worker's answers for the one crowd model
# A record of tailor.interactions with this header is a command (forget, handover, merge),
# not an event; commands ride the customer's partition so they are ordered with its events.
COMMAND_HEADER = "tailor.command"

log = logging.getLogger("tailor.topics")


def partitions(settings: Settings) -> dict[str, int]:
    return {
        INTERACTIONS: settings.interactions_partitions,
        STORE_CONTEXT: settings.store_partitions,
        STORE_ANSWERS: settings.store_partitions,
        DECISIONS: settings.interactions_partitions,
        DEAD_LETTER: 1,
        CROWD_LESSONS: 1,  # one partition: one owner learns the crowd, in order
    }


def changelogs(settings: Settings) -> dict[str, int]:
    """The worker's table changelogs, named as Faust names them, co-partitioned with the
    topics their tables are keyed like."""
    return {
        f"{settings.app_id}-customers-changelog": settings.interactions_partitions,
        f"{settings.app_id}-questions-changelog": settings.interactions_partitions,
        f"{settings.app_id}-stores-changelog": settings.store_partitions,
    }


def topic_configs(settings: Settings, *, compact: bool = False) -> dict[str, str]:
    """Per-topic configs of every topic Tailor creates: writes with acks=all need
    `min_insync_replicas` replicas, and changelogs are compacted (the latest value per key).

    >>> from config.settings import Settings
    >>> topic_configs(Settings(replication_factor=3, min_insync_replicas=2), compact=True)
    {'min.insync.replicas': '2', 'cleanup.policy': 'compact'}
    """
    configs = {"min.insync.replicas": str(settings.min_insync_replicas)}
    if compact:
        configs["cleanup.policy"] = "compact"
    return configs


def new_topics(
    settings: Settings, names: dict[str, int], *, compact: bool = False
) -> list[NewTopic]:
    """`NewTopic`s with the settings' replication factor and `topic_configs`."""
    if settings.min_insync_replicas > settings.replication_factor:
        raise ValueError(
            f"TAILOR_MIN_INSYNC_REPLICAS={settings.min_insync_replicas} is more than "
            f"TAILOR_REPLICATION_FACTOR={settings.replication_factor}: no write could ever "
            "reach that many replicas"
        )
    return [
        NewTopic(
            name,
            num_partitions=n,
            replication_factor=settings.replication_factor,
            topic_configs=topic_configs(settings, compact=compact),
        )
        for name, n in names.items()
    ]


async def ensure_topics(settings: Settings, with_changelogs: bool = False) -> None:
    """Create whatever is missing, replicated `settings.replication_factor` times with
    `min.insync.replicas` = `settings.min_insync_replicas` (existing topics are left as
    they are). The worker passes `with_changelogs`: created by Faust at start instead, a
    changelog is briefly unknown to its producer and a first table write in that window
    crashes its agent."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka)
    try:
        await admin.start()  # inside the try: a failed start must not leak the client
        existing = set(await admin.list_topics())
        wanted = {n: p for n, p in partitions(settings).items() if n not in existing}
        missing = new_topics(settings, wanted)
        if with_changelogs:
            logs = {n: p for n, p in changelogs(settings).items() if n not in existing}
            missing += new_topics(settings, logs, compact=True)
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):  # another process won the race
                await admin.create_topics(missing)
            log.info("created topics %s", ", ".join(t.name for t in missing))
    finally:
        await admin.close()
