"""Dead letters: a refused record goes to `tailor.dead-letter` byte for byte, reason in headers.

Headers follow Kafka Connect's habit of carrying the error beside the untouched payload:
`tailor.reason` (a short code), `tailor.detail` (what was expected and what arrived),
`tailor.source` (topic/partition/offset it came from). A payload too large to resend is
cut to `TAILOR_DEAD_LETTER_MAX_BYTES`, with `tailor.truncated`, `tailor.length` (its
size) and `tailor.sha256` (its digest) so it can still be found and matched; a key that
is not text keeps its bytes, one over 1 KiB is replaced by `tailor.key_sha256`.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from faust.types import EventT

from engine.wire import metrics
from engine.wire.events import REASONS, Rejection
from engine.worker.batch import Outgoing

log = logging.getLogger("tailor.dead_letter")
MAX_KEY_BYTES = 1024

for _reason in REASONS:  # every series from 0, so a rate or increase() sees the first one
    metrics.DEAD_LETTERS.labels(_reason)


def dead_letter_record(w: Any, event: EventT[bytes], rejection: Rejection) -> Outgoing:
    """The dead letter of a refused record, to send with the batch's other records."""
    msg = event.message
    source = f"{msg.topic}/{msg.partition}/{msg.offset}"
    value = bytes(msg.value or b"")
    headers = [
        ("tailor.reason", rejection.reason.encode()),
        ("tailor.detail", rejection.detail.encode()[:2000]),
        ("tailor.source", source.encode()),
    ]
    limit = w.settings.dead_letter_max_bytes
    if len(value) > limit:
        headers += [
            ("tailor.truncated", b"1"),
            ("tailor.length", str(len(value)).encode()),
            ("tailor.sha256", hashlib.sha256(value).hexdigest().encode()),
        ]
        value = value[:limit]
    key = msg.key if isinstance(msg.key, bytes) else None
    if key is not None and len(key) > MAX_KEY_BYTES:  # kept by its digest instead
        headers += [
            ("tailor.key_length", str(len(key)).encode()),
            ("tailor.key_sha256", hashlib.sha256(key).hexdigest().encode()),
        ]
        key = None
    metrics.DEAD_LETTERS.labels(rejection.reason).inc()
    log.warning("dead letter from %s: %s: %s", source, rejection.reason, rejection.detail[:300])
    return Outgoing(w.dead_letter_topic, key, value, headers)
