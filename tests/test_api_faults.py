"""The API under a server outage: a `tailor api` child process on a stack of its own, whose
Kafka, then Redis, is stopped and started again for real.

While Kafka is away, writes answer 503 JSON within the produce timeout (not the producer's
own 10 to 40 s) and /healthz says `kafka: false`; reads keep working. Once it is back,
writes answer 202 again, and every event answered 202 is in the topic. While Redis is away,
reads answer 503 JSON at once and /healthz says `redis: false`; writes keep working.
Each figure (seconds to answer during the outage, seconds to recover) is printed.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from config.settings import Settings
from engine.dev.processes import free_ports, start_role, stop, tail, wait_http
from engine.dev.servers import Server, lock, our_pid, terminate
from engine.dev.stack import Stack
from engine.wire.topics import INTERACTIONS

pytestmark = pytest.mark.e2e

SANITY_S = 30.0  # bounds a hang only; the figures are printed, not asserted
RECOVER_S = 90.0


@dataclass
class Api:
    url: str
    settings: Settings  # the stack's own settings (embedded servers), for stop/start
    stack: Stack
    proc: subprocess.Popen[bytes]
    log: Path

    def get(self, path: str) -> httpx.Response:
        return httpx.get(self.url + path, timeout=SANITY_S)

    def post_events(self, *events: dict[str, Any]) -> httpx.Response:
        return self.call("POST", "/v1/events", list(events))

    def call(self, method: str, path: str, body: object = None) -> httpx.Response:
        return httpx.request(method, self.url + path, json=body, timeout=SANITY_S)

    def stop_server(self, name: str) -> float:
        """Stop just Kafka or just Redis (the pid `up` started; SIGTERM, then SIGKILL)."""
        server: Server = getattr(self.stack, name).server
        started = time.monotonic()
        with lock(self.stack.state_dir):
            pid = our_pid(server)
            assert pid is not None, f"{name} is not running"
            terminate(server, pid)
        return time.monotonic() - started

    def start_servers(self) -> float:
        """`up` is idempotent: it starts whatever is stopped and waits until it answers."""
        started = time.monotonic()
        self.stack.up(progress=lambda line: print("  stack:", line))
        return time.monotonic() - started


def event(**changes: Any) -> dict[str, Any]:
    return {
        "event_id": "fault-" + uuid.uuid4().hex,
        "type": "impression",
        "customer_id": "c-fault",
        "offer_id": "fries",
        "store_id": "s-1",
        "ts": datetime.now(UTC).isoformat(),
        **changes,
    }


def timed(call: Callable[[], httpx.Response]) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    r = call()
    return r, time.monotonic() - started


def poll(what: str, check: Callable[[], bool], timeout: float = RECOVER_S) -> float:
    """Seconds until `check()` holds; fails after `timeout`."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{what}: not after {timeout:.0f} s")
        time.sleep(0.2)
    return time.monotonic() - started


def json_error(r: httpx.Response, status: int, says: str) -> str:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json"), r.headers
    message = r.json()["error"]
    assert says in message, message
    return str(message)


def health(api: Api) -> tuple[int, dict[str, Any]]:
    r = api.get("/healthz")
    return r.status_code, r.json()


@pytest.fixture(scope="module")
def api(
    make_stack_settings: Callable[[], Settings], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Api]:
    settings = make_stack_settings()
    if not (settings.embedded_kafka and settings.embedded_redis):
        pytest.skip("stops and restarts servers: needs the embedded stack, not external ones")
    stack = Stack(settings)
    logs = tmp_path_factory.mktemp("api-faults")
    (api_port,) = free_ports(1)
    api_settings = settings.model_copy(
        update={
            "kafka_bootstrap": settings.kafka,
            "redis_url": settings.redis,
            "api_port": api_port,
            "app_id": f"api-faults-{uuid.uuid4().hex[:8]}",
        }
    )
    try:
        stack.up()
        proc = start_role("api", api_settings, logs / "api.log")
        try:
            url = f"http://127.0.0.1:{api_port}"
            wait_http(url + "/healthz", proc, logs / "api.log")
            yield Api(url, settings, stack, proc, logs / "api.log")
        finally:
            stop(proc)
            print(f"--- api log: {logs / 'api.log'}")
    finally:
        stack.down()


