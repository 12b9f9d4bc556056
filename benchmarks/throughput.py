"""End-to-end throughput of `tailor worker` through a real Kafka broker and a real Redis.

Pre-produces N seeded interaction events to `tailor.interactions`, then measures, one after
the other on the same broker and backlog: a bare Faust agent that only counts the events
(the floor of Faust + Kafka), the Tailor worker as a child process (validate, learn, decide,
write to Redis and Kafka), and the same number of decision-sized writes pipelined straight
to Redis (how much of the worker's time Redis could be). Once the worker has drained the
backlog, `--live` events are sent at `--live-rate` and each is timed from its send to its
decision in Redis (event-to-decision p50/p99, see benchmarks.latency).

    .venv/bin/python -m benchmarks.throughput [--events 20000] [--customers 5000] [--json]
        [--live 1000 --live-rate 100] [--profile worker.prof] [--keep-stack]

A private stack (free ports, temporary state dir) is started and stopped, unless
TAILOR_KAFKA_BOOTSTRAP / TAILOR_REDIS_URL name existing servers. Progress goes to stderr,
the table to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import orjson
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from benchmarks.latency import event_to_decision, live_events, percentile
from config.catalog import load_catalog
from config.settings import Settings
from engine.dev.processes import free_ports, start_role, stop, tail, wait_http
from engine.dev.stack import Stack
from engine.wire import metrics
from engine.wire.serving import offers_key
from engine.wire.topics import INTERACTIONS, ensure_topics
from models.answer import EventType
from models.context import daypart_at
from models.offer import Catalog

REPO_ROOT = Path(__file__).resolve().parent.parent
# Mostly questions, some answers: about what a drive-thru's screens log.
EVENT_MIX: tuple[tuple[EventType, float], ...] = (
    ("impression", 0.80),
    ("click", 0.10),
    ("purchase", 0.06),
    ("add_to_cart", 0.03),
    ("dismiss", 0.01),
)
CHANNELS = ("drive_thru", "drive_thru", "drive_thru", "app", "web", "kiosk")
STORES = ("s-1", "s-2", "s-3")
WEATHER = ("sunny", "cloudy", "rain", "hot", "cold")
# Event times: yesterday's trading day (05:00 to 23:00 UTC), so every daypart occurs and
# every event is within the worker's accepted clock window (TAILOR_MAX_EVENT_AGE_S).
DAY_SPAN_S = 18 * 3600.0


def trading_day(now: datetime | None = None) -> float:
    """05:00 UTC yesterday, as a UNIX time."""
    today = (
        (now or datetime.now(UTC))
        .astimezone(UTC)
        .replace(hour=5, minute=0, second=0, microsecond=0)
    )
    return today.timestamp() - 86400.0


POLL_S = 0.25
PROGRESS_S = 5.0


def say(message: str) -> None:
    """A progress line on stderr."""
    print(message, file=sys.stderr, flush=True)


def make_events(
    n: int, customers: int, catalog: Catalog, seed: int = 7, day_start: float | None = None
) -> list[dict[str, Any]]:
    """`n` valid interaction events (engine.wire.events.Interaction as JSON), seeded.

    Customers are drawn uniformly from `customers` ids and mostly visit their home store;
    offers are those their store sells at the event's daypart; an answer (click, purchase,
    ...) is about one of the customer's recent impressions when there is one.
    """
    rng = random.Random(seed)
    start = trading_day() if day_start is None else day_start
    types = [t for t, _ in EVENT_MIX]
    weights = [w for _, w in EVENT_MIX]
    shown: dict[str, list[str]] = {}
    events: list[dict[str, Any]] = []
    for i in range(n):
        cid = f"c-{rng.randrange(customers)}"
        home = STORES[zlib.crc32(cid.encode()) % len(STORES)]
        store_id = home if rng.random() < 0.85 else rng.choice(STORES)
        ts = start + i * DAY_SPAN_S / max(n, 1)
        daypart = daypart_at(ts, catalog.stores[store_id].utc_offset_h)
        available = [o.offer_id for o in catalog.available(store_id, daypart)]
        type_ = rng.choices(types, weights)[0]
        recent = [o for o in shown.get(cid, ()) if o in available]
        offer_id = rng.choice(recent) if type_ != "impression" and recent else rng.choice(available)
        if type_ == "impression":
            shown[cid] = [*shown.get(cid, [])[-5:], offer_id]
        channel = rng.choice(CHANNELS)
        event: dict[str, Any] = {
            "event_id": f"e-{seed}-{i}",
            "type": type_,
            "customer_id": cid,
            "offer_id": offer_id,
            "ts": datetime.fromtimestamp(ts, UTC).isoformat(),
            "store_id": store_id,
            "channel": channel,
        }
        if type_ == "purchase":
            event["value"] = catalog.offers[offer_id].price
        if channel == "drive_thru":
            event["context"] = {
                "weather": rng.choice(WEATHER),
                "temperature_c": round(rng.uniform(-5.0, 35.0), 1),
                "queue_length": rng.randrange(9),
            }
        events.append(event)
    return events


def decision_payload(size: int = 1024) -> bytes:
    """A decision-shaped JSON of about `size` bytes, for the raw Redis baseline."""
    offer = {"offer_id": "fries", "score": 0.4321, "propensity": 0.21, "reasons": ["x"]}
    body: dict[str, Any] = {"decision_id": "d-" + "0" * 32, "offers": [offer] * 6, "pad": ""}
    body["pad"] = "x" * max(0, size - len(orjson.dumps(body)))
    return orjson.dumps(body)


@dataclass(frozen=True)
class Run:
    """One measured path: `count` of `target` done; the rate is over the steady part (from
    the first progress seen to the end), `wall_s` includes the process's start."""

    name: str
    target: int
    count: int
    steady_count: int
    steady_s: float
    wall_s: float
    extra: dict[str, float]

    @property
    def rate(self) -> float:
        return self.steady_count / self.steady_s if self.steady_s > 0 else 0.0

    @property
    def done(self) -> bool:
        return self.count >= self.target


