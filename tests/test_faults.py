"""Fault injection on the real stack: worker processes killed with SIGKILL, Redis and the
Kafka broker stopped and started mid-stream, hostile records, duplicates, a far-future clock.

Nothing is mocked (see `tests.faults_kit`). Each test has its own app id (consumer group,
tables) and its own workers; a test that stops a server also has its own Kafka and Redis
(on free ports), the others share one stack and start at the end of its topics. The
workload is answers only (purchases, no impressions, so the answer window adds no no's):
once the stream has drained, each customer's `answers` in Redis must equal exactly the
distinct answers sent to them. Every test prints its figures (lost,
twice, seconds; `pytest -s` shows them) and asserts exact counts, never wall-clock times.

`make test` runs the quick versions (small streams); `make faults` (TAILOR_FAULTS_FULL=1)
runs the same tests with streams of about 20,000 answers.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.structs import TopicPartition

from config.settings import Settings
from engine.dev.stack import Component, Stack, StackError
from engine.wire.topics import INTERACTIONS, changelogs, ensure_topics, new_topics, partitions
from engine.worker.sequence import STALL_S
from tests.faults_kit import (
    FULL,
    OFFER_IDS,
    STORE_ID,
    Record,
    Rig,
    SteadyProducer,
    Tally,
    answer_record,
    answer_stream,
    customer_ids,
    dead_letters_with,
    diagnose,
    expected_answers,
    far_future_times,
    headers_of,
    own_stack,
    poll_ready_during,
    produce_now,
    purchase,
    rig,
    say,
    sha256_hex,
    sized,
    wait_drained,
    watch_resumption,
)

pytestmark = [pytest.mark.e2e, pytest.mark.faults]
LONG = pytest.mark.timeout(1200 if FULL else 300)

# Quick: 40 customers x 10 answers; full: 1,000 x 20 = 20,000 answers.
CUSTOMERS = sized(40, 1000)
EACH = sized(10, 20)
DRAIN_TIMEOUT_S = sized(120, 300)
FAULT_AT = 0.3  # the fault comes once this share of the stream is in Kafka


@pytest.fixture(scope="module")
def shared_stack(make_stack_settings: Callable[[], Settings]) -> Iterator[Stack]:
    """One stack for the tests that restart no server (each has its own app id)."""
    settings = make_stack_settings()
    if not (settings.embedded_kafka and settings.embedded_redis):
        pytest.skip("fault tests start, stop and kill servers and workers of their own")
    with own_stack(settings) as stack:
        yield stack


@pytest.fixture
def app_rig(shared_stack: Stack, tmp_path: Path) -> Iterator[Rig]:
    """The test's own app (app id, workers) on the shared stack."""
    with rig(shared_stack, tmp_path) as r:
        yield r


@pytest.fixture
def fault_rig(make_stack_settings: Callable[[], Settings], tmp_path: Path) -> Iterator[Rig]:
    """The test's own app on a stack of its own (Kafka + Redis on free ports), for tests
    that stop and start a server."""
    settings = make_stack_settings()
    if not (settings.embedded_kafka and settings.embedded_redis):
        pytest.skip("fault tests start, stop and kill servers and workers of their own")
    with own_stack(settings) as stack, rig(stack, tmp_path) as r:
        yield r


def steady_stream(
    r: Rig, seconds_quick: float, seconds_full: float
) -> tuple[list[str], list[Record], float]:
    """Customers, their answers (round-robin) and the rate that spreads them over about
    the given number of seconds."""
    customers = customer_ids(r.prefix, CUSTOMERS, r.partitions)
    records = answer_stream(customers, EACH)
    return customers, records, len(records) / (seconds_full if FULL else seconds_quick)


