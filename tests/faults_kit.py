"""The fault-injection harness behind tests/test_faults.py: a stack of one's own, real worker
processes, a steady producer in a background thread, and the tally read back from Redis.

Nothing is mocked: workers are `tailor worker` child processes (killed with SIGKILL when a
test says kill), Kafka and Redis are the local stack's servers (stopped and started with
`Stack.stop_component` / `Stack.start_component`), answers go to Kafka with aiokafka and
what was learned is read from the decisions in Redis (`answers` of `tailor:offers:{id}`).

The contract every test checks: each distinct `event_id` sent is learned exactly once.
``lost`` counts answers sent but never learned, ``twice`` answers learned more than once.
The producer retries a record only when Kafka refused it, with the same bytes (the same
`event_id`), so a retry can never make a correct worker learn twice.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import itertools
import os
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import redis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.partitioner import murmur2
from aiokafka.structs import ConsumerRecord, TopicPartition

from config.catalog import load_catalog
from config.settings import Settings
from engine.dev.processes import free_ports, start_role, tail
from engine.dev.stack import Stack
from engine.wire.serving import STORE_KEY, offers_key
from engine.wire.topics import (
    CROWD_LESSONS,
    DEAD_LETTER,
    INTERACTIONS,
    STORE_ANSWERS,
    STORE_CONTEXT,
    ensure_topics,
    partitions,
)

# `make faults` sets this: the same tests with streams of about 20,000 answers.
FULL = os.environ.get("TAILOR_FAULTS_FULL", "") not in ("", "0")
OFFER_IDS = tuple(sorted(load_catalog().offers))
STORE_ID = "s-1"


def sized(quick: int, full: int) -> int:
    return full if FULL else quick


def say(text: str) -> None:
    """A figure for `pytest -s`."""
    print(f"[faults] {text}", flush=True)


# ---------------------------------------------------------------------- the workload


@dataclass(frozen=True)
class Record:
    """One Kafka record of a workload; `event_id` is set when it carries an answer."""

    key: bytes | None
    value: bytes
    customer_id: str | None = None
    event_id: str | None = None
    partition: int | None = None  # None: the key's partition, as the API would produce it


def now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def purchase(customer_id: str, offer_id: str, **overrides: Any) -> dict[str, Any]:
    """A valid answer: a purchase with its own event_id, stamped now."""
    return {
        "event_id": "e-" + uuid.uuid4().hex,
        "type": "purchase",
        "customer_id": customer_id,
        "offer_id": offer_id,
        "store_id": STORE_ID,
        "channel": "web",
        "ts": now_iso(),
        **overrides,
    }


def answer_record(event: dict[str, Any]) -> Record:
    cid = str(event["customer_id"])
    return Record(cid.encode(), orjson.dumps(event), cid, str(event["event_id"]))


def partition_of(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner (murmur2, as the API's producer) picks."""
    return int(murmur2(key) & 0x7FFFFFFF) % partitions


def customer_ids(prefix: str, count: int, partitions: int) -> list[str]:
    """`count` customer ids, more if needed until every partition has at least one, so a
    fault on any partition is followed by answers on that partition."""
    ids = [f"{prefix}-c{i:05d}" for i in range(count)]
    extra = count
    while len({partition_of(c.encode(), partitions) for c in ids}) < partitions:
        ids.append(f"{prefix}-c{extra:05d}")
        extra += 1
    return ids


def answer_stream(customers: Sequence[str], each: int) -> list[Record]:
    """`each` purchases per customer, round-robin over customers, so every customer keeps
    answering from the first record to the last (a fault at any point hits all of them)."""
    offers = itertools.cycle(OFFER_IDS)
    return [answer_record(purchase(c, next(offers))) for _ in range(each) for c in customers]


