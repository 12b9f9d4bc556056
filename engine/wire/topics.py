"""Kafka topic names, in one place, and their creation with the right partition counts.

Any process may be first to touch a topic; creating them explicitly keeps a broker's
auto-creation (one partition) from fixing a topic's partition count by accident.
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
    }


def changelogs(settings: Settings) -> dict[str, int]:
    """The worker's table changelogs, named as Faust names them, co-partitioned with the
    topics their tables are keyed like."""
    return {
        f"{settings.app_id}-customers-changelog": settings.interactions_partitions,
        f"{settings.app_id}-questions-changelog": settings.interactions_partitions,
        f"{settings.app_id}-stores-changelog": settings.store_partitions,
    }


async def ensure_topics(settings: Settings, with_changelogs: bool = False) -> None:
    """Create whatever is missing. The worker passes `with_changelogs`: created by Faust
    at start instead, a changelog is briefly unknown to its producer and a first table
    write in that window crashes its agent."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(name, num_partitions=n, replication_factor=1)
            for name, n in partitions(settings).items()
            if name not in existing
        ]
        if with_changelogs:
            missing += [
                NewTopic(
                    name,
                    num_partitions=n,
                    replication_factor=1,
                    topic_configs={"cleanup.policy": "compact"},
                )
                for name, n in changelogs(settings).items()
                if name not in existing
            ]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):  # another process won the race
                await admin.create_topics(missing)
            log.info("created topics %s", ", ".join(t.name for t in missing))
    finally:
        await admin.close()