def count_problems(r: Rig, tally: Tally) -> list[str]:
    """Lost or twice, and for lost answers whether they are in Kafka (so the worker, not
    the harness, lost them)."""
    if (tally.lost, tally.twice) == (0, 0):
        return []
    diagnose(r, tally)
    problem = f"expected 0 lost and 0 twice: {tally.describe()}"
    if tally.lost:
        in_kafka = r.in_kafka(list(tally.sent))
        short = sum(max(0, n - in_kafka.get(c, 0)) for c, n in tally.sent.items())
        problem += (
            f"; every answer sent is in {INTERACTIONS}, so the worker lost them"
            if short == 0
            else f"; {short} answers sent are missing from {INTERACTIONS} (harness?)"
        )
    return [problem]


def verdict(problems: list[str]) -> None:
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------------- worker deaths


@LONG
@pytest.mark.parametrize("replacement", ["in_place", "fresh"])
def test_the_only_worker_killed_mid_stream_is_replaced_and_every_answer_is_learned_once(
    app_rig: Rig, replacement: str
) -> None:
    """kill -9 at 30% of the stream, then a new process: `in_place` is the same member
    restarted (same worker id, web port and local RocksDB state, as systemd or a
    StatefulSet restarts it); `fresh` is a new member with an empty state dir (a new
    machine), which gets the partitions once the dead member's session times out."""
    r = app_rig
    customers, records, rate = steady_stream(r, 8, 50)
    expected = expected_answers(records, customers)
    worker = r.start_worker("a")
    worker.wait_ready()
    decisions = r.decisions(customers)
    producer = SteadyProducer(r.kafka, records, rate).start()

    producer.wait_acked(FAULT_AT)
    killed_at = worker.kill()
    baseline = decisions.raw()
    fresh = replacement == "fresh"
    new = r.start_worker("b" if fresh else "a", fresh_state=fresh)
    resumed = watch_resumption(decisions, killed_at, baseline)
    producer.join()
    tally = wait_drained(decisions, expected, DRAIN_TIMEOUT_S)

    what = f"kill -9 the only worker, replaced {replacement}"
    say(f"{what}: {producer.describe()}")
    say(f"{what}: takeover: {resumed.describe(r.partitions)}")
    say(f"{what}: {tally.describe()}")
    problems = [] if new.alive() else [f"the new worker died; log {new.log}"]
    try:  # trending and the crowd may still catch up behind the answers: ready by itself
        new.wait_ready(60)
    except AssertionError as exc:
        problems.append(f"the new worker is not ready again: {exc}")
    verdict(problems + count_problems(r, tally))


@LONG
def test_two_workers_one_killed_mid_stream_the_other_takes_over_and_every_answer_is_learned_once(
    app_rig: Rig,
) -> None:
    """The survivor takes the dead worker's partitions once its session times out (the
    takeover printed: from the kill until every partition has a new decision)."""
    r = app_rig
    customers, records, rate = steady_stream(r, 10, 50)
    expected = expected_answers(records, customers)
    a, b = r.start_worker("a"), r.start_worker("b")
    a.wait_ready()
    b.wait_ready()
    r.wait_group(2)  # both members have their partitions before the stream starts
    a.wait_ready()
    b.wait_ready()
    decisions = r.decisions(customers)
    producer = SteadyProducer(r.kafka, records, rate).start()

    producer.wait_acked(FAULT_AT)
    killed_at = a.kill()
    baseline = decisions.raw()
    resumed = watch_resumption(decisions, killed_at, baseline)
    producer.join()
    tally = wait_drained(decisions, expected, DRAIN_TIMEOUT_S)

    say(f"two workers, kill -9 one: {producer.describe()}")
    say(f"two workers, kill -9 one: takeover: {resumed.describe(r.partitions)}")
    say(f"two workers, kill -9 one: {tally.describe()}")
    problems = [] if b.alive() else [f"the surviving worker died; log {b.log}"]
    verdict(problems + count_problems(r, tally))


# ---------------------------------------------------------------------- one crowd