# ---------------------------------------------------------------- Kafka: events in


async def produce(settings: Settings, events: Sequence[dict[str, Any]]) -> tuple[float, int]:
    """Send the events keyed by customer; returns (seconds, records now in the topic)."""
    await ensure_topics(settings, with_changelogs=True)
    await topic_counts(settings)
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka, linger_ms=20, max_batch_size=256 * 1024
    )
    await producer.start()
    started = time.monotonic()
    try:
        sent = [
            await producer.send(INTERACTIONS, orjson.dumps(e), key=e["customer_id"].encode())
            for e in events
        ]
        await producer.flush()
        await asyncio.gather(*sent)
    finally:
        await producer.stop()
    return time.monotonic() - started, await topic_counts(settings)


async def topic_counts(settings: Settings) -> int:
    """Records in `tailor.interactions` now; answering means every partition's leader serves
    (a send right after topic creation would only log NotLeaderForPartition retries)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka)
    await consumer.start()
    try:
        parts = [TopicPartition(INTERACTIONS, p) for p in range(settings.interactions_partitions)]
        ends = await consumer.end_offsets(parts)
        begins = await consumer.beginning_offsets(parts)
    finally:
        await consumer.stop()
    return sum(ends[p] - begins[p] for p in parts)


# ---------------------------------------------------------------- baseline A: bare Faust


def bare_faust_child(args: argparse.Namespace) -> None:
    """The bare Faust app (run in a child process): one agent that counts the events in
    batches like the worker's, writing its progress to `args.status` (monotonic times)."""
    import faust

    status = Path(args.status)
    app = faust.App(
        args.app_id,
        broker=f"kafka://{args.broker}",
        store="memory://",
        autodiscover=False,
        topic_partitions=args.partitions,
        topic_replication_factor=1,
        consumer_auto_offset_reset="earliest",
        web_enabled=False,
    )
    topic = app.topic(
        INTERACTIONS,
        key_type=str,
        key_serializer="raw",
        value_serializer="raw",
        partitions=args.partitions,
    )
    seen: dict[str, float] = {
        "count": 0,
        "batches": 0,
        "first_t": 0.0,
        "first_count": 0,
        "last_t": 0.0,
    }
    written = [0.0]

    def report(done: bool) -> None:
        tmp = status.with_suffix(".tmp")
        tmp.write_text(json.dumps({**seen, "done": done}))
        os.replace(tmp, status)
        written[0] = time.monotonic()

    async def count(stream: Any) -> None:
        async for events in stream.take_events(args.batch_size, within=args.within):
            now = time.monotonic()
            if not seen["count"]:
                seen["first_t"], seen["first_count"] = now, len(events)
            seen["count"] += len(events)
            seen["batches"] += 1
            seen["last_t"] = now
            if seen["count"] >= args.target or now - written[0] > POLL_S:
                report(seen["count"] >= args.target)

    app.agent(topic, name="count")(count)
    faust.Worker(app, loglevel="warning", quiet=True).execute_from_commandline()


