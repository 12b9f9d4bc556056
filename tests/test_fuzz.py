"""The API fuzzed against its own OpenAPI with Schemathesis: no 5xx but the 503s an
operation documents, and every answer documented: status, content type, headers, body.

The app is built by `create_app` and called in-process (Schemathesis's ASGI transport, the
app's lifespan running) on the real Kafka and Redis of the test stack, with a key of every
scope. Every operation gets inputs that fit the schema and inputs that do not; the run is
derandomized and bounded (`MAX_EXAMPLES` per operation), so it is the same run each time.

The schema cannot say which stores and offers exist, or which times are recent, so half
the reads name a store of the catalog and half the event bodies are events the API takes:
past the 404s and 400s, to the answers from Redis and the writes Kafka acknowledges. (Store
context is not steered so: a fuzzed context for a real store would stay on the topic that
later tests' workers read.)
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.core.failures import ServerError
from schemathesis.python.asgi import shutdown_lifespans
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from config.catalog import load_catalog
from config.settings import Settings
from engine.api.app import create_app

pytestmark = pytest.mark.e2e

MAX_EXAMPLES = 40
KEY = "fuzz-" + uuid.uuid4().hex


def app_of(settings: Settings) -> FastAPI:
    keys = Settings(api_keys=KEY).api_keys  # type: ignore[arg-type]
    return create_app(settings.model_copy(update={"api_keys": keys}))


# What to fuzz: the OpenAPI as the app publishes it, from an app that is never started
# (building one does no I/O); `test_the_fuzzed_schema_is_the_one_served` holds them equal.
SPEC = app_of(Settings(redis_url="redis://127.0.0.1:1/0", kafka_bootstrap="127.0.0.1:1")).openapi()
schema = schemathesis.openapi.from_dict(SPEC)
CATALOG = load_catalog()
STORES = st.sampled_from(sorted(CATALOG.stores))


@schema.hook
def before_generate_path_parameters(context: Any, strategy: st.SearchStrategy[Any]) -> Any:
    """Reads name a store of the catalog half the time."""
    if context.operation.method.upper() != "GET":
        return strategy

    def known(params: Any, store_id: str) -> Any:
        return {**params, "store_id": store_id} if isinstance(params, dict) else params

    return st.one_of(strategy, st.builds(known, strategy, STORES))


def now() -> str:
    return datetime.now(UTC).isoformat()


EVENT = st.fixed_dictionaries(
    {
        "event_id": st.uuids().map(lambda u: f"e-fuzz-{u.hex}"),
        "type": st.sampled_from(["impression", "click", "add_to_cart", "purchase", "dismiss"]),
        "customer_id": st.uuids().map(lambda u: f"c-fuzz-{u.hex[:12]}"),
        "offer_id": st.sampled_from(sorted(CATALOG.offers)),
        "ts": st.builds(now),
    },
    optional={
        "store_id": STORES,
        "channel": st.sampled_from(["drive_thru", "web", "app", "kiosk", "in_store"]),
        "value": st.floats(0, 1e6),
        "slot": st.integers(0, 99),
        "context": st.fixed_dictionaries(
            {},
            optional={
                "weather": st.sampled_from(["sunny", "rain", "snow", "heatwave"]),
                "temperature_c": st.floats(-60, 60),
                "queue_length": st.integers(0, 1000),
            },
        ),
    },
)


@schema.hook
def before_generate_body(context: Any, strategy: st.SearchStrategy[Any]) -> Any:
    """Half the event bodies are events the API takes, one or a few."""
    if context.operation.path != "/v1/events":
        return strategy
    return st.one_of(strategy, EVENT, st.lists(EVENT, min_size=1, max_size=5))


def no_bug(ctx: Any, response: schemathesis.Response, case: schemathesis.Case) -> None:
    """No 5xx, but a 503 the operation documents (Redis, Kafka or a worker away)."""
    status = response.status_code
    if status >= 500 and str(status) not in case.operation.definition.raw["responses"]:
        raise ServerError(operation=case.operation.label, status_code=status)


CHECKS = [
    no_bug,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def app(stack_settings: Settings) -> Iterator[FastAPI]:
    """The app on the real stack; the ASGI transport starts its lifespan once, and it is
    stopped here, before the stack."""
    update = {"kafka_bootstrap": stack_settings.kafka, "redis_url": stack_settings.redis}
    yield app_of(stack_settings.model_copy(update=update))
    shutdown_lifespans()


def test_the_fuzzed_schema_is_the_one_served(app: FastAPI) -> None:
    served = schemathesis.openapi.from_asgi("/openapi.json", app).raw_schema
    assert served == SPEC
    fuzzed = {(op.method.upper(), op.path) for op in (r.ok() for r in schema.get_all_operations())}
    assert ("POST", "/v1/events") in fuzzed and (
        "GET",
        "/v1/customers/{customer_id}/offers",
    ) in fuzzed
    assert ("GET", "/v1/ops/series") in fuzzed and len(fuzzed) >= 11, fuzzed


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_answer_is_documented_and_none_is_a_bug(
    app: FastAPI, case: schemathesis.Case
) -> None:
    case.call_and_validate(
        app=app,
        base_url="http://testserver",
        headers={"Authorization": f"Bearer {KEY}"},
        checks=CHECKS,
    )