def expected_answers(records: Sequence[Record], customers: Sequence[str] = ()) -> dict[str, int]:
    """Distinct event_ids per customer: what a correct worker learns from `records`."""
    seen: dict[str, set[str]] = {c: set() for c in customers}
    for r in records:
        if r.customer_id is not None and r.event_id is not None:
            seen.setdefault(r.customer_id, set()).add(r.event_id)
    return {c: len(ids) for c, ids in seen.items()}


# ---------------------------------------------------------------------- the steady producer


class SteadyProducer:
    """Produces `records` to Kafka at `rate` records/s from a background thread (own event
    loop), so a fault lands mid-stream while the test thread kills and restarts things.

    Idempotent and acks=all; a record Kafka refused (or that timed out) is sent again
    with the same bytes until it is acknowledged, so a broker outage delays the stream and
    loses nothing. `acked` counts acknowledged records; `wait_acked` blocks on it.
    """

    def __init__(
        self, bootstrap: str, records: Sequence[Record], rate: float, topic: str = INTERACTIONS
    ) -> None:
        self.bootstrap, self.records, self.rate, self.topic = bootstrap, list(records), rate, topic
        self.acked = 0
        self.resent = 0
        self.errors: collections.Counter[str] = collections.Counter()
        self.started_at = self.finished_at = 0.0
        self.failure: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="steady-producer", daemon=True)
        self._stop = threading.Event()

    def start(self) -> SteadyProducer:
        self._thread.start()
        return self

    def wait_acked(self, fraction: float, timeout: float = 120.0) -> None:
        """Block until `fraction` of the stream is acknowledged by Kafka."""
        target = int(len(self.records) * fraction)
        deadline = time.monotonic() + timeout
        while self.acked < target:
            self._raise_failure()
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise AssertionError(
                    f"producer: {self.acked}/{len(self.records)} acknowledged after "
                    f"{timeout:.0f}s, waiting for {target}; errors {dict(self.errors)}"
                )
            time.sleep(0.02)

    def join(self, timeout: float = 300.0) -> None:
        """Wait until every record is acknowledged."""
        self._thread.join(timeout)
        self._raise_failure()
        if self._thread.is_alive():
            self._stop.set()
            raise AssertionError(
                f"producer still running after {timeout:.0f}s: {self.acked}/"
                f"{len(self.records)} acknowledged; errors {dict(self.errors)}"
            )

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    def describe(self) -> str:
        took = self.finished_at - self.started_at
        return (
            f"produced {self.acked}/{len(self.records)} records in {took:.1f}s "
            f"(rate {self.rate:.0f}/s), resent {self.resent}"
            + (f", send errors {dict(self.errors)}" if self.errors else "")
        )

    def _raise_failure(self) -> None:
        if self.failure is not None:
            raise AssertionError(f"producer failed: {self.failure!r}") from self.failure

    def _main(self) -> None:
        try:
            asyncio.run(self._produce())
        except BaseException as exc:
            self.failure = exc

    async def _produce(self) -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap,
            acks="all",
            enable_idempotence=True,
            linger_ms=5,
            request_timeout_ms=120_000,  # a broker outage of a test delays, never fails, a send
            retry_backoff_ms=250,
        )
        await producer.start()
        try:
            await self._paced(producer)
        finally:
            await producer.stop()
        self.finished_at = time.monotonic()

    async def _paced(self, producer: AIOKafkaProducer) -> None:
        total = len(self.records)
        attempts = [0] * total
        retry: collections.deque[int] = collections.deque()
        pending: set[asyncio.Future[Any]] = set()
        next_first = 0
        self.started_at = time.monotonic()

        def settled(index: int, fut: asyncio.Future[Any]) -> None:
            pending.discard(fut)
            if fut.cancelled() or fut.exception() is not None:
                why = "cancelled" if fut.cancelled() else type(fut.exception()).__name__
                self.errors[why] += 1
                retry.append(index)
            else:
                self.acked += 1

        while (next_first < total or retry or pending) and not self._stop.is_set():
            due = min(total, int((time.monotonic() - self.started_at) * self.rate) + 1)
            todo = [retry.popleft() for _ in range(len(retry))] + list(range(next_first, due))
            next_first = max(next_first, due)
            for n, index in enumerate(todo):
                r = self.records[index]
                try:
                    fut = await producer.send(self.topic, r.value, key=r.key, partition=r.partition)
                except Exception as exc:  # e.g. no metadata while the broker is down
                    self.errors[type(exc).__name__] += 1
                    retry.extend(todo[n:])
                    await asyncio.sleep(0.5)
                    break
                attempts[index] += 1
                self.resent += attempts[index] > 1
                pending.add(fut)
                fut.add_done_callback(lambda f, i=index: settled(i, f))
            await asyncio.sleep(0.01)


