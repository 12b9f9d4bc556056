"""The API's contract where no server is needed: auth, CORS, size limits, OpenAPI.

The app is built but its lifespan (Kafka producer) never runs: every check here happens
before a handler would produce anything. The end-to-end tests cover the rest.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from config.settings import Settings, SettingsError
from engine.api.app import create_app

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
