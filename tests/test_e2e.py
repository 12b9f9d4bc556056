"""End to end through a real Kafka broker and a real Redis server, both started by the
`stack_settings` fixture, with `tailor worker` and `tailor api` as child processes.

Nothing here is faked: events go over HTTP to the API, through Kafka to the Faust worker,
and decisions come back from Redis over HTTP.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from config.catalog import load_catalog
from config.settings import Settings
from engine.wire.topics import DEAD_LETTER, INTERACTIONS
from models.context import daypart_at
from models.offer import DAYPARTS
from tests.conftest import Pipeline, eventually, running_pipeline

pytestmark = pytest.mark.e2e
API_KEY = "e2e-" + uuid.uuid4().hex
AUTH = {"Authorization": f"Bearer {API_KEY}"}
CATALOG = load_catalog()


@pytest.fixture(scope="module")
def pipeline(
    stack_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pipeline]:
    with running_pipeline(
        stack_settings,
        tmp_path_factory.mktemp("logs"),
        "tailor-e2e",
        explore_rate=0.0,  # deterministic rankings; exploration has unit tests
        offers_per_decision=24,  # the whole ranking, so a test can pick the last offer
        answer_window_s=2.0,  # unanswered impressions become no's quickly
        api_keys=(API_KEY,),
        holdout_share=0.0,  # everyone personalized; holdout has unit tests
    ) as pipeline:
        yield pipeline


@pytest.fixture
async def http(pipeline: Pipeline) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=pipeline.api, timeout=10, headers=AUTH) as client:
        yield client


@pytest.fixture
async def redis(pipeline: Pipeline) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(pipeline.settings.redis)
    yield client
    await client.aclose()


def event(customer_id: str, offer_id: str, type_: str = "purchase", **extra: Any) -> dict[str, Any]:
    return {
        "event_id": "e-" + uuid.uuid4().hex,
        "type": type_,
        "customer_id": customer_id,
        "offer_id": offer_id,
        "ts": datetime.now(UTC).isoformat(),
        **extra,
    }


async def post_events(http: httpx.AsyncClient, events: list[dict[str, Any]]) -> None:
    response = await http.post("/v1/events", json=events)
    assert response.status_code == 202, response.text
    assert response.json()["accepted"] == len(events)


async def customer_decision(
    http: httpx.AsyncClient,
    redis: aioredis.Redis,
    customer_id: str,
    after_event: str,
    **params: Any,
) -> dict[str, Any]:
    """The customer's offers over HTTP (tailored at request time from their taste), once
    the worker has learned `after_event`, with the worker's decision's `answers`. The
    public response carries no history (no last event, no answer count), so both come
    from the worker's record in Redis."""

    async def probe() -> dict[str, Any] | None:
        raw = await redis.get(f"tailor:offers:{customer_id}")
        stored = orjson.loads(raw) if raw else {}
        if stored.get("event_id") != after_event:
            return None
        r = await http.get(f"/v1/customers/{customer_id}/offers", params=params)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        assert "answers" not in body and "event_id" not in body, body
        # Made for this request ("r-"), once the store's shelf is there: until then (a
        # store's first minutes) the API serves the stored decision ("d-").
        if body["source"] != "customer" or not body["decision_id"].startswith("r-"):
            return None
        return {**body, "answers": stored["answers"]}

    return await eventually(probe, f"{customer_id}'s decision after {after_event}")


async def test_a_fresh_customer_who_keeps_buying_their_last_offer_sees_it_in_their_top_3(
    http: httpx.AsyncClient,
    redis: aioredis.Redis,
) -> None:
    cid = "c-" + uuid.uuid4().hex[:10]
    where = {"store_id": "s-1", "channel": "web"}
    first = event(cid, "coffee", "impression", **where)
    await post_events(http, [first])
    decision = await customer_decision(http, redis, cid, first["event_id"], k=24, **where)
    ranking = [o["offer_id"] for o in decision["offers"]]
    last = ranking[-1]
    assert last not in ranking[:3]

    for purchase_no in range(1, 16):
        shown = await http.get(f"/v1/customers/{cid}/offers", params={"k": 3, **where})
        decision_id = shown.json()["decision_id"]
        answer = event(cid, last, "purchase", decision_id=decision_id, value=1.0, **where)
        sent = time.monotonic()
        await post_events(http, [answer])
        top3 = await customer_decision(http, redis, cid, answer["event_id"], k=3, **where)
        seen = time.monotonic() - sent
        if last in [o["offer_id"] for o in top3["offers"]]:
            print(
                f"{last} (last of {len(ranking)}) reached the top 3 after {purchase_no} "
                f"purchases; decision visible over HTTP {seen * 1000:.0f} ms after the event"
            )
            return
    raise AssertionError(f"{last} still not in the top 3 after 15 purchases: {top3['offers']}")