def produce_now(bootstrap: str, records: Sequence[Record], topic: str = INTERACTIONS) -> None:
    """Send `records` one by one, each acknowledged before the next (hostile records)."""

    async def send_all() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
        await producer.start()
        try:
            for r in records:
                await producer.send_and_wait(topic, r.value, key=r.key, partition=r.partition)
        finally:
            await producer.stop()

    asyncio.run(send_all())


# ---------------------------------------------------------------------- reading back


def read_topic(
    bootstrap: str,
    topic: str,
    done: Callable[[list[ConsumerRecord[bytes, bytes]]], bool],
    timeout: float = 60.0,
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of `topic` from the start, read until `done(records)` or `timeout`."""

    async def read() -> list[ConsumerRecord[bytes, bytes]]:
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            group_id=None,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            max_partition_fetch_bytes=4 * 1024 * 1024,
        )
        await consumer.start()
        found: list[ConsumerRecord[bytes, bytes]] = []
        try:
            deadline = time.monotonic() + timeout
            while not done(found) and time.monotonic() < deadline:
                batch = await consumer.getmany(timeout_ms=500)
                for records in batch.values():
                    found.extend(records)
        finally:
            await consumer.stop()
        return found

    return asyncio.run(read())


def read_to_end(
    bootstrap: str, topic: str, partitions: int, timeout: float = 60.0
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of `topic` (which has `partitions` partitions), from the start to its
    end as it is when called."""

    async def read() -> list[ConsumerRecord[bytes, bytes]]:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=None,
            enable_auto_commit=False,
            max_partition_fetch_bytes=4 * 1024 * 1024,
        )
        await consumer.start()
        found: list[ConsumerRecord[bytes, bytes]] = []
        try:
            tps = [TopicPartition(topic, p) for p in range(partitions)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            ends = await consumer.end_offsets(tps)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                positions = {tp: await consumer.position(tp) for tp in tps}
                if all(positions[tp] >= ends[tp] for tp in tps):
                    break
                batch = await consumer.getmany(timeout_ms=500)
                for records in batch.values():
                    found.extend(records)
        finally:
            await consumer.stop()
        return found

    return asyncio.run(read())


def dead_letters_with(
    bootstrap: str, tokens: Sequence[bytes], timeout: float = 60.0
) -> dict[bytes, ConsumerRecord[bytes, bytes]]:
    """The dead letter whose value contains each token (as far as found within `timeout`)."""

    def matches(records: list[ConsumerRecord[bytes, bytes]]) -> dict[bytes, Any]:
        return {t: r for r in records for t in tokens if r.value is not None and t in r.value}

    records = read_topic(
        bootstrap, DEAD_LETTER, lambda rs: len(matches(rs)) == len(tokens), timeout
    )
    return matches(records)


def headers_of(record: ConsumerRecord[bytes, bytes]) -> dict[str, str]:
    return {k: v.decode(errors="replace") for k, v in record.headers}


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Decisions:
    """The customers' decisions in Redis, read in one MGET."""

    def __init__(self, redis_url: str, customers: Sequence[str]) -> None:
        self.client = redis.Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=5)
        self.customers = list(customers)
        self._keys = [offers_key(c) for c in self.customers]

    def close(self) -> None:
        self.client.close()

    def raw(self) -> list[bytes | None]:
        values: list[bytes | None] = self.client.mget(self._keys)  # type: ignore[assignment]
        return values

    def answers(self) -> dict[str, int]:
        """`answers` of each customer's decision (0 while there is none)."""
        return {
            c: int(orjson.loads(v)["answers"]) if v else 0
            for c, v in zip(self.customers, self.raw(), strict=True)
        }

    def store_state(self, store_id: str = STORE_ID) -> dict[str, Any] | None:
        raw: bytes | None = self.client.get(STORE_KEY + store_id)  # type: ignore[assignment]
        return orjson.loads(raw) if raw else None