def test_two_workers_decide_with_one_crowd_learned_from_both_their_partitions(
    app_rig: Rig,
) -> None:
    """Each worker learns its own partitions' customers, but the crowd is learned in one
    place from both and read back by both: once the stream has drained and both hold the
    latest snapshot, their crowds predict the same P(yes) for every offer. (Were each to
    learn a crowd of its own partitions, they would differ, and each would count only
    its own answers.)"""
    r = app_rig
    customers = customer_ids(r.prefix, 16, r.partitions)
    records = answer_stream(customers, 4)
    a, b = r.start_worker("a"), r.start_worker("b")
    a.wait_ready()
    b.wait_ready()
    r.wait_group(2)
    a.wait_ready()
    b.wait_ready()
    produce_now(r.kafka, records)
    tally = wait_drained(r.decisions(customers), expected_answers(records, customers))
    verdict(count_problems(r, tally))

    snapshot = redis.Redis.from_url(r.settings.redis)
    context = {"store_id": STORE_ID, "channel": "web"}

    def crowds() -> tuple[int, list[dict[str, Any]]]:
        raw = snapshot.get(f"tailor:crowd:{r.settings.app_id}")
        owner_n = int(orjson.loads(raw)["n"]) if raw else -1  # type: ignore[arg-type]
        return owner_n, [w.crowd(context) for w in (a, b)]

    deadline = time.monotonic() + 60  # bounds a failing test only
    owner_n, (crowd_a, crowd_b) = crowds()
    while time.monotonic() < deadline and not (
        owner_n >= len(records) and crowd_a["answers"] == crowd_b["answers"] == owner_n
    ):
        time.sleep(0.5)
        owner_n, (crowd_a, crowd_b) = crowds()
    snapshot.close()
    say(
        f"one crowd: {len(records)} answers over {r.partitions} partitions; the owner's "
        f"snapshot counts {owner_n}, worker a decides with {crowd_a['answers']}, "
        f"b with {crowd_b['answers']}"
    )
    assert owner_n >= len(records), "the crowd learned every answer, from both workers"
    assert crowd_a["answers"] == crowd_b["answers"] == owner_n, "both read the latest crowd"
    untrained = 0.5  # P(yes) of an offer the crowd knows nothing about, at offset 0
    learned = {o: p for o, p in crowd_a["p_yes"].items() if abs(p - untrained) > 1e-6}
    assert learned, f"the crowd moved no offer: {crowd_a['p_yes']}"
    # Alike to rounding: each process sums an offer's tags in its own hash order.
    assert crowd_a["p_yes"] == pytest.approx(crowd_b["p_yes"], rel=1e-12, abs=1e-12)


# ---------------------------------------------------------------------- server outages


def outage(r: Rig, component: Component, seconds_quick: float, seconds_full: float) -> None:
    """Stop `component` at 30% of a steady stream for a while, then start it again: the
    worker must stay alive, say it is not ready during the outage and ready afterwards,
    and learn every answer once."""
    down_for = seconds_full if FULL else seconds_quick
    customers, records, rate = steady_stream(r, 16, 50)
    expected = expected_answers(records, customers)
    worker = r.start_worker("a")
    worker.wait_ready()
    decisions = r.decisions(customers)
    producer = SteadyProducer(r.kafka, records, rate).start()

    producer.wait_acked(FAULT_AT)
    stopped = r.stack.stop_component(component)
    assert stopped.state == "stopped", stopped
    seen, alive_during, reasons = poll_ready_during([worker], down_for)
    t_back = time.monotonic()
    started = r.stack.start_component(component)
    assert started.state == "running", started
    try:
        worker.wait_ready(120)
        ready_again = f"ready again {time.monotonic() - t_back:.1f}s after {component} was started"
    except AssertionError as exc:
        ready_again = f"never ready again: {str(exc).splitlines()[0]}"
    producer.join()
    tally = wait_drained(decisions, expected, DRAIN_TIMEOUT_S)

    what = f"{component} down {down_for:.0f}s"
    statuses = dict(seen[worker.name])
    say(f"{what}: {producer.describe()}")
    say(f"{what}: /ready during the outage {statuses} (None: no answer); {ready_again}")
    say(f"{what}: reasons given {sorted(reasons)}")
    say(f"{what}: {tally.describe()}")
    problems = []
    if not alive_during or not worker.alive():
        problems.append(f"the worker died (exit {worker.proc.returncode}); log {worker.log}")
    if not statuses.get(503) or statuses.get(200):
        problems.append(f"/ready not 503 throughout while {component} was down: {statuses}")
    try:  # trending and the crowd catch up behind the answers' backlog: ready by itself
        worker.wait_ready(60)
    except AssertionError as exc:
        problems.append(f"/ready not 200 again after the backlog drained ({ready_again}): {exc}")
    if down_for > STALL_S + 5 and "stalled tailor.learn" not in reasons:
        problems.append(f"records waited {down_for:.0f}s uncommitted, no stall named: {reasons}")
    verdict(problems + count_problems(r, tally))


