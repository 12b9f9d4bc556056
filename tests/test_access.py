"""Scoped access: keys with scopes, customer tokens, and responses without personal history.

The app runs in-process on the real Redis of the test stack (reads are real reads); its
Kafka is an unreachable port, and no request here gets as far as producing: a write the
key may do is shown by passing auth and reaching the next check (a 400 naming the bad
input), so nothing lands on the topics other tests' workers read.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import jwt
import orjson
import pytest
import redis
from fastapi.testclient import TestClient

from config.api_keys import ApiKey
from config.settings import Settings, SettingsError, get_settings
from engine import cli
from engine.api.app import create_app
from engine.api.tokens import AUDIENCE, mint

pytestmark = pytest.mark.e2e

SECRET = "token-secret-" + "x" * 32
KEYS = {
    "every": "k-every",
    "ingest": "k-ingest:ingest",
    "device-s1": "k-s1:store-device:s-1",
    "read": "k-read:read",
    "admin": "k-admin:admin",
}


def bearer(name: str) -> dict[str, str]:
    return {"Authorization": "Bearer " + KEYS[name].partition(":")[0]}


@pytest.fixture(scope="module")
def redis_url(stack_settings: Settings) -> str:
    return stack_settings.redis


@contextmanager
def app_for(redis_url: str, env: str) -> Iterator[TestClient]:
    """The app, its lifespan running (one event loop for its Redis connections)."""
    settings = Settings(
        env=env,  # type: ignore[arg-type]
        api_keys=",".join(KEYS.values()),  # type: ignore[arg-type]
        token_secret=SECRET,  # type: ignore[arg-type]
        redis_url=redis_url,
        kafka_bootstrap="127.0.0.1:1",  # never reached: see the module's docstring
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture(scope="module")
def production(redis_url: str) -> Iterator[TestClient]:
    with app_for(redis_url, "production") as client:
        yield client


@pytest.fixture(scope="module")
def development(redis_url: str) -> Iterator[TestClient]:
    with app_for(redis_url, "development") as client:
        yield client


@pytest.fixture
def customer(redis_url: str) -> Iterator[str]:
    """A customer with a decision in Redis made at their last visit, as the worker writes it."""
    cid = "c-access-" + uuid.uuid4().hex[:10]
    decision = {
        "decision_id": "d-" + uuid.uuid4().hex,
        "policy": "engine-v1",
        "customer_id": cid,
        "store_id": "s-3",
        "context": {"daypart": "late", "weather": "rain", "temperature_c": 9.0},
        "created_at": 1_790_000_000.0,
        "answers": 17,
        "channel": "app",
        "event_id": "e-last-visit",
        "offers": [
            {"offer_id": "fries", "name": "Fries", "price": 2.5, "category": "sides",
             "score": 1.1, "p_yes": 0.4, "propensity": 1.0, "reasons": ["you_often_buy"]},
        ],
    }  # fmt: skip
    client = redis.Redis.from_url(redis_url)
    client.set(f"tailor:offers:{cid}", orjson.dumps(decision), ex=300)
    yield cid
    client.delete(f"tailor:offers:{cid}")
    client.close()


# Each route with a request the named scopes may make, and what passing auth leads to.
ROUTES: dict[str, tuple[str, str, Any]] = {
    "events": ("POST", "/v1/events", b"{not json"),
    "context s-1": ("POST", "/v1/stores/s-1/context", {"queue_length": -1}),
    "context s-2": ("POST", "/v1/stores/s-2/context", {"queue_length": -1}),
    "stock-out s-1": ("POST", "/v1/stores/s-1/context", {"stock_out": ["no-such-offer"]}),
    "forget": ("DELETE", "/v1/customers/a%20b", None),
    "board s-1": ("GET", "/v1/stores/s-1/board", None),
    "board s-2": ("GET", "/v1/stores/s-2/board", None),
    "offers": ("GET", "/v1/customers/{customer}/offers", None),
}
ALLOWED = {
    "every": set(ROUTES),
    "ingest": {"events"},
    "device-s1": {"context s-1", "board s-1"},
    "read": {"board s-1", "board s-2", "offers"},
    "admin": set(ROUTES) - {"events"},
}
NEEDS = {  # what a 403 names
    "events": "'ingest'",
    "context s-1": "'store-device:s-1' or 'admin'",
    "context s-2": "'store-device:s-2' or 'admin'",
    "stock-out s-1": "'store-device:s-1' or 'admin'",  # and then 'admin' for the stock_out
    "forget": "'admin'",
    "board s-1": "'store-device:s-1' or 'read' or 'admin'",
    "board s-2": "'store-device:s-2' or 'read' or 'admin'",
    "offers": "'read' or 'admin'",
}


def call(client: TestClient, route: str, customer: str, **headers: str) -> httpx.Response:
    method, path, body = ROUTES[route]
    path = path.format(customer=customer)
    if isinstance(body, bytes):
        return client.request(method, path, content=body, headers=headers)
    return client.request(method, path, json=body, headers=headers)


def assert_passed_auth(r: httpx.Response, route: str) -> None:
    """What each route answers once auth lets the request through."""
    if route.startswith("board"):  # a board, or none yet: no worker runs here
        assert r.status_code == 200 or "no board for" in r.json()["error"], r.text
    elif route == "offers":
        assert r.status_code == 200 and r.json()["source"] == "customer", r.text
    else:
        assert r.status_code == 400, r.text
        says = {"events": "not JSON", "forget": "customer_id", "stock-out s-1": "no-such-offer"}
        assert says.get(route, "queue_length") in r.json()["error"], r.text


@pytest.mark.parametrize("key", sorted(KEYS))
@pytest.mark.parametrize("route", sorted(ROUTES))
def test_each_scope_allows_its_own_routes_and_refuses_the_rest_with_403(
    production: TestClient, customer: str, key: str, route: str
) -> None:
    r = call(production, route, customer, **bearer(key))
    if route in ALLOWED[key]:
        assert_passed_auth(r, route)
        return
    assert r.status_code == 403, r.text
    message = r.json()["error"]
    assert set(r.json()) == {"error"}
    needs = "'admin'" if (key, route) == ("device-s1", "stock-out s-1") else NEEDS[route]
    assert f"needs a key with scope {needs}" in message, message
    assert "this is a key with " + KEYS[key].partition(":")[2] in message, message


@pytest.mark.parametrize("route", sorted(ROUTES))
@pytest.mark.parametrize("auth", [None, "Bearer k-nobody", "Bearer k-s1x", "Basic azE6eA=="])
def test_no_key_or_an_unknown_one_is_401_everywhere_in_production(
    production: TestClient, customer: str, route: str, auth: str | None
) -> None:
    r = call(production, route, customer, **({"Authorization": auth} if auth else {}))
    assert r.status_code == 401, r.text
    assert r.headers["WWW-Authenticate"] == "Bearer"
    assert "missing or unknown API key" in r.json()["error"]


@pytest.mark.parametrize("route", ["board s-1", "board s-2", "offers"])
@pytest.mark.parametrize("auth", [None, "Bearer k-nobody", "Bearer k-ingest"])
def test_reads_stay_open_in_development(
    development: TestClient, customer: str, route: str, auth: str | None
) -> None:
    r = call(development, route, customer, **({"Authorization": auth} if auth else {}))
    assert_passed_auth(r, route)


def test_writes_keep_their_scopes_in_development(development: TestClient, customer: str) -> None:
    assert call(development, "events", customer).status_code == 401
    assert call(development, "events", customer, **bearer("read")).status_code == 403
    assert_passed_auth(call(development, "events", customer, **bearer("ingest")), "events")


# ---- customer tokens ------------------------------------------------------------------------


def with_token(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_customer_token_reads_that_customer_only(production: TestClient, customer: str) -> None:
    token = mint(SECRET, customer, ttl_s=300)
    r = production.get(f"/v1/customers/{customer}/offers", headers=with_token(token))
    assert r.status_code == 200 and r.json()["customer_id"] == customer, r.text
    other = production.get("/v1/customers/c-someone-else/offers", headers=with_token(token))
    assert other.status_code == 403
    assert other.json() == {"error": "this customer token is for another customer"}
    for route in ("events", "board s-1", "forget"):  # a token is no key
        r = call(production, route, customer, **with_token(token))
        assert r.status_code == 403, (route, r.text)
        assert "a customer token, which reads its own customer's offers only" in r.json()["error"]


def forged(customer: str) -> dict[str, str]:
    claims = {"sub": customer, "aud": AUDIENCE, "exp": 4_000_000_000, "iat": 1_700_000_000}
    good = mint(SECRET, customer, ttl_s=300)
    head, _, sig = good.split(".")
    other_customer = jwt.encode({**claims, "sub": "c-other"}, SECRET, algorithm="HS256")
    return {
        "another secret": jwt.encode(claims, "not-the-secret-" + "y" * 32, algorithm="HS256"),
        "no signature": jwt.encode(claims, None, algorithm="none"),
        "payload swapped": ".".join([head, other_customer.split(".")[1], sig]),
        "another audience": jwt.encode({**claims, "aud": "elsewhere"}, SECRET, algorithm="HS256"),
        "no expiry": jwt.encode({"sub": customer, "aud": AUDIENCE}, SECRET, algorithm="HS256"),
        "expired": mint(SECRET, customer, ttl_s=60, now=1_700_000_000),
        "damaged": good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB"),
    }


@pytest.mark.parametrize(
    "kind",
    ["another secret", "no signature", "payload swapped", "another audience", "no expiry",
     "expired", "damaged"],
)  # fmt: skip
def test_a_forged_or_expired_token_is_401(production: TestClient, customer: str, kind: str) -> None:
    token = forged(customer)[kind]
    r = production.get(f"/v1/customers/{customer}/offers", headers=with_token(token))
    assert r.status_code == 401, r.text
    assert r.headers["WWW-Authenticate"] == "Bearer"
    assert ("expired" if kind == "expired" else "not a valid customer token") in r.json()["error"]


def test_without_a_token_secret_a_token_is_just_an_unknown_key(redis_url: str) -> None:
    settings = Settings(
        env="production", api_keys="k-every", redis_url=redis_url, kafka_bootstrap="127.0.0.1:1"
    )  # type: ignore[arg-type]
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        r = client.get("/v1/customers/c-1/offers", headers=with_token(mint(SECRET, "c-1", 300)))
    assert r.status_code == 401 and "unknown API key" in r.json()["error"]


def test_the_cli_mints_a_token_the_api_accepts(
    production: TestClient, customer: str, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.setenv("TAILOR_TOKEN_SECRET", SECRET)
    get_settings.cache_clear()
    try:
        assert cli.main(["token", "customer", customer, "--ttl", "120"]) == 0
        monkeypatch.delenv("TAILOR_TOKEN_SECRET")
        get_settings.cache_clear()
        assert cli.main(["token", "customer", customer]) == 2
    finally:
        get_settings.cache_clear()
    out, err = capsys.readouterr()
    token = out.strip()
    assert "TAILOR_TOKEN_SECRET is not set" in err
    r = production.get(f"/v1/customers/{customer}/offers", headers=with_token(token))
    assert r.status_code == 200, r.text
    assert jwt.decode(token, options={"verify_signature": False})["exp"] > 0


# ---- no personal history in public responses -----------------------------------------------

HISTORY = {"context", "created_at", "answers", "event_id"}


@pytest.mark.parametrize("params", [{}, {"store_id": "s-1", "channel": "web"}])
def test_customer_offers_carry_no_last_visit_place_or_answer_count(
    production: TestClient, customer: str, params: dict[str, str]
) -> None:
    r = production.get(f"/v1/customers/{customer}/offers", params=params, headers=bearer("read"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert not HISTORY & set(body), body
    assert set(body) == {
        "decision_id", "policy", "customer_id", "source", "store_id", "channel", "offers",
    }  # fmt: skip
    assert body["store_id"] == params.get("store_id")  # what was asked, not where they were
    assert body["channel"] == params.get("channel")
    # Not in any value (the ids are random hex, so the whole text may hold "s-3" by chance).
    text = r.text.replace(customer, "").replace(body["decision_id"], "")
    assert "s-3" not in text and "rain" not in text and "e-last-visit" not in text
    [offer] = body["offers"]
    assert offer["offer_id"] == "fries" and offer["score"] == 1.1
    assert offer["reasons"] == ["you_often_buy"]


@pytest.fixture
def board_s1(redis_url: str) -> Iterator[dict[str, Any]]:
    """A board for s-1 in Redis as a worker renders it; whatever was there comes back after."""
    client = redis.Redis.from_url(redis_url)
    key = "tailor:board:s-1"
    before, ttl = client.get(key), client.ttl(key)
    board = {
        "decision_id": "b-" + uuid.uuid4().hex, "policy": "engine-v1", "store_id": "s-1",
        "store_name": "Main St", "created_at": 1_790_000_000.0,
        "context": {"daypart": "lunch", "weather": "sunny", "queue_length": 4},
        "offers": [{"offer_id": "cola", "score": 0.9, "p_yes": 0.3, "propensity": 1.0,
                    "reasons": ["hot_weather"], "name": "Cola", "price": 1.9,
                    "category": "cold_drinks"}],
    }  # fmt: skip
    client.set(key, orjson.dumps(board), ex=300)
    yield board
    if before is not None and ttl > 0:
        client.set(key, before, ex=ttl)
    else:
        client.delete(key)
    client.close()


def test_a_fallback_to_the_store_board_is_shaped_the_same(
    production: TestClient, board_s1: dict[str, Any]
) -> None:
    cid = "c-never-seen-" + uuid.uuid4().hex[:8]
    r = production.get(f"/v1/customers/{cid}/offers?store_id=s-1", headers=bearer("read"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["source"] == "store" and body["decision_id"] == board_s1["decision_id"]
    assert not HISTORY & set(body) and "store_name" not in body, body
    assert [o["offer_id"] for o in body["offers"]] == ["cola"]
    board = production.get("/v1/stores/s-1/board", headers=bearer("device-s1")).json()
    assert board == board_s1  # the board itself, the store's own signage, is unchanged


# ---- the keys' settings --------------------------------------------------------------------


def test_keys_parse_with_their_scopes_and_reach_child_processes_unchanged() -> None:
    settings = Settings(api_keys=" k-a , k-b:ingest+read ,k-c:store-device:s-1")  # type: ignore[arg-type]
    a, b, c = settings.api_keys
    assert (a.scopes, b.scopes, c.scopes) == (None, {"ingest", "read"}, {"store-device:s-1"})
    assert [k.get_secret_value() for k in settings.api_keys] == ["k-a", "k-b", "k-c"]
    env = settings.as_env()["TAILOR_API_KEYS"]
    assert env == "k-a,k-b:ingest+read,k-c:store-device:s-1"
    assert Settings(api_keys=env).api_keys == settings.api_keys  # type: ignore[arg-type]
    assert "k-b" not in repr(settings) and "k-b" not in repr(b)
    assert Settings(token_secret=SECRET).as_env()["TAILOR_TOKEN_SECRET"] == SECRET  # type: ignore[arg-type]
    assert isinstance(Settings(api_keys=("k-x",)).api_keys[0], ApiKey)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("k-secret:ingest+write", "entry 1 of TAILOR_API_KEYS: unknown scope 'write'"),
        ("k-1, k-secret:", "entry 2 of TAILOR_API_KEYS: unknown scope ''"),
        ("k-1,k-secret:store-device:", "entry 2 of TAILOR_API_KEYS: 'store-device:' names no"),
        ("k-secret,k-secret:read", "entry 2 of TAILOR_API_KEYS repeats an earlier key"),
        (":read", "entry 1 of TAILOR_API_KEYS: a key is 1 or more characters"),
    ],
)
def test_bad_keys_say_which_entry_and_never_echo_a_key(
    monkeypatch: pytest.MonkeyPatch, value: str, says: str
) -> None:
    monkeypatch.setenv("TAILOR_API_KEYS", value)
    get_settings.cache_clear()
    try:
        with pytest.raises(SettingsError) as err:
            get_settings()
    finally:
        get_settings.cache_clear()
    assert says in str(err.value), str(err.value)
    assert "k-secret" not in str(err.value)
    assert "scopes are ingest, read, admin and store-device:<store_id>" in str(err.value) or (
        "repeats" in says or "a key is" in says
    )


def test_a_store_device_key_must_name_a_store_of_the_catalog() -> None:
    settings = Settings(api_keys="k-x:store-device:s-9")  # type: ignore[arg-type]
    with pytest.raises(SettingsError, match=r"scope 'store-device:s-9' names no store"):
        create_app(settings)


def test_a_short_token_secret_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TAILOR_TOKEN_SECRET", "short-secret")
    get_settings.cache_clear()
    try:
        with pytest.raises(SettingsError) as err:
            get_settings()
    finally:
        get_settings.cache_clear()
    assert "TAILOR_TOKEN_SECRET" in str(err.value) and "at least 32" in str(err.value)
    assert "short-secret" not in str(err.value)