@dataclass
class Tally:
    """What was sent against what was learned."""

    sent: Mapping[str, int]
    learned: Mapping[str, int]
    waited_s: float

    @property
    def lost(self) -> int:
        return sum(max(0, n - self.learned.get(c, 0)) for c, n in self.sent.items())

    @property
    def twice(self) -> int:
        return sum(max(0, self.learned.get(c, 0) - n) for c, n in self.sent.items())

    def describe(self) -> str:
        sent, learned = sum(self.sent.values()), sum(self.learned.values())
        off = {c: (n, self.learned.get(c, 0)) for c, n in self.sent.items()}
        wrong = {c: f"sent {s} learned {lr}" for c, (s, lr) in off.items() if s != lr}
        sample = dict(itertools.islice(wrong.items(), 5))
        return (
            f"sent {sent} answers to {len(self.sent)} customers, learned {learned}: "
            f"lost {self.lost}, twice {self.twice} ({len(wrong)} customers off"
            + (f", e.g. {sample}" if sample else "")
            + f"); drained in {self.waited_s:.1f}s"
        )


def wait_drained(
    decisions: Decisions,
    expected: Mapping[str, int],
    timeout: float = 120.0,
    settle_s: float = 3.0,
    stall_s: float = 30.0,
) -> Tally:
    """Poll Redis until every count is at its target and has been still for `settle_s`
    (so a late duplicate still shows), or nothing has moved for `stall_s`, or `timeout`.
    The timeouts only bound a failing test; nothing asserts how fast it drains."""
    t0 = time.monotonic()
    last: dict[str, int] = {}
    moved = t0
    while True:
        try:
            now_counts = decisions.answers()
        except redis.RedisError:
            now_counts = last  # Redis itself may be coming back in a test
        now = time.monotonic()
        if now_counts != last:
            last, moved = now_counts, now
        at_target = all(last.get(c, 0) == n for c, n in expected.items())
        if (at_target and now - moved >= settle_s) or now - moved >= stall_s or now - t0 > timeout:
            return Tally(dict(expected), dict(last), now - t0)
        time.sleep(0.2)


@dataclass
class Resumption:
    """When each customer's decision first changed after a moment (a kill)."""

    changed_after: dict[str, float] = field(default_factory=dict)
    customers: int = 0

    def first(self) -> float | None:
        return min(self.changed_after.values(), default=None)

    def every_partition(self, partitions: int) -> float | None:
        """Seconds until every partition that has customers had a new decision: the last
        partition to resume, i.e. how long the slowest of the dead worker's partitions took."""
        firsts: dict[int, float] = {}
        for c, t in self.changed_after.items():
            p = partition_of(c.encode(), partitions)
            firsts[p] = min(t, firsts.get(p, t))
        return max(firsts.values()) if len(firsts) == partitions else None

    def describe(self, partitions: int) -> str:
        first, every = self.first(), self.every_partition(partitions)

        def fmt(x: float | None) -> str:
            return "never" if x is None else f"{x:.1f}s"

        return (
            f"first new decision {fmt(first)} after the kill, every partition resumed after "
            f"{fmt(every)} ({len(self.changed_after)}/{self.customers} customers had a new one)"
        )