async def test_a_till_feed_of_the_last_offer_brings_it_into_the_top_3_within_5_purchases(
    http: httpx.AsyncClient,
    redis: aioredis.Redis,
) -> None:
    """A till reports an impression and a purchase per sale, no decision id, all in one
    go (one batch: the worker decides once, after all of them): a purchase is a choice
    among what was on sale, so the offer ranked last rises above what was passed over."""
    where = {"store_id": "s-1", "channel": "web"}
    all_day = {
        o.offer_id
        for o in CATALOG.offers.values()
        if all(o in CATALOG.available("s-1", d) for d in DAYPARTS)
    }
    cid = "c-" + uuid.uuid4().hex[:10]
    first = event(cid, "coffee", "impression", **where)
    await post_events(http, [first])
    decision = await customer_decision(http, redis, cid, first["event_id"], k=24, **where)
    ranking = [o["offer_id"] for o in decision["offers"]]
    last = [o for o in ranking if o in all_day][-1]  # on sale whenever this runs
    assert last not in ranking[:3]
    sales = [
        event(cid, last, kind, **where) for _ in range(5) for kind in ("impression", "purchase")
    ]
    await post_events(http, sales)
    after = await customer_decision(http, redis, cid, sales[-1]["event_id"], k=3, **where)
    assert after["answers"] == 5
    assert last in [o["offer_id"] for o in after["offers"]], (last, after["offers"])