def run_bare_faust(settings: Settings, target: int, logs: Path, timeout: float) -> Run:
    """Start the bare Faust child; return once it has counted `target` events (or timed out)."""
    status = logs / "bare-faust.json"
    log = logs / "bare-faust.log"
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.throughput",
        "--bare-faust-child",
        "--broker", settings.kafka,
        "--app-id", f"{settings.app_id}-bare",
        "--partitions", str(settings.interactions_partitions),
        "--batch-size", str(settings.batch_size),
        "--within", str(settings.batch_within_s),
        "--target", str(target),
        "--status", str(status),
    ]  # fmt: skip
    say(f"bare faust: starting (log: {log})")
    started = time.monotonic()
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        seen: dict[str, Any] = {"count": 0}
        last_say = started
        while time.monotonic() - started < timeout:
            if status.exists():
                seen = json.loads(status.read_text())
                if seen["done"]:
                    break
            if proc.poll() is not None:
                raise RuntimeError(f"bare faust exited with {proc.returncode}:\n{tail(log)}")
            if time.monotonic() - last_say >= PROGRESS_S:
                last_say = time.monotonic()
                say(f"bare faust: {seen['count']:.0f}/{target} events")
            time.sleep(POLL_S / 5)
    finally:
        stop(proc)
    if not seen["count"]:
        return Run("bare faust", target, 0, 0, 0.0, time.monotonic() - started, {})
    last_t = seen["last_t"] if seen.get("done") else time.monotonic()
    return Run(
        "bare faust",
        target,
        int(seen["count"]),
        int(seen["count"] - seen["first_count"]),
        last_t - seen["first_t"],
        last_t - started,
        {"batches": seen["batches"]},
    )


# ---------------------------------------------------------------- the worker


def run_worker(
    settings: Settings,
    target: int,
    logs: Path,
    timeout: float,
    profile: Path | None = None,
    then: Callable[[], dict[str, float]] | None = None,
) -> Run:
    """Start `tailor worker`; poll its /metrics until `tailor_events_total` reaches `target`.
    With `profile`, py-spy samples the worker from ready to done into that file (raw
    collapsed stacks). `then` runs against the still running worker afterwards (the live
    latency phase); what it returns joins the run's figures."""
    log = logs / "worker.log"
    base = f"http://127.0.0.1:{settings.worker_web_port}"
    say(f"tailor worker: starting (log: {log})")
    started = time.monotonic()
    proc = start_role("worker", settings, log)
    try:
        wait_http(f"{base}/ready", proc, log, timeout=120.0)
        ready_s = time.monotonic() - started
        say(f"tailor worker: ready after {ready_s:.1f}s")
        spy = profiler(proc.pid, profile) if profile else None
        totals: dict[str, float] = {}
        after: dict[str, float] = {}
        first: tuple[float, float] | None = None
        last_say = now = time.monotonic()
        while now - started < timeout:
            if proc.poll() is not None:
                raise RuntimeError(f"worker exited with {proc.returncode}:\n{tail(log)}")
            with urllib.request.urlopen(f"{base}/metrics", timeout=5) as response:
                totals = metrics.totals(response.read().decode())
            now = time.monotonic()
            count = totals.get("tailor_events_total", 0.0)
            if first is None and count > 0:
                first = (now, count)
            if count >= target:
                break
            if now - last_say >= PROGRESS_S:
                last_say = now
                rate = (count - first[1]) / (now - first[0]) if first and now > first[0] else 0.0
                say(f"tailor worker: {count:.0f}/{target} events ({rate:.0f}/s)")
            time.sleep(POLL_S)
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(timeout=60)
        drained = totals.get("tailor_events_total", 0.0) >= target
        after = then() if then is not None and drained else {}
    finally:
        stop(proc)
    count = totals.get("tailor_events_total", 0.0)
    first_t, first_count = first or (now, count)
    return Run(
        "tailor worker",
        target,
        int(count),
        int(count - first_count),
        now - first_t,
        now - started,
        {"ready_s": ready_s, **totals, **after},
    )


