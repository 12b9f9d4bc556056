"""The API's way into Kafka: every write is acknowledged by the broker within a bound, or
answered 503 at once.

aiokafka's own waits are long (metadata, a full batch, delivery: `request_timeout_ms`, 40 s
by default), so every send and every health probe here is cut by `asyncio.wait_for`. A 202
means Kafka has the record with `acks="all"` (every in-sync replica wrote it). A record that
timed out may still be delivered later by the producer; clients retry with the same ids and
the worker drops duplicates by event_id, so a retry is always safe.

The producer is started lazily and again after it fails, so the API also starts, and
serves its reads, while Kafka is away; writes answer 503 until Kafka is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from config.settings import Settings
from engine.wire.topics import ensure_topics

log = logging.getLogger("tailor.api")

# A produce request the broker has not answered in this long is failed and retried by the
# producer; batches nobody could send expire after it (far below aiokafka's 40 s default,
# so a record that a client was already told 503 about is not delivered minutes later).
REQUEST_TIMEOUT_MS = 10_000
# After a failed connect, writes answer 503 at once for this long instead of each trying
# to bootstrap again.
RECONNECT_PAUSE_S = 1.0
START_TIMEOUT_S = 5.0
CLOSE_TIMEOUT_S = 2.0


class KafkaUnavailable(Exception):
    """Kafka did not take the records in time (or at all); the message says why."""


@dataclass(frozen=True, slots=True)
class Record:
    topic: str
    value: bytes
    key: bytes
    headers: tuple[tuple[str, bytes], ...] = ()


def describe(exc: BaseException) -> str:
    """One line: the exception's text, prefixed with its type unless the text says it."""
    text = str(exc) or type(exc).__name__
    name = type(exc).__name__
    return (text if text.startswith(name) else f"{name}: {text}").splitlines()[0]


def _dead(producer: Any) -> bool:
    """True once the producer's sender task has ended: it will never deliver again."""
    task = getattr(getattr(producer, "_sender", None), "sender_task", None)
    return task is not None and task.done()


def _retrieved(ack: asyncio.Future[Any]) -> None:
    """Mark a delivery's outcome as seen: a record the client was already told 503 about
    may fail later, and asyncio would log that as an exception never retrieved."""
    if not ack.cancelled():
        ack.exception()


class Producer:
    """One AIOKafkaProducer for the API process, started on demand."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.timeout_s = settings.produce_timeout_s
        self._producer: Any = None
        self._lock = asyncio.Lock()
        self._topics_ready = False
        self._failed_at = -RECONNECT_PAUSE_S
        self._last_error = ""

    def _new(self) -> Any:
        return AIOKafkaProducer(
            bootstrap_servers=self.settings.kafka,
            client_id="tailor-api",
            acks="all",  # a 202 means every in-sync replica has the record
            # Not idempotent on purpose: aiokafka's idempotent producer never expires a
            # batch and stops for good on an out-of-order sequence, and it waits for a
            # producer id at start, unbounded. Duplicates from a retry are harmless: the
            # worker drops events it has seen by event_id, and commands are idempotent.
            enable_idempotence=False,
            request_timeout_ms=REQUEST_TIMEOUT_MS,
            retry_backoff_ms=100,
            linger_ms=2,
        )

    async def _ready(self) -> Any:
        """The running producer, started now if there is none (or it died)."""
        producer = self._producer
        if producer is not None and not _dead(producer):
            return producer
        async with self._lock:
            if self._producer is not None and not _dead(self._producer):
                return self._producer
            if self._producer is not None:
                log.warning("kafka producer stopped delivering; starting a new one")
                await self._close(self._producer)
                self._producer = None
            since = time.monotonic() - self._failed_at
            if since < RECONNECT_PAUSE_S:
                raise KafkaUnavailable(self._last_error)
            producer = self._new()
            try:
                if not self._topics_ready:
                    await ensure_topics(self.settings)
                    self._topics_ready = True
                await producer.start()
            except BaseException as exc:
                self._failed_at = time.monotonic()
                self._last_error = f"cannot connect to {self.settings.kafka}: " + (
                    "timed out" if isinstance(exc, asyncio.CancelledError) else describe(exc)
                )
                await self._close(producer)
                if isinstance(exc, Exception):
                    raise KafkaUnavailable(self._last_error) from exc
                raise
            self._producer = producer
            return producer

    async def start(self) -> None:
        """Connect at API start (within 5 s, or the produce timeout if longer); if Kafka is
        away, carry on: reads work, writes answer 503 and connect once Kafka answers."""
        try:
            await asyncio.wait_for(self._ready(), max(self.timeout_s, START_TIMEOUT_S))
        except TimeoutError:
            log.warning("kafka at %s did not answer at start: writes answer 503 until it does",
                        self.settings.kafka)  # fmt: skip
        except KafkaUnavailable as exc:
            log.warning("kafka unavailable at start (%s): writes answer 503 until it is back", exc)

    async def stop(self) -> None:
        if self._producer is not None:
            await self._close(self._producer)
            self._producer = None

    @staticmethod
    async def _close(producer: Any) -> None:
        # stop() flushes what is pending: bounded, so shutting down never hangs on Kafka.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.shield(producer.stop()), CLOSE_TIMEOUT_S)

    async def send(self, records: Sequence[Record]) -> None:
        """Hand `records` to Kafka and wait for the broker's acknowledgement of all of them,
        at most `produce_timeout_s`; else raise `KafkaUnavailable`."""

        async def send_all() -> None:
            producer = await self._ready()
            acks = []
            for r in records:
                ack = await producer.send(r.topic, r.value, key=r.key, headers=list(r.headers))
                ack.add_done_callback(_retrieved)  # also when we stop waiting for it
                acks.append(ack)
            await asyncio.gather(*acks)

        try:
            await asyncio.wait_for(send_all(), self.timeout_s)
        except TimeoutError:
            raise KafkaUnavailable(
                f"no acknowledgement from {self.settings.kafka} within "
                f"{self.timeout_s:g} s (TAILOR_PRODUCE_TIMEOUT_S)"
            ) from None
        except (KafkaError, OSError) as exc:
            raise KafkaUnavailable(describe(exc)) from None

    async def probe(self, within_s: float) -> bool:
        """A real round trip: a metadata request answered by a broker within `within_s`."""

        async def round_trip() -> None:
            producer = await self._ready()
            await producer.client.fetch_all_metadata()

        try:
            await asyncio.wait_for(round_trip(), within_s)
        except Exception:
            return False
        return True