async def test_the_decision_in_redis_carries_id_scores_reasons_and_propensities(
    http: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    cid = "c-" + uuid.uuid4().hex[:10]
    first = event(cid, "fries", "click", store_id="s-2", channel="app")
    await post_events(http, [first])
    await customer_decision(http, redis, cid, first["event_id"], store_id="s-2")
    raw = await redis.get(f"tailor:offers:{cid}")
    assert raw is not None
    decision = orjson.loads(raw)
    assert decision["decision_id"].startswith("d-")
    assert decision["customer_id"] == cid and decision["answers"] == 1
    assert decision["offers"]
    for offer in decision["offers"]:
        assert isinstance(offer["score"], float) and offer["score"] > 0
        assert offer["reasons"] and all(isinstance(r, str) for r in offer["reasons"])
        assert 0 < offer["propensity"] <= 1
        assert offer["offer_id"] in CATALOG.offers
    assert 0 < await redis.ttl(f"tailor:offers:{cid}") <= 7 * 86400


async def board_at(http: httpx.AsyncClient, store_id: str, temperature_c: float) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        r = await http.get(f"/v1/stores/{store_id}/board")
        if r.status_code != 200:
            return None
        body: dict[str, Any] = r.json()
        return body if body["context"]["temperature_c"] == temperature_c else None

    return await eventually(probe, f"{store_id}'s board at {temperature_c} C")


def count_tagged(board: dict[str, Any], tag: str) -> int:
    return sum(tag in CATALOG.offers[o["offer_id"]].tags for o in board["offers"][:6])


async def test_a_store_board_follows_its_weather(http: httpx.AsyncClient) -> None:
    hot = {"weather": "sunny", "temperature_c": 35.0, "queue_length": 1}
    r = await http.post("/v1/stores/s-2/context", json=hot)
    assert r.status_code == 202, r.text
    hot_board = await board_at(http, "s-2", 35.0)
    cold = {"weather": "snow", "temperature_c": -3.0, "queue_length": 1}
    r = await http.post("/v1/stores/s-2/context", json=cold)
    assert r.status_code == 202, r.text
    cold_board = await board_at(http, "s-2", -3.0)

    assert [o["offer_id"] for o in hot_board["offers"][:6]] != [
        o["offer_id"] for o in cold_board["offers"][:6]
    ]
    assert count_tagged(hot_board, "cold") > count_tagged(hot_board, "hot")
    assert count_tagged(cold_board, "hot") > count_tagged(cold_board, "cold")
    assert any("hot_weather" in o["reasons"] for o in hot_board["offers"])
    assert any("cold_weather" in o["reasons"] for o in cold_board["offers"])


async def shelf_at(redis: aioredis.Redis, store_id: str, temperature_c: float) -> dict[str, Any]:
    """The store's shelf the API tailors from, once it holds this temperature."""

    async def probe() -> dict[str, Any] | None:
        raw = await redis.get(f"tailor:shelf:{store_id}")
        shelf: dict[str, Any] = orjson.loads(raw)["shelves"]["engine-v1"] if raw else {}
        return shelf if shelf.get("context", {}).get("temperature_c") == temperature_c else None

    return await eventually(probe, f"{store_id}'s shelf at {temperature_c} C")


async def test_the_same_customer_at_a_hot_and_a_cold_store_gets_each_stores_offers_now(
    http: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    """Decided at request time: a customer taught at s-1 is asked for at a hot s-2 and a
    cold s-3, and gets different offers at each, every one sold there in its daypart now,
    following each store's weather, with what they keep buying at both."""
    weather = {"s-2": ("sunny", 36.5), "s-3": ("snow", -4.5)}
    for store_id, (kind, temperature_c) in weather.items():
        r = await http.post(
            f"/v1/stores/{store_id}/context",
            json={"weather": kind, "temperature_c": temperature_c, "queue_length": 1},
        )
        assert r.status_code == 202, r.text
    shelves = {s: await shelf_at(redis, s, t) for s, (_, t) in weather.items()}
    now = daypart_at(time.time(), CATALOG.stores["s-1"].utc_offset_h)
    on_sale = [CATALOG.available("s-1", now)] + [
        CATALOG.available(s, shelves[s]["context"]["daypart"]) for s in weather
    ]
    everywhere = [o for o in on_sale[0] if all(o in menu for menu in on_sale)]
    neutral = [o.offer_id for o in everywhere if not {"hot", "cold"} & o.tags]
    favourite = (neutral or [o.offer_id for o in everywhere])[-1]
    cid = "c-" + uuid.uuid4().hex[:10]
    where = {"store_id": "s-1", "channel": "web"}
    sales = [
        event(cid, favourite, kind, **where)
        for _ in range(5)
        for kind in ("impression", "purchase")
    ]
    await post_events(http, sales)
    await customer_decision(http, redis, cid, sales[-1]["event_id"])

    offers = {}
    for store_id in weather:
        r = await http.get(
            f"/v1/customers/{cid}/offers", params={"store_id": store_id, "channel": "app", "k": 6}
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["source"] == "customer" and body["decision_id"].startswith("r-"), body
        assert body["store_id"] == store_id and body["channel"] == "app"
        offers[store_id] = body["offers"]
        daypart = shelves[store_id]["context"]["daypart"]
        sold = {o.offer_id for o in CATALOG.available(store_id, daypart)}
        assert {o["offer_id"] for o in body["offers"]} <= sold, (store_id, daypart)
        assert favourite in [o["offer_id"] for o in body["offers"]], (store_id, body["offers"])
    hot, cold = offers["s-2"], offers["s-3"]
    assert [o["offer_id"] for o in hot] != [o["offer_id"] for o in cold]
    assert count_tagged({"offers": hot}, "cold") > count_tagged({"offers": cold}, "cold")
    assert count_tagged({"offers": cold}, "hot") > count_tagged({"offers": hot}, "hot")
    assert any("hot_weather" in o["reasons"] for o in hot)
    assert any("cold_weather" in o["reasons"] for o in cold)


async def test_an_unknown_customer_gets_the_store_board_then_the_global_list(
    http: httpx.AsyncClient,
) -> None:
    r = await http.post("/v1/stores/s-3/context", json={"temperature_c": 20.5})
    assert r.status_code == 202
    board = await board_at(http, "s-3", 20.5)
    stranger = "never-seen-" + uuid.uuid4().hex
    r = await http.get(f"/v1/customers/{stranger}/offers", params={"store_id": "s-3", "k": 4})
    assert r.status_code == 200
    body = r.json()
    assert body["source"] == "store"
    assert body["decision_id"].startswith("b-")
    assert len(body["offers"]) == 4
    assert {o["offer_id"] for o in body["offers"]} <= {o["offer_id"] for o in board["offers"]}

    r = await http.get(f"/v1/customers/{stranger}/offers", params={"k": 5})
    body = r.json()
    assert body["source"] == "global" and len(body["offers"]) == 5
    assert all(o["offer_id"] in CATALOG.offers and o["reasons"] for o in body["offers"])


async def test_malformed_events_go_to_the_dead_letter_topic_and_the_worker_goes_on(
    pipeline: Pipeline, redis: aioredis.Redis
) -> None:
    token = uuid.uuid4().hex
    good = event("c-after-" + token, "lemonade", store_id="s-1")
    bad: dict[bytes, str] = {
        f"not json at all {token}".encode(): "not_json",
        orjson.dumps({"event_id": token, "type": "purchase"}): "missing_field",
        orjson.dumps({**event("c-" + token, "fries"), "value": "cheap"}): "wrong_type",
        orjson.dumps(event("c-" + token, "fries", "teleport")): "unknown_type",
        orjson.dumps(event("c-" + token, "caviar-" + token)): "unknown_offer",
    }
    producer = AIOKafkaProducer(bootstrap_servers=pipeline.settings.kafka)
    await producer.start()
    try:
        for raw in bad:
            await producer.send_and_wait(INTERACTIONS, raw, key=b"c-" + token.encode())
        await producer.send_and_wait(
            INTERACTIONS, orjson.dumps(good), key=good["customer_id"].encode()
        )
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        DEAD_LETTER,
        bootstrap_servers=pipeline.settings.kafka,
        auto_offset_reset="earliest",
        group_id=None,
    )
    await consumer.start()
    found: dict[bytes, dict[str, bytes]] = {}
    try:
        deadline = time.monotonic() + 90
        while len(found) < len(bad) and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for record in records:
                    if record.value in bad:
                        found[record.value] = dict(record.headers)
    finally:
        await consumer.stop()
    assert set(found) == set(bad), (
        "every malformed event reaches the dead-letter topic, byte for byte"
    )
    for raw, reason in bad.items():
        headers = found[raw]
        assert headers["tailor.reason"].decode() == reason
        assert headers["tailor.detail"]
        assert headers["tailor.source"].decode().startswith(INTERACTIONS + "/")

    async def decided() -> bytes | None:
        value: bytes | None = await redis.get("tailor:offers:" + good["customer_id"])
        return value

    await eventually(decided, "the valid event after the bad ones to be decided")

    async with httpx.AsyncClient() as client:
        text = (await client.get(pipeline.worker_metrics)).text
    dead = {
        s.labels["reason"]: s.value
        for family in text_string_to_metric_families(text)
        if family.name == "tailor_dead_letters"
        for s in family.samples
        if s.name == "tailor_dead_letters_total"
    }
    assert set(bad.values()) <= set(dead)


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "says"),
    [
        ("POST", "/v1/events", b"{oops", 400, "not JSON"),
        ("POST", "/v1/events", orjson.dumps({"type": "purchase"}), 400, "event_id: Field required"),
        ("POST", "/v1/events", orjson.dumps([]), 400, "at least one event"),
        (
            "POST",
            "/v1/events",
            orjson.dumps([event("c", "fries"), event("c", "truffle")]),
            400,
            "event 1: offer_id",
        ),
        (
            "POST",
            "/v1/events",
            orjson.dumps(event("c", "fries", "hug")),
            400,
            "type: Input should be",
        ),
        ("POST", "/v1/events", orjson.dumps([event("c", "fries")] * 1001), 413, "at most 1000"),
        (
            "POST",
            "/v1/stores/s-1/context",
            orjson.dumps({"temperature_c": 500}),
            400,
            "temperature_c",
        ),
        (
            "POST",
            "/v1/stores/s-9/context",
            orjson.dumps({"temperature_c": 5}),
            404,
            "no store 's-9'",
        ),
        ("GET", "/v1/stores/s-9/board", None, 404, "no store 's-9'"),
        ("GET", "/v1/customers/c/offers?k=0", None, 400, "k: Input should be greater"),
        ("GET", "/v1/customers/c/offers?store_id=nowhere", None, 404, "no store 'nowhere'"),
    ],
)
async def test_bad_http_requests_get_a_4xx_that_says_what_is_wrong(
    http: httpx.AsyncClient, method: str, path: str, body: bytes | None, status: int, says: str
) -> None:
    r = await http.request(method, path, content=body, headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    assert says in r.json()["error"]


async def test_catalog_health_and_metrics_endpoints(http: httpx.AsyncClient) -> None:
    stores = (await http.get("/v1/stores")).json()["stores"]
    offers = (await http.get("/v1/offers")).json()["offers"]
    assert {s["store_id"] for s in stores} == set(CATALOG.stores)
    assert len(offers) == len(CATALOG.offers)
    assert (await http.get("/healthz")).json()["redis"] is True
    text = (await http.get("/metrics")).text
    assert "tailor_api_requests_total" in text and "tailor_api_request_seconds" in text


async def test_a_customers_model_survives_a_worker_restart(
    pipeline: Pipeline, http: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    """The model lives in a changelog-backed Faust table: a new worker process recovers it."""
    cid = "c-" + uuid.uuid4().hex[:10]
    where = {"store_id": "s-1", "channel": "app"}
    for _ in range(3):
        answer = event(cid, "latte", "purchase", **where)
        await post_events(http, [answer])
        before = await customer_decision(http, redis, cid, answer["event_id"], **where)
    assert before["answers"] == 3

    pipeline.restart_worker()

    answer = event(cid, "latte", "purchase", **where)
    await post_events(http, [answer])
    after = await customer_decision(http, redis, cid, answer["event_id"], **where)
    assert after["answers"] == 4, "the restarted worker learned on top of the recovered model"


async def test_one_crowd_learns_every_answer_and_a_restarted_worker_keeps_it(
    pipeline: Pipeline, http: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    """The crowd is learned in one place from every worker's answers and snapshotted in
    Redis, where every worker reads it back; a restart continues it, not starts over."""
    key = f"tailor:crowd:{pipeline.settings.app_id}"

    async def crowd_answers() -> int:
        raw = await redis.get(key)
        return int(orjson.loads(raw)["n"]) if raw else 0

    async def at_least(n: int) -> int | None:
        got = await crowd_answers()
        return got if got >= n else None

    start = await crowd_answers()
    where = {"store_id": "s-2", "channel": "web"}
    cid = "c-" + uuid.uuid4().hex[:10]
    await post_events(http, [event(cid, "latte", "purchase", **where) for _ in range(5)])
    learned = await eventually(lambda: at_least(start + 5), "the crowd to learn 5 answers")
    used = await eventually(
        lambda: _at_least_gauge(pipeline, learned), "the worker to decide with that crowd"
    )
    assert used >= learned

    pipeline.restart_worker()
    await post_events(http, [event(cid, "hot-chocolate", "purchase", **where) for _ in range(3)])
    await eventually(lambda: at_least(learned + 3), "the crowd to go on after a restart")


async def _at_least_gauge(pipeline: Pipeline, n: int) -> float | None:
    got = await worker_counter(pipeline, "tailor_crowd_answers")
    return got if got >= n else None


async def worker_counter(pipeline: Pipeline, name: str, **labels: str) -> float:
    async with httpx.AsyncClient() as client:
        text = (await client.get(pipeline.worker_metrics)).text
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


async def test_an_impression_nobody_answers_becomes_a_no_even_if_the_customer_never_returns(
    pipeline: Pipeline, http: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    before = await worker_counter(pipeline, "tailor_answers_total", answer="no", source="window")
    cid = "c-" + uuid.uuid4().hex[:10]
    shown = [
        event(cid, o, "impression", store_id="s-3", channel="kiosk") for o in ("cola", "fries")
    ]
    await post_events(http, shown)
    await customer_decision(http, redis, cid, shown[-1]["event_id"], store_id="s-3")

    async def learned_nos() -> float | None:
        now = await worker_counter(pipeline, "tailor_answers_total", answer="no", source="window")
        return now if now >= before + 2 else None

    await eventually(learned_nos, "the two unanswered impressions to be learned as no's")


async def test_writes_without_a_key_get_401_and_with_one_202(pipeline: Pipeline) -> None:
    async with httpx.AsyncClient(base_url=pipeline.api, timeout=10) as anonymous:
        r = await anonymous.post("/v1/events", json=event("c-anon", "fries"))
        assert r.status_code == 401
        assert r.headers["www-authenticate"] == "Bearer"
        r = await anonymous.delete("/v1/customers/c-anon")
        assert r.status_code == 401
        assert (await anonymous.get("/v1/stores/s-1/board")).status_code in (200, 503)
        r = await anonymous.post("/v1/events", json=event("c-anon", "fries"), headers=AUTH)
        assert r.status_code == 202


async def test_forget_me_leaves_nothing_behind(
    pipeline: Pipeline, http: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    cid = "c-forget-" + uuid.uuid4().hex[:10]
    where = {"store_id": "s-2", "channel": "web"}
    sent = [
        event(cid, "fries", "impression", **where),
        event(cid, "cola", "impression", **where),
        event(cid, "fries", "purchase", **where),
        event(cid, "sundae", "impression", **where),  # an open question
    ]
    await post_events(http, sent)
    before = await customer_decision(http, redis, cid, sent[-1]["event_id"], **where)
    assert before["answers"] == 1

    r = await http.delete(f"/v1/customers/{cid}")
    assert r.status_code == 202
    receipt = r.json()
    assert receipt["customer_id"] == cid and receipt["request_id"].startswith("f-")

    async def gone() -> bool:
        r = await http.get(f"/v1/customers/{cid}/offers", params=where)
        keys = [k async for k in redis.scan_iter(match=f"*{cid}*")]
        forgotten = await worker_counter(pipeline, "tailor_customers_forgotten_total")
        return r.json()["source"] != "customer" and not keys and forgotten >= 1

    await eventually(gone, f"{cid} to be forgotten")
    assert (await http.get(f"/v1/customers/{cid}/offers", params=where)).json()["source"] == "store"

    again = event(cid, "cola", "purchase", **where)
    await post_events(http, [again])
    after = await customer_decision(http, redis, cid, again["event_id"], **where)
    assert after["answers"] == 1, "a forgotten customer starts again from nothing"


def exposed_names(text: str) -> set[str]:
    """Every series name a /metrics page declares, with the suffixes its type implies."""
    suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"]}
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names.update(family.name + s for s in suffixes.get(family.type, []))
        names.update(s.name for s in family.samples)
    return names


async def test_every_metric_the_dashboard_charts_is_exposed(
    pipeline: Pipeline, http: httpx.AsyncClient
) -> None:
    dashboard = orjson.loads(
        (Path(__file__).parents[1] / "config/grafana/tailor.json").read_bytes()
    )
    queried = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\btailor_[a-z_]+", target["expr"])
    }
    assert len(queried) >= 12
    async with httpx.AsyncClient() as client:
        worker = (await client.get(pipeline.worker_metrics)).text
    api = (await http.get("/metrics")).text
    missing = queried - exposed_names(worker) - exposed_names(api)
    assert not missing, f"the dashboard charts metrics nothing exposes: {sorted(missing)}"


async def test_a_login_merges_what_the_anonymous_session_taught_into_the_customer(
    pipeline: Pipeline, http: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    session = "anon-" + uuid.uuid4().hex[:10]
    cid = "c-login-" + uuid.uuid4().hex[:10]
    where = {"store_id": "s-1", "channel": "web"}
    first = event(session, "coffee", "impression", **where)
    await post_events(http, [first])
    ranking = await customer_decision(http, redis, session, first["event_id"], k=24, **where)
    favourite = ranking["offers"][-1]["offer_id"]
    for _ in range(4):
        bought = event(session, favourite, "purchase", **where)
        await post_events(http, [bought])
    taught = await customer_decision(http, redis, session, bought["event_id"], **where)
    assert taught["answers"] == 4

    login = event(cid, "coffee", "impression", session_id=session, **where)
    await post_events(http, [login])

    async def merged() -> dict[str, Any] | None:
        raw = await redis.get(f"tailor:offers:{cid}")
        if not raw or orjson.loads(raw)["answers"] != 4:
            return None
        r = await http.get(f"/v1/customers/{cid}/offers", params={"k": 3, **where})
        body: dict[str, Any] = r.json()
        return body if body["source"] == "customer" else None

    decision = await eventually(merged, f"{session} to be merged into {cid}")
    assert favourite in [o["offer_id"] for o in decision["offers"]]
    assert await redis.get(f"tailor:offers:{session}") is None
    assert await worker_counter(pipeline, "tailor_sessions_merged_total") >= 1


async def test_a_malformed_command_is_dead_lettered_and_the_worker_goes_on(
    pipeline: Pipeline, http: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    token = uuid.uuid4().hex
    bad = {
        orjson.dumps({"customer_id": "c-" + token}): "handover",  # no session, no context
        b"not json " + token.encode(): "forget",
        orjson.dumps({"customer_id": "c-" + token, "x": token}): "teleport",
    }
    producer = AIOKafkaProducer(bootstrap_servers=pipeline.settings.kafka)
    await producer.start()
    try:
        for raw, name in bad.items():
            await producer.send_and_wait(
                INTERACTIONS,
                raw,
                key=b"c-" + token.encode(),
                headers=[("tailor.command", name.encode())],
            )
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        DEAD_LETTER, bootstrap_servers=pipeline.settings.kafka, auto_offset_reset="earliest"
    )
    await consumer.start()
    found: dict[bytes, str] = {}
    try:
        deadline = time.monotonic() + 90
        while len(found) < len(bad) and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for record in records:
                    if record.value in bad:
                        found[record.value] = dict(record.headers)["tailor.reason"].decode()
    finally:
        await consumer.stop()
    assert found == dict.fromkeys(bad, "bad_command")
    after = event("c-after-" + token, "cola", "purchase", store_id="s-1")
    await post_events(http, [after])
    await customer_decision(http, redis, after["customer_id"], after["event_id"], store_id="s-1")


async def test_served_decisions_and_their_answers_are_logged_for_off_policy_evaluation(
    http: httpx.AsyncClient, pipeline: Pipeline, tmp_path: Path, redis: aioredis.Redis
) -> None:
    """What the API serves goes to tailor.decisions (slots, propensities, policy); a
    purchase carrying its decision_id joins it; the export replays off-policy."""
    from engine.replay.served_log import export
    from engine.replay.sources.decisions import read_decisions, replay_decisions

    cid = "c-" + uuid.uuid4().hex[:10]
    first = event(cid, "fries", "click", store_id="s-1", channel="web")
    await post_events(http, [first])
    body = await customer_decision(http, redis, cid, first["event_id"], store_id="s-1", k=3)
    served_id, bought = body["decision_id"], body["offers"][1]["offer_id"]
    sale = event(cid, bought, "purchase", store_id="s-1", channel="web", decision_id=served_id)
    await post_events(http, [sale])
    log = tmp_path / "served.jsonl"

    async def exported() -> list[dict[str, Any]] | None:
        await export(pipeline.settings.kafka, CATALOG, log)
        lines = [orjson.loads(line) for line in log.read_bytes().splitlines()]
        mine = [line for line in lines if line.get("decision_id") == served_id]
        return mine if any("reward" in line for line in mine) else None

    mine = await eventually(exported, "the served decision and its answer in the export")
    (decision,) = [line for line in mine if "offers" in line]
    assert decision["customer_id"] == cid and decision["policy"]
    assert [o["slot"] for o in decision["offers"]] == [0, 1, 2]
    assert [o["offer_id"] for o in decision["offers"]] == [o["offer_id"] for o in body["offers"]]
    assert all(0 < o["propensity"] <= 1 for o in decision["offers"])
    (answer,) = [line for line in mine if "reward" in line]
    assert answer == {
        "decision_id": served_id,
        "offer_id": bought,
        "reward": CATALOG.offers[bought].price,
    }
    slots = [e for e in read_decisions(log, CATALOG) if e.customer_id == cid]
    assert [e.reward for e in slots] == [0.0, CATALOG.offers[bought].price, 0.0]
    report = replay_decisions(log, CATALOG)
    assert report["events"] >= 3 and report["policies"]["engine"]["dr"]["n"] == report["events"]