def run_workers(settings: Settings, n: int, target: int, logs: Path, timeout: float) -> Run:
    """`n` worker processes in one consumer group of their own (own ports, member ids and
    state dirs), started together on the whole backlog. Progress is the group's committed
    offsets on tailor.interactions: work durably done, where records delivered again by
    the rebalances of the joins are not counted twice."""
    group = settings.model_copy(
        update={
            "app_id": f"{settings.app_id}-x{n}",
            "kafka_bootstrap": settings.kafka,
            "redis_url": settings.redis,
        }
    )
    say(f"{n} workers: starting")
    started = time.monotonic()
    procs = []
    for i, port in enumerate(free_ports(n)):
        member = group.model_copy(
            update={
                "worker_web_port": port,
                "worker_id": f"w{i}",
                "state_dir": settings.state_dir / f"x{n}-w{i}",
            }
        )
        log = logs / f"x{n}-worker-{i}.log"
        procs.append((port, log, start_role("worker", member, log)))
    done = 0
    try:
        for port, log, proc in procs:
            wait_http(f"http://127.0.0.1:{port}/ready", proc, log, timeout=120.0)
        first: tuple[float, int] | None = None
        last_say = now = time.monotonic()
        while now - started < timeout and done < target:
            for _, log, proc in procs:
                if proc.poll() is not None:
                    raise RuntimeError(f"a worker exited with {proc.returncode}:\n{tail(log)}")
            done = asyncio.run(committed(group))
            now = time.monotonic()
            if first is None and done > 0:
                first = (now, done)
            if now - last_say >= PROGRESS_S:
                last_say = now
                say(f"{n} workers: {done}/{target} committed")
            time.sleep(POLL_S)
    finally:
        for _, _, proc in procs:
            stop(proc)
    first_t, first_done = first or (now, done)
    return Run(f"{n} workers", target, done, done - first_done, now - first_t, now - started, {})


async def committed(settings: Settings) -> int:
    """Records of tailor.interactions the app's consumer group has committed."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(settings.app_id)
    finally:
        await admin.close()
    return sum(m.offset for tp, m in offsets.items() if tp.topic == INTERACTIONS and m.offset > 0)


def wait_quiet(metrics_url: str, still_s: float = 2.0, timeout_s: float = 60.0) -> float:
    """Seconds until the worker has finished its batches (its batch count unchanged for
    `still_s`): events are counted as they are applied, before their batch is written, so
    a live measurement started at once would time the backlog's tail."""
    started = time.monotonic()
    last, since = -1.0, started
    while time.monotonic() - started < timeout_s:
        with urllib.request.urlopen(metrics_url, timeout=5) as response:
            batches = metrics.totals(response.read().decode()).get("tailor_batch_seconds_count")
        now = time.monotonic()
        if batches != last:
            last, since = batches or 0.0, now
        elif now - since >= still_s:
            break
        time.sleep(POLL_S)
    return time.monotonic() - started


def profiler(pid: int, out: Path) -> subprocess.Popen[bytes]:
    """py-spy sampling `pid` (100 Hz, raw collapsed stacks to `out`) until SIGINT."""
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or "py-spy"
    command = [spy, "record", "--pid", str(pid), "--rate", "100", "--format", "raw"]
    return subprocess.Popen([*command, "--output", str(out)], stdout=subprocess.DEVNULL)


def profile_headline(path: Path, top: int = 14) -> list[str]:
    """The functions the worker spent its samples in (inclusive, own code and libraries),
    from py-spy's collapsed stacks."""
    if not path.exists():
        return [f"profile: no samples in {path}"]
    inclusive: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit() or "(idle)" in stack:
            continue
        n = int(count)
        total += n
        for frame in {f.split(" (")[0] + " " + _where(f) for f in stack.split(";")}:
            inclusive[frame] = inclusive.get(frame, 0) + n
    ranked = sorted(inclusive.items(), key=lambda kv: -kv[1])
    lines = [f"profile ({total} busy samples, inclusive share; stacks in {path}):"]
    lines += [f"  {n / total:6.1%}  {frame}" for frame, n in ranked[:top] if total]
    return lines