def watch_resumption(
    decisions: Decisions, since: float, baseline: list[bytes | None], timeout: float = 90.0
) -> Resumption:
    """Poll Redis until every customer's decision differs from `baseline` (read at monotonic
    time `since`, just after a kill), or `timeout`."""
    seen = Resumption(customers=len(decisions.customers))
    deadline = since + timeout
    while len(seen.changed_after) < len(decisions.customers) and time.monotonic() < deadline:
        values = decisions.raw()
        now = time.monotonic()
        for c, before, after in zip(decisions.customers, baseline, values, strict=True):
            if after != before and c not in seen.changed_after:
                seen.changed_after[c] = now - since
        time.sleep(0.05)
    return seen


def far_future_times(obj: object, now: float, slack_s: float = 86400.0) -> list[float]:
    """Numbers in `obj` (nested JSON) that are times later than `now + slack_s`, read as
    epoch seconds (below 1e12) or epoch milliseconds (above).

    >>> far_future_times({"s": {"a": {"x": [1.5, 1.7e9], "y": [2.0, 253402214400.0]}}}, 1.7e9)
    [253402214400.0]
    """
    found: list[float] = []
    if isinstance(obj, dict):
        for v in obj.values():
            found += far_future_times(v, now, slack_s)
    elif isinstance(obj, list | tuple):
        for v in obj:
            found += far_future_times(v, now, slack_s)
    elif isinstance(obj, int | float) and not isinstance(obj, bool):
        x = float(obj)
        if (now + slack_s < x < 1e12) or x > (now + slack_s) * 1000:
            found.append(x)
    return found


# ---------------------------------------------------------------------- processes


def ready_status(url: str) -> int | None:
    """The HTTP status of `url` (a 503 too), or None when nothing answers."""
    return ready_answer(url)[0]


def ready_answer(url: str) -> tuple[int | None, list[str]]:
    """The status of a worker's /ready and the reasons its body gives (none: no answer)."""
    try:
        with urllib.request.urlopen(url, timeout=1.0) as response:
            status, body = int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        status, body = int(exc.code), exc.read()
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return None, []
    try:
        return status, [str(r) for r in orjson.loads(body).get("reasons", [])]
    except (orjson.JSONDecodeError, AttributeError):
        return status, []


