"""Dead letters: a refused record goes to `tailor.dead-letter` byte for byte, reason in headers.

Headers follow Kafka Connect's habit of carrying the error beside the untouched payload:
`tailor.reason` (a short code), `tailor.detail` (what was expected and what arrived),
`tailor.source` (topic/partition/offset it came from).
"""

from __future__ import annotations

import logging
from typing import Any

from faust.types import EventT

from engine.wire import metrics
from engine.wire.events import Rejection

log = logging.getLogger("tailor.dead_letter")


async def dead_letter(topic: Any, event: EventT[bytes], rejection: Rejection) -> None:
    """Send the record to the dead-letter `topic` with why it was refused."""
    msg = event.message
    source = f"{msg.topic}/{msg.partition}/{msg.offset}"
    await topic.send(
        key=msg.key if isinstance(msg.key, bytes | str) else None,
        value=msg.value,
        headers=[
            ("tailor.reason", rejection.reason.encode()),
            ("tailor.detail", rejection.detail.encode()),
            ("tailor.source", source.encode()),
        ],
    )
    metrics.DEAD_LETTERS.labels(rejection.reason).inc()
    log.warning("dead letter from %s: %s: %s", source, rejection.reason, rejection.detail)