def _where(frame: str) -> str:
    """`(path/to/module.py:12)` -> `module.py`."""
    inside = frame.partition(" (")[2].rstrip(")")
    return Path(inside.rsplit(":", 1)[0]).name if inside else ""


# ---------------------------------------------------------------- baseline B: raw Redis


async def raw_redis(
    url: str, keys: Sequence[str], payload: bytes, batch_size: int, ttl_s: int
) -> Run:
    """SET with EX of `payload` under each key, `batch_size` per pipeline; keys deleted after."""
    client = aioredis.from_url(url)
    try:
        started = time.monotonic()
        for i in range(0, len(keys), batch_size):
            pipe = client.pipeline(transaction=False)
            for key in keys[i : i + batch_size]:
                pipe.set(key, payload, ex=ttl_s)
            await pipe.execute()
        took = time.monotonic() - started
        for i in range(0, len(keys), 10_000):
            await client.delete(*set(keys[i : i + 10_000]))
    finally:
        await client.aclose()
    return Run("raw redis pipeline", len(keys), len(keys), len(keys), took, took, {})


async def real_decision(url: str, customer_id: str) -> bytes | None:
    """The worker's decision for `customer_id`, as stored in Redis."""
    client = aioredis.from_url(url)
    try:
        raw = await client.get(offers_key(customer_id))
        return raw if isinstance(raw, bytes) else None
    finally:
        await client.aclose()


# ---------------------------------------------------------------- report


def report(
    runs: Sequence[Run], settings: Settings, args: argparse.Namespace, notes: list[str]
) -> None:
    """The table (bare Faust first: the ratios are to it) and the notes, on stdout."""
    bare = runs[0].rate
    batches = runs[0].extra.get("batches", 0.0)
    print()
    print(
        f"{args.events} events ({', '.join(f'{w:.0%} {t}' for t, w in EVENT_MIX)}), "
        f"{args.customers} customers, {settings.interactions_partitions} partitions, "
        f"batches of {settings.batch_size} / {settings.batch_within_s * 1000:.0f} ms"
    )
    print(f"{'path':<20} {'per second':>10} {'x bare faust':>13} {'wall incl. start':>17}  done")
    for run in runs:
        ratio = f"{run.rate / bare:.2f}" if bare else "-"
        done = "yes" if run.done else f"PARTIAL {run.count}/{run.target}"
        print(f"{run.name:<20} {run.rate:>10,.0f} {ratio:>13} {run.wall_s:>15.1f} s  {done}")
    if batches:
        print(f"bare faust: {batches:.0f} batches, {runs[0].count / batches:.0f} events each")
    for note in notes:
        print(note)


def summary(bare: Run, worker: Run, redis_run: Run, args: argparse.Namespace) -> dict[str, Any]:
    """The figures of one run, for `--json`."""
    x = worker.extra
    return {
        "events": args.events,
        "event_mix": dict(EVENT_MIX),
        "tailor_events_per_s": round(worker.rate, 1),
        "bare_faust_events_per_s": round(bare.rate, 1),
        "ratio": round(worker.rate / bare.rate, 3) if bare.rate else None,
        "raw_redis_writes_per_s": round(redis_run.rate, 1),
        "live_events": args.live,
        "live_rate_per_s": args.live_rate,
        "event_to_decision_p50_ms": round(x.get("live_p50_ms", 0.0), 1),
        "event_to_decision_p99_ms": round(x.get("live_p99_ms", 0.0), 1),
        "live_decided": int(x.get("live_decided", 0)),
        "live_missed": int(x.get("live_missed", 0)),
        "complete": bare.done and worker.done,
        "cores": os.cpu_count(),
    }


