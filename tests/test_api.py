"""The API's contract where no server is needed: auth, CORS, size limits, OpenAPI.

The app is built but its lifespan (Kafka producer) mostly never runs, and its Kafka and
Redis are unreachable ports: every check here happens before a handler would produce
anything, or is about what the API answers when its servers are away (503 JSON, quickly).
tests/test_api_faults.py stops and restarts real servers under a running API.
"""

from __future__ import annotations

import contextlib
import logging
import re
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import unquote

import httpx
import orjson
import pytest
from fastapi.testclient import TestClient

from config.settings import Settings, SettingsError
from engine.api.app import create_app
from engine.api.producer import RECONNECT_PAUSE_S, Producer, Record
from engine.wire.events import ID_RULE, id_problem
from engine.wire.serving import Serving
from engine.wire.topics import STORE_CONTEXT

KEY = "test-key-123"


@pytest.fixture
def client() -> TestClient:
    settings = Settings(
        api_keys=(KEY,),  # type: ignore[arg-type]
        cors_origins=("https://shop.example",),
        max_body_bytes=2048,
        redis_url="redis://127.0.0.1:1/0",  # never contacted by these tests
        kafka_bootstrap="127.0.0.1:1",
    )
    return TestClient(create_app(settings), raise_server_exceptions=False)


def test_production_refuses_to_start_without_keys() -> None:
    with pytest.raises(SettingsError, match="TAILOR_API_KEYS"):
        create_app(Settings(env="production"))
    create_app(Settings(env="production", api_keys=(KEY,)))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/events"),
        ("POST", "/v1/stores/s-1/context"),
        ("DELETE", "/v1/customers/c-1"),
    ],
)
@pytest.mark.parametrize("auth", [None, "Bearer wrong-key", "Basic dGVzdA==", f"Bearer {KEY}x"])
def test_writes_and_deletes_need_a_key(
    client: TestClient, method: str, path: str, auth: str | None
) -> None:
    headers = {"Authorization": auth} if auth else {}
    r = client.request(method, path, json={}, headers=headers)
    assert r.status_code == 401, r.text
    assert "API key" in r.json()["error"]
    assert r.headers["WWW-Authenticate"] == "Bearer"


def test_reads_need_no_key(client: TestClient) -> None:
    assert client.get("/v1/stores").status_code == 200
    assert client.get("/v1/offers").status_code == 200


def test_a_valid_key_passes_auth_and_reaches_validation(client: TestClient) -> None:
    r = client.post("/v1/events", content=b"{bad", headers={"Authorization": f"Bearer {KEY}"})
    assert r.status_code == 400
    assert "not JSON" in r.json()["error"]


def test_bodies_over_the_limit_are_refused(client: TestClient) -> None:
    r = client.post(
        "/v1/events", content=b"[" + b" " * 4096 + b"]", headers={"Authorization": f"Bearer {KEY}"}
    )
    assert r.status_code == 413
    assert "over 2048 bytes" in r.json()["error"]


def test_cors_allows_the_configured_origins_only(client: TestClient) -> None:
    preflight = {"Access-Control-Request-Method": "POST"}
    ok = client.options("/v1/events", headers={"Origin": "https://shop.example", **preflight})
    assert ok.headers.get("access-control-allow-origin") == "https://shop.example"
    other = client.options("/v1/events", headers={"Origin": "https://evil.example", **preflight})
    assert "access-control-allow-origin" not in other.headers