@LONG
def test_redis_down_mid_stream_the_worker_waits_not_ready_and_then_learns_every_answer_once(
    fault_rig: Rig,
) -> None:
    outage(fault_rig, "redis", 25, 25)  # past STALL_S and a commit interval: a stall named


@LONG
def test_kafka_restarted_mid_stream_the_worker_waits_not_ready_and_then_learns_every_answer_once(
    fault_rig: Rig,
) -> None:
    outage(fault_rig, "kafka", 10, 20)


# ---------------------------------------------------------------------- hostile input


@LONG
def test_hostile_records_go_to_the_dead_letter_topic_and_every_answer_after_them_is_learned(
    app_rig: Rig,
) -> None:
    """A 1 MB value, a key that is not UTF-8 and a value that is not JSON, then a stream."""
    r = app_rig
    token = uuid.uuid4().hex
    customers = customer_ids(r.prefix, CUSTOMERS, r.partitions)  # every partition has some
    bad_key_customer = f"{r.prefix}-bad-key"
    big_id, bad_key_id = f"e-big-{token}", f"e-badkey-{token}"
    big = orjson.dumps(
        {**purchase(customers[0], OFFER_IDS[0], event_id=big_id), "padding": "x" * 1_000_000}
    )
    # Within the producer's max_request_size and the broker's message.max.bytes (both 1 MiB).
    assert 1_000_000 < len(big) < 1_048_576 - 1024
    bad_key = orjson.dumps(purchase(bad_key_customer, OFFER_IDS[1], event_id=bad_key_id))
    not_json = f"not json {{ {token}".encode()
    hostile = [
        Record(customers[0].encode(), big),
        Record(b"\xff\xfe", bad_key),
        Record(customers[1].encode(), not_json),
    ]
    stream = answer_stream(customers, EACH)
    expected = {**expected_answers(stream, customers), bad_key_customer: 0}
    worker = r.start_worker("a")
    worker.wait_ready()

    produce_now(r.kafka, hostile)
    producer = SteadyProducer(r.kafka, stream, len(stream) / sized(5, 40)).start()
    producer.join()
    tally = wait_drained(r.decisions(list(expected)), expected, DRAIN_TIMEOUT_S)
    tokens = [big_id.encode(), bad_key_id.encode(), not_json]
    letters = dead_letters_with(r.kafka, tokens, timeout=30)

    say(f"hostile records: {producer.describe()}")
    say(f"hostile records: {tally.describe()}")
    names = {big_id.encode(): "1 MB value", bad_key_id.encode(): "non-UTF-8 key"}
    names[not_json] = "not JSON"
    for t, name in names.items():
        got = letters.get(t)
        where = (
            f"reason {headers_of(got).get('tailor.reason')!r}, {len(got.value or b'')} bytes"
            if got
            else "missing"
        )
        say(f"hostile records: dead letter for the {name}: {where}")

    problems = [f"no dead letter for the {names[t]}" for t in tokens if t not in letters]
    for t, letter in letters.items():
        h = headers_of(letter)
        if not h.get("tailor.reason") or not h.get("tailor.source", "").startswith(
            INTERACTIONS + "/"
        ):
            problems.append(f"{names[t]}: dead letter without reason or source: {h}")
    got = letters.get(not_json)
    if got is not None and (headers_of(got).get("tailor.reason"), got.value) != (
        "not_json",
        not_json,
    ):
        problems.append(f"not JSON: expected reason not_json, byte for byte: {headers_of(got)}")
    if (got := letters.get(bad_key_id.encode())) is not None and got.value != bad_key:
        problems.append("non-UTF-8 key: the dead letter's value is not the record's, byte for byte")
    if (got := letters.get(big_id.encode())) is not None:
        h, value = headers_of(got), got.value or b""
        if len(value) > r.settings.dead_letter_max_bytes or not big.startswith(value):
            problems.append(f"1 MB value: not truncated to a prefix: {len(value)} bytes")
        if h.get("tailor.truncated", "").lower() not in ("true", "1", "yes"):
            problems.append(f"1 MB value: no tailor.truncated header: {h}")
        if h.get("tailor.length") != str(len(big)):
            problems.append(f"1 MB value: tailor.length is not {len(big)}: {h}")
        if h.get("tailor.sha256") != sha256_hex(big):
            problems.append(f"1 MB value: tailor.sha256 is not the payload's sha256: {h}")
    if not worker.alive():
        problems.append(f"the worker died; log {worker.log}")
    verdict(problems + count_problems(r, tally))