def worker_notes(worker: Run, redis_run: Run, payload: int) -> list[str]:
    """What the worker's own metrics say, and the share of its time Redis could explain."""
    x = worker.extra
    batches = x.get("tailor_batch_seconds_count", 0.0)
    busy = x.get("tailor_batch_seconds_sum", 0.0)
    fresh_n = x.get("tailor_decision_freshness_seconds_count", 0.0)
    fresh = x.get("tailor_decision_freshness_seconds_sum", 0.0) / fresh_n if fresh_n else 0.0
    decisions = x.get("tailor_decisions_written_total", 0.0)
    notes = [
        f"tailor worker: ready {x.get('ready_s', 0.0):.1f} s after start; "
        f"{batches:.0f} batches, mean {busy / batches * 1000 if batches else 0:.0f} ms "
        f"and {worker.count / batches if batches else 0:.0f} events each; process() busy "
        f"{busy / worker.steady_s if worker.steady_s else 0:.0%} of the steady wall time; "
        f"{decisions:.0f} decisions written",
        f"tailor worker: decision freshness mean {fresh:.1f} s -- BACKLOG latency (events "
        "were produced before the worker started), not serving latency; throughput is the "
        "figure",
    ]
    if x.get("live_decided"):
        notes.append(
            f"live: {x['live_decided']:.0f} events sent at a steady rate after the backlog, "
            f"each to its decision in Redis: p50 {x['live_p50_ms']:.0f} ms, p99 "
            f"{x['live_p99_ms']:.0f} ms ({x.get('live_missed', 0):.0f} never decided)"
        )
    if worker.steady_s and redis_run.rate:
        redis_s = decisions / redis_run.rate
        notes.append(
            f"raw redis: {redis_run.count} SET EX of {payload} bytes; the worker's "
            f"{decisions:.0f} decision writes would take {redis_s:.2f} s of Redis alone, "
            f"{redis_s / worker.steady_s:.1%} of its steady wall time"
        )
    return notes


# ---------------------------------------------------------------- main