async def event_ids_in_topic(bootstrap: str, wanted: set[str], within_s: float) -> set[str]:
    """The ids of `wanted` found in tailor.interactions, reading every partition from the start."""
    consumer = AIOKafkaConsumer(
        INTERACTIONS,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    found: set[str] = set()
    try:
        deadline = time.monotonic() + within_s
        while found != wanted and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    found |= {orjson.loads(record.value).get("event_id")} & wanted
    finally:
        await consumer.stop()
    return found


def test_kafka_outage_writes_fail_fast_and_recover(api: Api) -> None:
    accepted: set[str] = set()
    before = event()
    r = api.post_events(before)
    assert r.status_code == 202, r.text
    accepted.add(before["event_id"])
    assert health(api) == (200, {"status": "ok", "redis": True, "kafka": True})

    took_stop = api.stop_server("kafka")
    print(f"\nkafka stopped in {took_stop:.1f} s")
    try:
        answers = []
        for _ in range(3):
            r, took = timed(lambda: api.post_events(event()))
            answers.append(took)
            message = json_error(r, 503, "kafka unavailable: ")
            assert "same event_id is safe" in message
            assert r.headers["Retry-After"].isdigit()
            assert took < SANITY_S, f"POST /v1/events hung for {took:.1f} s"
        print(
            "POST /v1/events during the outage: 503 in", ", ".join(f"{t:.2f}" for t in answers), "s"
        )
        print("  e.g.", message)

        r, took = timed(lambda: api.call("DELETE", "/v1/customers/c-fault"))
        json_error(r, 503, "kafka unavailable: ")
        print(f"DELETE /v1/customers/c-fault during the outage: 503 in {took:.2f} s")
        r, took = timed(lambda: api.call("POST", "/v1/stores/s-1/context", {"queue_length": 2}))
        json_error(r, 503, "kafka unavailable: ")
        print(f"POST /v1/stores/s-1/context during the outage: 503 in {took:.2f} s")

        seen = poll("healthz says kafka false", lambda: health(api)[1]["kafka"] is False, 10)
        status, body = health(api)
        assert (status, body) == (503, {"status": "degraded", "redis": True, "kafka": False})
        r, took = timed(lambda: api.get("/healthz"))
        assert took < SANITY_S
        print(
            f"/healthz said kafka false {seen:.2f} s after the first check; answers in {took:.2f} s"
        )

        # Reads do not need Kafka.
        r = api.get("/v1/customers/c-fault/offers?store_id=s-1")
        assert r.status_code == 200, r.text
    finally:
        took_start = api.start_servers()
    print(f"kafka started again, ready in {took_start:.1f} s")

    def write_accepted() -> bool:
        again = event()
        r = api.post_events(again)
        assert r.status_code in (202, 503), r.text
        if r.status_code == 202:
            accepted.add(again["event_id"])
        return r.status_code == 202

    recovered = poll("POST /v1/events 202 again", write_accepted)
    healthy = poll("healthz 200 again", lambda: health(api)[0] == 200)
    print(
        f"after kafka was ready: POST 202 in {recovered:.2f} s, /healthz 200 {healthy:.2f} s later"
    )
    assert health(api) == (200, {"status": "ok", "redis": True, "kafka": True})

    # A 202 is an acknowledgement from the broker: each of those events is in the topic.
    found = asyncio.run(event_ids_in_topic(api.settings.kafka, accepted, 30))
    assert found == accepted, f"answered 202 but not in {INTERACTIONS}: {accepted - found}"
    print(f"all {len(accepted)} events answered 202 are in {INTERACTIONS}")
    assert "Traceback" not in tail(api.log, 400), tail(api.log)


def test_redis_outage_reads_answer_503_json_and_recover(api: Api) -> None:
    assert api.get("/v1/customers/c-fault/offers").status_code == 200
    took_stop = api.stop_server("redis")
    print(f"\nredis stopped in {took_stop:.1f} s")
    try:
        for path in (
            "/v1/customers/c-fault/offers",
            "/v1/customers/c-fault/offers?store_id=s-1",
            "/v1/stores/s-1/board",
        ):
            r, took = timed(lambda path=path: api.get(path))
            json_error(r, 503, "redis unavailable: ")
            assert r.headers["Retry-After"].isdigit()
            assert took < SANITY_S, f"GET {path} hung for {took:.1f} s"
            print(f"GET {path} during the outage: 503 in {took:.3f} s")
        print("  e.g.", r.json()["error"])

        seen = poll("healthz says redis false", lambda: health(api)[1]["redis"] is False, 10)
        assert health(api) == (503, {"status": "degraded", "redis": False, "kafka": True})
        print(f"/healthz said redis false {seen:.2f} s after the first check")

        # Writes do not need Redis.
        r = api.post_events(event())
        assert r.status_code == 202, r.text
    finally:
        took_start = api.start_servers()
    print(f"redis started again, ready in {took_start:.1f} s")
    recovered = poll(
        "GET offers 200 again",
        lambda: api.get("/v1/customers/c-fault/offers").status_code == 200,
    )
    healthy = poll("healthz 200 again", lambda: health(api)[0] == 200)
    print(
        f"after redis was ready: GET offers 200 in {recovered:.2f} s, /healthz 200 {healthy:.2f} s"
    )
    assert health(api) == (200, {"status": "ok", "redis": True, "kafka": True})
    assert "Traceback" not in tail(api.log, 400), tail(api.log)


def test_an_api_started_while_kafka_is_away_serves_reads_and_writes_once_it_is_back(
    api: Api,
) -> None:
    (port,) = free_ports(1)
    settings = api.settings.model_copy(
        update={"kafka_bootstrap": api.settings.kafka, "redis_url": api.settings.redis,
                "api_port": port}
    )  # fmt: skip
    api.stop_server("kafka")
    log = api.log.with_name("api-late.log")
    proc = start_role("api", settings, log)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http(url + "/v1/stores", proc, log)  # up, though Kafka is not
        late = Api(url, api.settings, api.stack, proc, log)
        assert health(late) == (503, {"status": "degraded", "redis": True, "kafka": False})
        assert late.get("/v1/customers/c-fault/offers").status_code == 200
        r, took = timed(lambda: late.post_events(event()))
        json_error(r, 503, "kafka unavailable: ")
        print(f"\nan API started without Kafka: up, POST 503 in {took:.2f} s")
        api.start_servers()
        recovered = poll(
            "POST 202 once Kafka is up", lambda: late.post_events(event()).status_code == 202
        )
        poll("healthz 200", lambda: health(late)[0] == 200)
        print(f"  POST 202 {recovered:.2f} s after Kafka was ready")
    finally:
        stop(proc)
        api.start_servers()