@LONG
def test_the_same_event_id_sent_three_times_is_learned_once(app_rig: Rig) -> None:
    """Three records per answer: two back to back (one batch, likely), one much later."""
    r = app_rig
    # Few answers per customer (any dedup window holds them); full: 19,500 records.
    customers = customer_ids(r.prefix, sized(40, 1300), r.partitions)
    answers = answer_stream(customers, 5)
    later = random.Random(7).sample(answers, len(answers))
    records = [a for a in answers for _ in range(2)] + later
    expected = expected_answers(records, customers)
    assert sum(expected.values()) * 3 == len(records)
    worker = r.start_worker("a")
    worker.wait_ready()

    producer = SteadyProducer(r.kafka, records, len(records) / sized(6, 40)).start()
    producer.join()
    tally = wait_drained(r.decisions(customers), expected, DRAIN_TIMEOUT_S)

    say(f"each event_id 3 times: {producer.describe()}")
    say(f"each event_id 3 times: {tally.describe()}")
    problems = [] if worker.alive() else [f"the worker died; log {worker.log}"]
    verdict(problems + count_problems(r, tally))


@LONG
def test_an_event_from_the_far_future_is_refused_or_clamped_and_never_enters_trending(
    app_rig: Rig,
) -> None:
    r = app_rig
    token = uuid.uuid4().hex
    customers = customer_ids(r.prefix, sized(20, 200), r.partitions)
    future_customer = f"{r.prefix}-future"
    future_id = f"e-future-{token}"
    future = purchase(future_customer, OFFER_IDS[0], event_id=future_id, ts="9999-12-31T00:00:00Z")
    stream = answer_stream(customers, 3)  # purchases at the same store, OFFER_IDS[0] too
    expected = expected_answers(stream, customers)
    worker = r.start_worker("a")
    worker.wait_ready()

    produce_now(r.kafka, [answer_record(future)])
    SteadyProducer(r.kafka, stream, len(stream) / 3).start().join()
    decisions = r.decisions([*customers, future_customer])
    tally = wait_drained(decisions, {**expected, future_customer: 0}, DRAIN_TIMEOUT_S)
    store = stable_store_state(decisions.store_state)
    letters = dead_letters_with(r.kafka, [future_id.encode()], timeout=20)
    letter = letters.get(future_id.encode())
    reason = headers_of(letter).get("tailor.reason") if letter else None
    far = far_future_times((store or {}).get("trending"), time.time())
    learned_future = tally.learned.get(future_customer, 0)
    valid = {c: tally.learned.get(c, 0) for c in customers}
    valid_lost = sum(max(0, n - valid[c]) for c, n in expected.items())
    valid_twice = sum(max(0, valid[c] - n) for c, n in expected.items())

    say(f"far-future ts: dead letter reason {reason!r}; learned {learned_future} time(s)")
    say(f"far-future ts: far-future times in trending {far[:5]} ({len(far)})")
    say(f"far-future ts: valid stream lost {valid_lost}, twice {valid_twice}")
    problems = []
    if letter is not None and (reason != "bad_timestamp" or learned_future != 0):
        problems.append(
            f"dead-lettered with reason {reason!r} (expected bad_timestamp), "
            f"learned {learned_future} time(s) (expected 0)"
        )
    if letter is None and learned_future != 1:
        problems.append(
            f"neither dead-lettered (bad_timestamp) nor clamped and learned once: learned "
            f"{learned_future} time(s)"
        )
    if store is None or not store.get("trending"):
        problems.append(f"no trending for s-1 in Redis: {store}")
    if far:
        problems.append(f"trending holds times in the far future: {far[:5]}")
    if (valid_lost, valid_twice) != (0, 0):
        problems.append(
            f"valid stream: expected 0 lost and 0 twice, got {valid_lost}, {valid_twice}"
        )
    verdict(problems)