@dataclass
class WorkerProcess:
    """One `tailor worker` child process with its own state dir, web port and id."""

    name: str
    settings: Settings
    log: Path
    proc: subprocess.Popen[bytes]

    @property
    def ready_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.worker_web_port}/ready"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def ready(self) -> int | None:
        return ready_status(self.ready_url)

    def wait_ready(self, timeout: float = 120.0) -> float:
        """Seconds until /ready answers 200; fails with the log's tail if it dies first."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if not self.alive():
                raise AssertionError(
                    f"worker {self.name} exited with {self.proc.returncode}:\n{tail(self.log)}"
                )
            if self.ready() == 200:
                return time.monotonic() - t0
            time.sleep(0.2)
        raise AssertionError(
            f"worker {self.name} not ready after {timeout:.0f}s:\n{tail(self.log)}"
        )

    def crowd(self, context: Mapping[str, str]) -> dict[str, Any]:
        """The worker's /crowd: what the crowd it decides with predicts in `context`."""
        query = urllib.parse.urlencode(dict(context))
        url = f"http://127.0.0.1:{self.settings.worker_web_port}/crowd?{query}"
        with urllib.request.urlopen(url, timeout=10) as response:
            body: dict[str, Any] = orjson.loads(response.read())
        return body

    def kill(self) -> float:
        """SIGKILL, no goodbye (no commit, no leaving the group); the monotonic time it died."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)
        return time.monotonic()

    def stop(self) -> None:
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Rig:
    """One test's app: its own app id (consumer group, tables), its workers and its
    customers, on a running stack (its own when it restarts servers, else shared).

    On a shared stack the app must not replay what earlier tests produced: before its
    first worker starts, its consumer group is committed at the end of every topic the
    worker consumes, so it starts at the test's own records. `close` kills its workers.
    """

    def __init__(self, stack: Stack, workdir: Path, **worker_settings: Any) -> None:
        self.stack = stack
        self.workdir = workdir
        self.logs = workdir / "logs"
        self.workers: list[WorkerProcess] = []
        self._ports: dict[str, int] = {}
        stack_settings = stack.settings
        self.settings = stack_settings.model_copy(
            update={
                "kafka_bootstrap": stack_settings.kafka,
                "redis_url": stack_settings.redis,
                "app_id": f"faults-{uuid.uuid4().hex[:8]}",
                **worker_settings,
            }
        )
        self.partitions = self.settings.interactions_partitions
        self.prefix = "f" + uuid.uuid4().hex[:6]
        asyncio.run(start_at_the_end(self.settings))

    @property
    def kafka(self) -> str:
        return self.settings.kafka

    def start_worker(self, name: str, *, fresh_state: bool = False) -> WorkerProcess:
        """Start worker `name` with its own state dir (RocksDB tables), web port and static
        member id (its name). Started again under the same name it is the same member
        restarted in place: same id, same port, same local state. With `fresh_state`, a
        name never used before gets an empty state dir (a replacement on a new machine)."""
        if fresh_state:
            assert name not in self._ports, f"worker {name} ran before: its state is not fresh"
        port = self._ports.get(name) or free_ports(1)[0]
        self._ports[name] = port
        settings = self.settings.model_copy(
            update={
                "state_dir": self.workdir / f"worker-{name}",
                "worker_web_port": port,
                "worker_id": name,
            }
        )
        log = self.logs / f"worker-{name}.log"
        worker = WorkerProcess(name, settings, log, start_role("worker", settings, log))
        self.workers.append(worker)
        return worker

    def decisions(self, customers: Sequence[str]) -> Decisions:
        return Decisions(self.settings.redis, customers)

    def group(self) -> tuple[str, int]:
        """The consumer group's state and member count, as the broker sees them."""

        async def describe() -> tuple[str, int]:
            admin = AIOKafkaAdminClient(bootstrap_servers=self.kafka)
            await admin.start()
            try:
                (response,) = await admin.describe_consumer_groups([self.settings.app_id])
                _error, _group, state, _ptype, _protocol, members, *_ = response.groups[0]
                return str(state), len(members)
            finally:
                await admin.close()

        return asyncio.run(describe())

    def wait_group(self, members: int, timeout: float = 90.0) -> None:
        """Wait until the group is Stable with `members` members."""
        deadline = time.monotonic() + timeout
        seen: tuple[str, int] = ("", 0)
        while time.monotonic() < deadline:
            seen = self.group()
            if seen == ("Stable", members):
                return
            time.sleep(0.3)
        raise AssertionError(f"consumer group is {seen}, not Stable with {members} members")

    def in_kafka(self, customers: Sequence[str]) -> dict[str, int]:
        """Distinct answers (event_ids) per customer in tailor.interactions: whether a lost
        answer did reach Kafka (then the worker lost it, not the harness)."""
        seen: dict[str, set[str]] = {c: set() for c in customers}
        for r in read_to_end(self.kafka, INTERACTIONS, self.partitions):
            try:
                event = orjson.loads(r.value or b"")
                cid, eid = event["customer_id"], event["event_id"]
            except (orjson.JSONDecodeError, KeyError, TypeError):
                continue
            if cid in seen:
                seen[cid].add(eid)
        return {c: len(ids) for c, ids in seen.items()}

    def close(self) -> None:
        """SIGKILL whatever still runs: the app is thrown away with its test."""
        for w in self.workers:
            if w.alive():
                w.kill()
        say(f"logs: {self.logs} (stack: {self.stack.logs_dir})")