def bench_settings() -> Settings:
    """A private stack on free ports (or the servers in TAILOR_KAFKA_BOOTSTRAP /
    TAILOR_REDIS_URL) and a unique app id, so runs never share consumer groups."""
    kafka_port, controller_port, redis_port, web_port = free_ports(4)
    return Settings(
        kafka_bootstrap=os.environ.get("TAILOR_KAFKA_BOOTSTRAP") or None,
        redis_url=os.environ.get("TAILOR_REDIS_URL") or None,
        kafka_port=kafka_port,
        kafka_controller_port=controller_port,
        redis_port=redis_port,
        worker_web_port=web_port,
        state_dir=Path(tempfile.mkdtemp(prefix="tailor-throughput-")),
        kafka_libs=Path(os.environ.get("TAILOR_KAFKA_LIBS") or REPO_ROOT / ".cache/kafka/libs"),
        app_id="tailor-bench-" + uuid.uuid4().hex[:8],
    )


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """Turn SIGINT/SIGTERM into KeyboardInterrupt, even where SIGINT was ignored."""
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--customers", type=int, default=5_000)
    parser.add_argument("--keep-stack", action="store_true", help="leave Kafka and Redis running")
    parser.add_argument("--timeout", type=float, default=600.0, help="per consumer, seconds")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--live",
        type=int,
        default=1_000,
        help="events sent live after the backlog, for event-to-decision latency (0: none)",
    )
    parser.add_argument("--live-rate", type=float, default=100.0, help="their rate, per second")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument(
        "--scale",
        type=lambda text: [int(n) for n in text.split(",") if n],
        default=[],
        metavar="N,N,...",
        help="also run N worker processes in one group on the same backlog, e.g. 1,2,4",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="FILE",
        help="sample the worker with py-spy into FILE (collapsed stacks); print the top frames",
    )
    child = parser.add_argument_group("internal: the bare Faust child process")
    child.add_argument("--bare-faust-child", action="store_true", help=argparse.SUPPRESS)
    for name, kind in (
        ("--broker", str),
        ("--app-id", str),
        ("--partitions", int),
        ("--batch-size", int),
        ("--within", float),
        ("--target", int),
        ("--status", str),
    ):
        child.add_argument(name, type=kind, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_faust_child:
        bare_faust_child(args)
        return

    # Ctrl-C and SIGTERM unwind through the `finally`s: children stopped, stack down.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    wall_started = time.monotonic()
    load_before = os.getloadavg()
    settings = bench_settings()
    logs = settings.state_dir / "bench"
    logs.mkdir(parents=True)
    # Faust's data dirs go under the state dir, not the working directory.
    (settings.state_dir / "faust").mkdir()
    os.environ["APP_DATADIR"] = str(settings.state_dir / "faust" / "{conf.name}-data")
    stack = Stack(settings)
    ok = False
    try:
        stack.up(progress=say)
        catalog = load_catalog(settings.catalog)
        events = make_events(args.events, args.customers, catalog, args.seed)
        produce_s, target = asyncio.run(produce(settings, events))
        say(f"produced {len(events)} events in {produce_s:.1f}s ({len(events) / produce_s:.0f}/s)")
        notes: list[str] = []
        if target != len(events):
            notes.append(f"note: the topic held {target} records (earlier runs); all were read")
        bare = run_bare_faust(settings, target, logs, args.timeout)
        say(f"bare faust: {bare.count} events, {bare.rate:.0f}/s")
        live = live_events(
            make_events(args.live, args.live, catalog, args.seed + 1), settings.app_id
        )

        def live_phase() -> dict[str, float]:
            if not live:
                return {}
            quiet_after = wait_quiet(f"http://127.0.0.1:{settings.worker_web_port}/metrics")
            say(f"live: worker idle {quiet_after:.1f} s after the backlog's last event counted")
            say(f"live: {len(live)} events at {args.live_rate:.0f}/s, each to its decision")
            took, missed = asyncio.run(
                event_to_decision(settings.kafka, settings.redis, live, args.live_rate, 30.0)
            )
            return {
                "live_p50_ms": percentile(took, 0.5) * 1000,
                "live_p99_ms": percentile(took, 0.99) * 1000,
                "live_decided": float(len(took)),
                "live_missed": float(missed),
            }

        worker = run_worker(settings, target, logs, args.timeout, args.profile, live_phase)
        say(f"tailor worker: {worker.count} events, {worker.rate:.0f}/s")
        scale = [run_workers(settings, n, target, logs, args.timeout) for n in args.scale]
        for run in scale:
            say(f"{run.name}: {run.count} committed, {run.rate:.0f}/s")
        payload = asyncio.run(real_decision(settings.redis, events[-1]["customer_id"]))
        payload = payload or decision_payload()
        keys = [f"tailor-bench:{settings.app_id}:{e['customer_id']}" for e in events]
        redis_run = asyncio.run(
            raw_redis(settings.redis, keys, payload, settings.batch_size, settings.offers_ttl_s)
        )
        say(f"raw redis: {redis_run.count} writes, {redis_run.rate:.0f}/s")
        load_after = os.getloadavg()
        notes += worker_notes(worker, redis_run, len(payload))
        if args.profile:
            notes += profile_headline(args.profile)
        notes.append(
            f"machine: {os.cpu_count()} cores, shared with other work (load average "
            f"{load_before[0]:.2f} before, {load_after[0]:.2f} after); Kafka, Redis, the "
            "consumer and this script all on it"
        )
        notes.append(f"command wall time: {time.monotonic() - wall_started:.0f} s")
        if scale:
            base = scale[0].rate
            notes.append(
                "scale-out (committed records/s of one group on the same backlog; "
                f"{os.cpu_count()} cores for Kafka, Redis and every worker): "
                + ", ".join(
                    f"{r.name} {r.rate:,.0f}" + (f" ({r.rate / base:.2f} x)" if base else "")
                    for r in scale
                )
            )
        if args.json:
            figures = summary(bare, worker, redis_run, args)
            figures["scale_out_per_s"] = {r.name: round(r.rate, 1) for r in scale}
            print(json.dumps(figures, indent=2))
        else:
            report([bare, worker, redis_run], settings, args, notes)
        ok = True
    finally:
        if args.keep_stack:
            say(
                f"stack kept (kafka {settings.kafka}, redis {settings.redis}, logs in {logs}); "
                f"stop it with: TAILOR_STATE_DIR={settings.state_dir} tailor stack down"
            )
        else:
            stack.down(progress=say)
            for data in ("kafka", "redis", "faust"):
                shutil.rmtree(settings.state_dir / data, ignore_errors=True)
            if ok:
                shutil.rmtree(settings.state_dir, ignore_errors=True)
            else:
                say(f"logs kept in {settings.state_dir}")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        say("interrupted")
        sys.exit(130)