def stable_store_state(
    read: Callable[[], dict[str, Any] | None], settle_s: float = 3.0, timeout: float = 60.0
) -> dict[str, Any] | None:
    """The store's snapshot once it has trending and has not changed for `settle_s`."""
    t0 = time.monotonic()
    last, since = read(), time.monotonic()
    while time.monotonic() - t0 < timeout:
        time.sleep(0.25)
        now = read()
        if now != last:
            last, since = now, time.monotonic()
        elif last and last.get("trending") and time.monotonic() - since >= settle_s:
            break
    return last


# ---------------------------------------------------------------------- the stack itself


def test_redis_keeps_its_data_across_a_stop_and_a_kill(
    make_stack_settings: Callable[[], Settings],
) -> None:
    settings = make_stack_settings()
    if not settings.embedded_redis:
        pytest.skip("TAILOR_REDIS_URL set: no local Redis to restart")
    stack = Stack(settings)
    key, crash_key = "tailor:offers:c-durable", "tailor:offers:c-crash"
    try:
        first = stack.start_component("redis", progress=lambda _: None)
        assert first.state == "running", first
        assert stack.component_status("kafka").state == "stopped", "only Redis was asked for"
        with redis.Redis.from_url(settings.redis) as client:
            assert client.set(key, b'{"answers": 3}')
        assert stack.stop_component("redis", progress=lambda _: None).state == "stopped"
        again = stack.start_component("redis", progress=lambda _: None)
        assert again.state == "running" and again.pid != first.pid
        with redis.Redis.from_url(settings.redis) as client:
            assert client.get(key) == b'{"answers": 3}', "a clean stop kept the decision"
            assert client.set(crash_key, b'{"answers": 1}')
        assert stack.stop_component("redis", kill=True, progress=lambda _: None).state == "stopped"
        stack.start_component("redis", progress=lambda _: None)
        with redis.Redis.from_url(settings.redis) as client:
            assert client.get(key) == b'{"answers": 3}'
            assert client.get(crash_key) == b'{"answers": 1}', (
                "an acknowledged write outlives a kill"
            )
            assert client.config_get("appendfsync") == {"appendfsync": "everysec"}
        assert (stack.state_dir / "redis" / "appendonlydir").is_dir()
        say("redis restart: both decisions survived a clean stop and a SIGKILL")
    finally:
        stack.down(progress=lambda _: None)