def test_openapi_documents_the_contract(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    for path, method in [
        ("/v1/stores", "get"),
        ("/v1/offers", "get"),
        ("/v1/stores/{store_id}/board", "get"),
        ("/v1/customers/{customer_id}/offers", "get"),
        ("/v1/events", "post"),
        ("/v1/stores/{store_id}/context", "post"),
        ("/v1/customers/{customer_id}", "delete"),
        ("/healthz", "get"),
        ("/metrics", "get"),
    ]:
        assert method in paths[path], f"{method.upper()} {path} missing from OpenAPI"
    assert any("HTTPBearer" in s for s in spec["components"]["securitySchemes"])
    assert paths["/v1/events"]["post"]["security"]
    assert "security" not in paths["/v1/stores"]["get"]
    assert client.get("/docs").status_code == 200


@pytest.mark.parametrize("path", ["/v1/events", "/v1/stores/s-1/context"])
def test_chunked_bodies_over_the_limit_are_refused(client: TestClient, path: str) -> None:
    def chunks() -> Iterator[bytes]:  # no Content-Length: the body streams
        for _ in range(8):
            yield b" " * 1024

    r = client.post(path, content=chunks(), headers={"Authorization": f"Bearer {KEY}"})
    assert r.status_code == 413
    assert "over 2048 bytes" in r.json()["error"]


def test_a_session_id_must_be_anonymous(client: TestClient) -> None:
    event = {
        "event_id": "e-1", "type": "click", "customer_id": "c-1", "offer_id": "fries",
        "ts": "2026-11-22T12:00:00Z", "session_id": "c-victim",
    }  # fmt: skip
    r = client.post("/v1/events", json=event, headers={"Authorization": f"Bearer {KEY}"})
    assert r.status_code == 400
    assert "session_id" in r.json()["error"]


def test_an_oversized_unauthenticated_body_is_refused_before_it_is_read(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(8):
            yield b" " * 1024

    assert client.post("/v1/events", content=chunks()).status_code == 401
    assert client.post("/v1/stores/s-1/context", content=chunks()).status_code == 413


# ---- hostile ids, clocks and servers: the API's answers ------------------------------------

AUTH = {"Authorization": f"Bearer {KEY}"}


def event(**changes: object) -> dict[str, object]:
    now = datetime.now(UTC).isoformat()
    return {"event_id": "e-1", "type": "click", "customer_id": "c-1", "offer_id": "fries",
            "ts": now, **changes}  # fmt: skip


def assert_json_error(r: httpx.Response, status: int, *says: str) -> str:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json"), r.headers
    message = r.json()["error"]
    assert isinstance(message, str)
    for text in says:
        assert text in message, message
    return message


BAD_PATH_IDS = {
    "space": "a%20b",
    "nul": "a%00b",
    "tab": "a%09b",
    "129 chars": "x" * 129,
    "dot dot": "%2E%2E",
    "zero width space": "a%E2%80%8Bb",
}


@pytest.mark.parametrize("raw", BAD_PATH_IDS.values(), ids=BAD_PATH_IDS.keys())
@pytest.mark.parametrize(
    ("method", "template", "name"),
    [
        ("GET", "/v1/customers/{}/offers", "customer_id"),
        ("DELETE", "/v1/customers/{}", "customer_id"),
        ("GET", "/v1/stores/{}/board", "store_id"),
        ("POST", "/v1/stores/{}/context", "store_id"),
        ("GET", "/board/{}", "store_id"),
        ("GET", "/v1/customers/c-1/offers?store_id={}", "store_id"),
    ],
)
def test_malformed_path_ids_are_400_saying_what_is_allowed_and_what_came(
    client: TestClient, method: str, template: str, name: str, raw: str
) -> None:
    r = client.request(method, template.format(raw), json={}, headers=AUTH)
    message = assert_json_error(r, 400, name, ID_RULE, "(got ")
    problem = id_problem(unquote(raw))
    assert problem is not None and problem in message


def test_a_slash_in_a_path_id_cannot_reach_a_route(client: TestClient) -> None:
    # %2F decodes to '/', which splits the segment: no route matches, and no body holds such
    # an id (the grammar refuses '/'), so every accepted id stays addressable.
    assert_json_error(client.get("/v1/customers/a%2Fb/offers"), 404)


def test_the_board_page_refuses_a_malformed_store_id_as_escaped_html(client: TestClient) -> None:
    r = client.get("/board/<img src=x onerror=alert(1)>", headers={"accept": "text/html"})
    assert r.status_code == 400 and r.headers["content-type"].startswith("text/html")
    assert "&lt;img src=x onerror=alert(1)&gt;" in r.text and "<img" not in r.text
    assert_json_error(client.get("/board/s-9"), 404, "no store 's-9'")


@pytest.mark.parametrize(
    "ts",
    [
        "9999-12-31T23:59:59Z",
        "9999-12-31",
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59-23:59",
        "2000-01-01T00:00:00Z",
        1e300,
    ],
)
def test_events_from_a_clock_gone_wrong_are_400_never_500(client: TestClient, ts: object) -> None:
    r = client.post("/v1/events", json=[event(), event(ts=ts)], headers=AUTH)
    assert_json_error(r, 400, "event 1: ts: ")


def test_an_event_from_the_far_future_names_the_window_and_its_settings(
    client: TestClient,
) -> None:
    ahead = (datetime.now(UTC) + timedelta(seconds=400)).isoformat()
    r = client.post("/v1/events", json=event(ts=ahead), headers=AUTH)
    assert_json_error(r, 400, "ts: ", "after it arrived", "TAILOR_MAX_FUTURE_SKEW_S=300")
    old = (datetime.now(UTC) - timedelta(days=31)).isoformat()
    r = client.post("/v1/events", json=event(ts=old), headers=AUTH)
    assert_json_error(r, 400, "before it arrived", "TAILOR_MAX_EVENT_AGE_S=2592000")


@pytest.mark.parametrize("field", ["event_id", "customer_id", "offer_id", "store_id"])
def test_body_ids_follow_the_same_grammar(client: TestClient, field: str) -> None:
    for bad in ("a/b", "a\x00b", "a b", "x" * 129):
        r = client.post("/v1/events", json=event(**{field: bad}), headers=AUTH)
        assert_json_error(r, 400, f"{field}: ", ID_RULE)


def test_writes_answer_503_at_once_when_kafka_is_unreachable(client: TestClient) -> None:
    writes = [
        ("POST", "/v1/events", [event(), event(event_id="e-2")], "same event_id is safe"),
        ("POST", "/v1/stores/s-1/context", {"queue_length": 3}, "again is safe"),
        ("DELETE", "/v1/customers/c-1", None, "again is safe"),
    ]
    for method, path, body, retry in writes:
        started = time.monotonic()
        r = client.request(method, path, json=body, headers=AUTH)
        took = time.monotonic() - started
        assert_json_error(r, 503, "kafka unavailable: ", "127.0.0.1:1", retry)
        assert r.headers["Retry-After"].isdigit()
        assert took < 10, f"{method} {path} took {took:.1f} s"


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A server that accepts connections and never answers (a hung Kafka or Redis)."""
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                held.append(server.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        server.close()


def test_a_hung_kafka_costs_a_write_the_produce_timeout_not_the_producers(
    silent_server: str,
) -> None:
    settings = Settings(kafka_bootstrap=silent_server, redis_url="redis://127.0.0.1:1/0",
                        produce_timeout_s=0.5)  # fmt: skip
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        time.sleep(RECONNECT_PAUSE_S)  # past the pause after the failed start: a new attempt
        started = time.monotonic()
        r = client.post("/v1/events", json=event())
        took = time.monotonic() - started
        assert_json_error(r, 503, "kafka unavailable: ", "TAILOR_PRODUCE_TIMEOUT_S")
        print(f"hung kafka: POST /v1/events answered {r.status_code} in {took:.2f} s")
        assert took < 5, f"took {took:.1f} s: aiokafka's own timeouts are 10 to 40 s"
        started = time.monotonic()
        health = client.get("/healthz")
        assert time.monotonic() - started < 5
    assert health.status_code == 503
    assert health.json() == {"status": "degraded", "redis": False, "kafka": False}


def test_healthz_says_which_server_is_missing(client: TestClient) -> None:
    r = client.get("/healthz")
    assert r.status_code == 503
    assert r.json() == {"status": "degraded", "redis": False, "kafka": False}


@pytest.mark.parametrize(("redis_ok", "kafka_ok"), [(True, True), (True, False), (False, True)])
def test_healthz_is_200_only_when_both_answer(
    monkeypatch: pytest.MonkeyPatch, redis_ok: bool, kafka_ok: bool
) -> None:
    async def ping(_: object) -> bool:
        return redis_ok

    async def probe(_: object, within_s: float) -> bool:
        return kafka_ok

    monkeypatch.setattr(Serving, "ping", ping)
    monkeypatch.setattr(Producer, "probe", probe)
    client = TestClient(create_app(Settings()), raise_server_exceptions=False)
    r = client.get("/healthz")
    ok = redis_ok and kafka_ok
    assert r.status_code == (200 if ok else 503)
    status = "ok" if ok else "degraded"
    assert r.json() == {"status": status, "redis": redis_ok, "kafka": kafka_ok}


@pytest.mark.parametrize(
    "path", ["/v1/customers/c-1/offers", "/v1/customers/c-1/offers?store_id=s-1",
             "/v1/stores/s-1/board"],
)  # fmt: skip
def test_reads_answer_503_json_when_redis_is_unreachable(client: TestClient, path: str) -> None:
    started = time.monotonic()
    r = client.get(path)
    assert_json_error(r, 503, "redis unavailable: ")
    assert r.headers["Retry-After"].isdigit()
    assert time.monotonic() - started < 10


def test_an_unexpected_exception_is_a_json_500_with_a_request_id(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(_: object, store_id: str) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(Serving, "board", broken)
    with caplog.at_level(logging.ERROR, logger="tailor.api"):
        r = client.get("/v1/stores/s-1/board")
    assert_json_error(r, 500, "internal error")
    request_id = r.json()["request_id"]
    assert "a bug" not in r.text  # no internals to the client
    logged = [rec for rec in caplog.records if request_id in rec.getMessage()]
    assert logged and logged[0].exc_info is not None  # the traceback is in the log


def test_routing_errors_are_json_too(client: TestClient) -> None:
    assert_json_error(client.get("/v1/nothing-here"), 404)
    assert_json_error(client.put("/v1/events", json={}), 405)


def test_a_hung_redis_costs_a_read_its_socket_timeout(silent_server: str) -> None:
    settings = Settings(kafka_bootstrap="127.0.0.1:1", redis_url=f"redis://{silent_server}/0")
    client = TestClient(create_app(settings), raise_server_exceptions=False)
    started = time.monotonic()
    r = client.get("/v1/customers/c-1/offers")
    took = time.monotonic() - started
    print(f"hung redis: GET offers answered {r.status_code} in {took:.2f} s")
    assert_json_error(r, 503, "redis unavailable: ", "Timeout")
    assert took < 5, f"took {took:.1f} s: redis-py retries 3 times with backoff by default"


def test_routing_and_route_errors_have_the_documented_shape_only(client: TestClient) -> None:
    wrong_method = client.put("/v1/events", json={})
    assert_json_error(wrong_method, 405)
    assert wrong_method.headers["allow"] == "POST"  # the router's headers are kept
    for r in (client.get("/nope"), wrong_method, client.get("/v1/stores/s-9/board")):
        assert set(r.json()) == {"error"}, r.json()  # no FastAPI `detail`


# ---- store context: when the sensor read it ------------------------------------------------


@pytest.fixture
def produced(monkeypatch: pytest.MonkeyPatch) -> list[Record]:
    """What the API hands Kafka, captured instead of sent."""
    records: list[Record] = []

    async def send(_: object, batch: list[Record]) -> None:
        records.extend(batch)

    monkeypatch.setattr(Producer, "send", send)
    return records


def test_store_context_carries_the_sensors_ts_in_utc(
    client: TestClient, produced: list[Record]
) -> None:
    read_at = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    local = read_at.astimezone(timezone(timedelta(hours=2))).isoformat()
    body = {"queue_length": 4, "ts": local}
    r = client.post("/v1/stores/s-1/context", json=body, headers=AUTH)
    assert r.status_code == 202, r.text
    assert r.json()["ts"] == read_at.isoformat()
    [record] = produced
    assert record.topic == STORE_CONTEXT and record.key == b"s-1"
    sent = orjson.loads(record.value)
    assert sent["store_id"] == "s-1" and sent["queue_length"] == 4
    assert datetime.fromisoformat(sent["ts"]) == read_at and sent["ts"].endswith("Z")


def test_store_context_without_ts_is_stamped_on_arrival(
    client: TestClient, produced: list[Record]
) -> None:
    before = datetime.now(UTC)
    r = client.post("/v1/stores/s-1/context", json={"weather": "rain"}, headers=AUTH)
    assert r.status_code == 202, r.text
    stamped = datetime.fromisoformat(orjson.loads(produced[0].value)["ts"])
    assert before <= stamped <= datetime.now(UTC)


@pytest.mark.parametrize(
    ("ts", "says"),
    [
        ("yesterday-ish", "ts: "),
        ("9999-12-31T23:59:59-23:59", "outside the years 1 to 9999"),
        ("2000-01-01T00:00:00Z", "before it arrived"),
        (lambda: (datetime.now(UTC) + timedelta(hours=1)).isoformat(), "after it arrived"),
    ],
    ids=["not a time", "past year 9999", "too old", "from the future"],
)
def test_store_context_with_a_bad_ts_is_400_saying_why(
    client: TestClient, produced: list[Record], ts: object, says: str
) -> None:
    value = ts() if callable(ts) else ts
    r = client.post("/v1/stores/s-1/context", json={"ts": value}, headers=AUTH)
    assert_json_error(r, 400, "ts", says)
    assert not produced


# ---- works offline: the docs come from the package ------------------------------------------

# Where a page may send a browser: this API only. Namespace names are not fetched.
NOT_FETCHED = {"http://www.w3.org", "https://www.w3.org"}
CDNS = ("cdn", "unpkg", "jsdelivr", "cloudflare", "googleapis", "gstatic", "bootstrapcdn")


def test_the_docs_load_swagger_ui_from_this_api_only(client: TestClient) -> None:
    r = client.get("/docs")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    page = r.text
    assert not re.findall(r"(?:https?:)?//[\w.-]+", page), "the docs page names another host"
    assert "default-src 'none'" in r.headers["content-security-policy"]
    assert '"validatorUrl": null' in page  # no spec sent to swagger.io's validator
    assets = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert len(assets) == 3, assets
    for path in assets:
        assert path.startswith("/docs/assets/"), path
        asset = client.get(path)
        assert asset.status_code == 200, path
        if path.endswith((".js", ".css")):
            hosts = set(re.findall(r"https?://[\w.-]+", asset.text)) - NOT_FETCHED
            assert not [h for h in hosts if any(cdn in h for cdn in CDNS)], (path, hosts)
            assert "@import" not in asset.text
    assert "SwaggerUIBundle" in client.get("/docs/assets/swagger-ui-bundle.js").text
    assert client.get("/docs/assets/redoc.standalone.js").status_code == 404  # it loads a CDN logo
    assert client.get("/redoc").status_code == 404


def test_the_openapi_refs_all_resolve(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    refs = set(re.findall(r'"\$ref":\s*"([^"]+)"', orjson.dumps(spec).decode()))
    components = {f"#/components/schemas/{name}" for name in spec["components"]["schemas"]}
    assert refs and refs <= components, refs - components
    context = spec["components"]["schemas"]["ContextUpdate"]["properties"]
    assert "ts" in context and "queue_length" in context