async def start_at_the_end(settings: Settings) -> None:
    """Create the topics, then commit the app's group at the current end of each one the
    worker consumes."""
    await ensure_topics(settings)
    counts = partitions(settings)
    tps = [
        TopicPartition(t, p)
        for t in (INTERACTIONS, STORE_ANSWERS, STORE_CONTEXT, CROWD_LESSONS)
        for p in range(counts[t])
    ]
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka, group_id=settings.app_id, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        await consumer.commit(dict(ends))
    finally:
        await consumer.stop()


@contextlib.contextmanager
def own_stack(settings: Settings) -> Iterator[Stack]:
    """A stack (Kafka + Redis) of one's own on `settings`' free ports, down at the end."""
    stack = Stack(settings)
    try:
        stack.up(progress=lambda _: None)
        yield stack
    finally:
        stack.down(progress=lambda _: None)


@contextlib.contextmanager
def rig(stack: Stack, workdir: Path, **worker_settings: Any) -> Iterator[Rig]:
    r = Rig(stack, workdir, **worker_settings)
    try:
        yield r
    finally:
        r.close()


def poll_ready_during(
    workers: Sequence[WorkerProcess], seconds: float, every: float = 0.2
) -> tuple[dict[str, collections.Counter[int | None]], bool, set[str]]:
    """Poll every worker's /ready for `seconds`: the statuses seen per worker, whether
    every worker stayed alive the whole time, and every reason not ready given (its words
    before the first colon)."""
    seen: dict[str, collections.Counter[int | None]] = {
        w.name: collections.Counter() for w in workers
    }
    reasons: set[str] = set()
    alive = True
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for w in workers:
            alive = alive and w.alive()
            status, why = ready_answer(w.ready_url)
            seen[w.name][status] += 1
            reasons |= {r.split(":")[0] for r in why}
        time.sleep(every)
    return seen, alive, reasons


def diagnose(r: Rig, tally: Tally, limit: int = 3) -> Path | None:
    """For a few customers short of answers, their records in tailor.interactions and
    their state's records in the customers changelog (position, answers seen), written
    beside the logs: where an answer was lost, not only that it was."""
    short = [c for c, n in tally.sent.items() if tally.learned.get(c, 0) < n][:limit]
    if not short:
        return None
    interactions = read_to_end(r.kafka, INTERACTIONS, r.partitions)
    changelog = read_to_end(r.kafka, f"{r.settings.app_id}-customers-changelog", r.partitions)
    lines = []
    for c in short:
        key = c.encode()
        lines.append(f"== {c}: sent {tally.sent[c]}, learned {tally.learned.get(c, 0)}")
        for rec in interactions:
            if rec.key == key:
                event = orjson.loads(rec.value or b"{}")
                lines.append(
                    f"  record    p{rec.partition} @{rec.offset} t={rec.timestamp} "
                    f"{event.get('type')} {event.get('event_id')}"
                )
        for rec in changelog:
            if rec.key == key:
                state = orjson.loads(rec.value) if rec.value else {}
                lines.append(
                    f"  changelog p{rec.partition} @{rec.offset} t={rec.timestamp} "
                    f"position={state.get('o')} answers_seen={len(state.get('s', []))}"
                )
    for worker in r.workers:  # what the workers said went wrong, in the order they said it
        warned = [
            line
            for line in worker.log.read_text(errors="replace").splitlines()
            if "[WARNING]" in line or "[ERROR]" in line or "generation id" in line
        ]
        lines.append(f"== worker {worker.name}: {len(warned)} warnings, errors and generations")
        lines += [f"  {line[:300]}" for line in warned[-40:]]
    out = r.workdir / "diagnosis.txt"
    out.write_text("\n".join(lines) + "\n")
    say(f"diagnosis: {out}")
    print(out.read_text())  # in CI's output too: the workdir is gone with the machine
    return out