def test_kafka_keeps_topics_records_and_offsets_across_a_restart(
    make_stack_settings: Callable[[], Settings],
) -> None:
    settings = make_stack_settings().model_copy(update={"app_id": "durable"})
    if not settings.embedded_kafka:
        pytest.skip("TAILOR_KAFKA_BOOTSTRAP set: no local broker to restart")
    stack = Stack(settings)
    tp = TopicPartition(INTERACTIONS, 0)
    values = [f"record {i}".encode() for i in range(5)]
    try:
        stack.start_component("kafka", progress=lambda _: None)
        asyncio.run(produce_and_commit(settings, tp, values, commit=3))
        before = asyncio.run(topic_configs(settings))
        assert stack.stop_component("kafka", progress=lambda _: None).state == "stopped"
        assert stack.start_component("kafka", progress=lambda _: None).state == "running"
        after = asyncio.run(topic_configs(settings))
        committed, read_back = asyncio.run(committed_and_records(settings, tp))
    finally:
        stack.down(progress=lambda _: None)
    say(f"kafka restart: {len(after)} topics kept, committed offset {committed}")
    assert after == before
    for name, config in after.items():
        assert config["min.insync.replicas"] == "1", (name, config)
        is_changelog = name in changelogs(settings)
        assert (config["cleanup.policy"] == "compact") == is_changelog, (name, config)
    assert committed == 3
    assert read_back == values


async def produce_and_commit(
    settings: Settings, tp: TopicPartition, values: list[bytes], commit: int
) -> None:
    await ensure_topics(settings, with_changelogs=True)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka, acks="all")
    await producer.start()
    try:
        for v in values:
            await producer.send_and_wait(tp.topic, v, partition=tp.partition)
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka, group_id="durable-group", enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign([tp])
        await consumer.commit({tp: commit})
    finally:
        await consumer.stop()


async def topic_configs(settings: Settings) -> dict[str, dict[str, str]]:
    """min.insync.replicas and cleanup.policy of every topic Tailor creates."""
    names = [*partitions(settings), *changelogs(settings)]
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka)
    await admin.start()
    try:
        responses = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, n) for n in names]
        )
    finally:
        await admin.close()
    found: dict[str, dict[str, str]] = {}
    for response in responses:
        for _error, _message, _type, name, entries, *_ in response.resources:
            found[name] = {
                e[0]: e[1] for e in entries if e[0] in ("min.insync.replicas", "cleanup.policy")
            }
    return found


async def committed_and_records(settings: Settings, tp: TopicPartition) -> tuple[int, list[bytes]]:
    """The group's committed offset (asked until the restarted broker's group coordinator
    has loaded its offsets: it answers with none until then) and the records of `tp`."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka)
    await admin.start()
    try:
        for _ in range(120):
            if offsets := await admin.list_consumer_group_offsets("durable-group"):
                break
            await asyncio.sleep(0.5)
    finally:
        await admin.close()
    assert offsets, "the restarted broker lost the group's committed offsets"
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        batch = await consumer.getmany(tp, timeout_ms=10_000)
    finally:
        await consumer.stop()
    return offsets[tp].offset, [m.value for m in batch.get(tp, []) if m.value is not None]


def test_the_stack_refuses_unknown_components_and_impossible_replication(
    make_stack_settings: Callable[[], Settings],
) -> None:
    stack = Stack(make_stack_settings())
    with pytest.raises(StackError, match="no component 'zookeeper'"):
        stack.stop_component("zookeeper")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="TAILOR_MIN_INSYNC_REPLICAS=2 is more than"):
        new_topics(Settings(replication_factor=1, min_insync_replicas=2), {INTERACTIONS: 8})
