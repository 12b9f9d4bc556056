"""The wire format refuses each kind of bad event with its own reason."""

from __future__ import annotations

import orjson
import pytest

from config.catalog import load_catalog
from engine.wire.events import Interaction, Rejection, decode_interaction, decode_store_context

CATALOG = load_catalog()
GOOD = {
    "event_id": "e-1",
    "type": "purchase",
    "customer_id": "c-1",
    "store_id": "s-1",
    "channel": "drive_thru",
    "offer_id": "fries",
    "decision_id": "d-1",
    "value": 2.4,
    "ts": "2026-11-22T12:31:05Z",
    "context": {"weather": "sunny", "temperature_c": 29.0, "queue_length": 6},
}


def test_the_architecture_example_event_is_valid() -> None:
    event = decode_interaction(orjson.dumps(GOOD), CATALOG)
    assert isinstance(event, Interaction)
    assert event.ts.timestamp() == 1795350665.0
    assert event.context is not None and event.context.queue_length == 6


@pytest.mark.parametrize(
    ("raw", "reason", "says"),
    [
        (b"{not json", "not_json", "Invalid JSON"),
        (
            orjson.dumps({k: v for k, v in GOOD.items() if k != "customer_id"}),
            "missing_field",
            "customer_id",
        ),
        (orjson.dumps({**GOOD, "value": "lots"}), "wrong_type", "value"),
        (orjson.dumps({**GOOD, "type": "teleport"}), "unknown_type", "teleport"),
        (orjson.dumps({**GOOD, "offer_id": "caviar"}), "unknown_offer", "caviar"),
        (orjson.dumps({**GOOD, "store_id": "s-404"}), "unknown_store", "s-404"),
        (orjson.dumps({**GOOD, "colour": "red"}), "unknown_field", "colour"),
        (orjson.dumps([GOOD]), "wrong_type", "body"),
    ],
)
def test_bad_events_are_refused_with_a_reason(raw: bytes, reason: str, says: str) -> None:
    got = decode_interaction(raw, CATALOG)
    assert isinstance(got, Rejection)
    assert got.reason == reason
    assert says in got.detail


def test_store_context_validation() -> None:
    ok = decode_store_context(
        b'{"store_id": "s-2", "temperature_c": 4, "weather": "snow"}', CATALOG
    )
    assert not isinstance(ok, Rejection) and ok.temperature_c == 4.0
    bad = decode_store_context(b'{"store_id": "s-2", "queue_length": -3}', CATALOG)
    assert isinstance(bad, Rejection) and "queue_length" in bad.detail
