"""The wire format refuses each kind of bad event with its own reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest

from config.catalog import load_catalog
from engine.wire.events import (
    ID_RULE,
    Interaction,
    Rejection,
    check_time,
    decode_interaction,
    decode_store_context,
    id_problem,
)

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


# ---- one id grammar ---------------------------------------------------------------------

ID_FIELDS = ["event_id", "customer_id", "offer_id", "store_id", "decision_id"]
GOOD_IDS = ["c-1", "x" * 128, "crème-brûlée", "a.b", "...", "%2F", "a:b@c", "🍟", "anon-1"]
BAD_IDS = {
    "nul": "c\x00-1",
    "slash": "a/b",
    "space": "a b",
    "tab": "a\tb",
    "newline": "a\n",
    "nbsp": "a\u00a0b",
    "line separator": "a\u2028b",
    "del": "a\x7fb",
    "c1 control": "a\x85b",
    "zero width space": "a\u200bb",
    "bidi override": "a\u202eb",
    "129 chars": "x" * 129,
    "empty": "",
    "dot": ".",
    "dot dot": "..",
}


@pytest.mark.parametrize("value", GOOD_IDS)
def test_the_id_grammar_accepts_printable_ids_up_to_128_characters(value: str) -> None:
    assert id_problem(value) is None
    event = {**GOOD, "event_id": value, "customer_id": value, "decision_id": value}
    assert isinstance(decode_interaction(orjson.dumps(event), CATALOG), Interaction)


@pytest.mark.parametrize("value", BAD_IDS.values(), ids=BAD_IDS.keys())
@pytest.mark.parametrize("field", ID_FIELDS)
def test_every_id_field_refuses_what_the_grammar_refuses(field: str, value: str) -> None:
    problem = id_problem(value)
    assert problem is not None
    got = decode_interaction(orjson.dumps({**GOOD, field: value}), CATALOG)
    assert isinstance(got, Rejection), got
    assert got.detail.startswith(f"{field}: {problem}; {ID_RULE}")
    assert "(got " in got.detail  # what arrived


@pytest.mark.parametrize("value", BAD_IDS.values(), ids=BAD_IDS.keys())
def test_session_ids_and_stock_out_entries_follow_the_same_grammar(value: str) -> None:
    got = decode_interaction(orjson.dumps({**GOOD, "session_id": "anon-" + value}), CATALOG)
    if value in ("", ".", ".."):  # "anon-", "anon-.", "anon-..": the prefix alone is refused
        assert isinstance(got, Rejection) == (value == "")
    else:
        assert isinstance(got, Rejection) and got.detail.startswith("session_id: ")
    update = orjson.dumps({"store_id": "s-1", "stock_out": ["fries", value]})
    refused = decode_store_context(update, CATALOG)
    assert isinstance(refused, Rejection) and refused.detail.startswith("stock_out.1: ")
    assert isinstance(decode_store_context(orjson.dumps({"store_id": value}), CATALOG), Rejection)


def test_problems_say_what_and_where() -> None:
    assert id_problem("ab/c") == "has '/' at position 2"
    assert id_problem("a\x00") == "has a control character U+0000 at position 1"
    assert id_problem("a b") == "has whitespace U+0020 at position 1"
    assert id_problem("x" * 129) == "has 129 characters"
    assert id_problem("") == "is empty"
    assert id_problem("a\u200b") == "has an unprintable character U+200B at position 1"


# ---- clock skew ---------------------------------------------------------------------------

ARRIVAL = 1_800_000_000.0
FUTURE, AGE = 300.0, 86_400.0


def at(seconds: float) -> Interaction:
    return Interaction.model_validate({**GOOD, "ts": datetime.fromtimestamp(seconds, UTC)})


@pytest.mark.parametrize(
    ("ts", "refused"),
    [
        (ARRIVAL, False),
        (ARRIVAL + FUTURE, False),  # the later edge itself is fine
        (ARRIVAL + FUTURE + 0.001, True),
        (ARRIVAL - AGE, False),  # the earlier edge itself is fine
        (ARRIVAL - AGE - 0.001, True),
    ],
)
def test_check_time_refuses_outside_the_window_and_accepts_its_edges(
    ts: float, refused: bool
) -> None:
    got = check_time(at(ts), ARRIVAL, FUTURE, AGE)
    if not refused:
        assert got is None
        return
    assert got is not None and got.reason == "bad_timestamp"
    assert at(ts).ts.isoformat() in got.detail  # the ts
    assert "2027-01-15T08:00:00+00:00" in got.detail  # the arrival
    assert "TAILOR_MAX_FUTURE_SKEW_S=300" in got.detail
    assert "TAILOR_MAX_EVENT_AGE_S=86400" in got.detail
    assert ("after it arrived" if ts > ARRIVAL else "before it arrived") in got.detail


@pytest.mark.parametrize(
    "ts", ["9999-12-31T23:59:59Z", "9999-12-31T23:59:59.999999", "0001-01-01T00:00:00Z"]
)
def test_the_ends_of_the_calendar_are_valid_datetimes_but_bad_timestamps(ts: str) -> None:
    event = decode_interaction(orjson.dumps({**GOOD, "ts": ts}), CATALOG)
    assert isinstance(event, Interaction)
    got = check_time(event, ARRIVAL, FUTURE, AGE)
    assert got is not None and got.reason == "bad_timestamp"


@pytest.mark.parametrize(
    "ts",
    [
        "9999-12-31T23:59:59-23:59",  # past year 9999 in UTC
        "0001-01-01T00:00:00+23:59",  # before year 1 in UTC
        "10000-01-01T00:00:00Z",
        "0000-01-01T00:00:00Z",
        1e300,
        -1e300,
        "NaN",
        "",
    ],
)
def test_extreme_datetimes_are_refused_never_crash(ts: object) -> None:
    raw = orjson.dumps({**GOOD, "ts": ts})
    got = decode_interaction(raw, CATALOG)
    assert isinstance(got, Rejection) and got.detail.startswith("ts: "), got


@pytest.mark.parametrize("number", [b"1" + b"0" * 40, b"-1" + b"0" * 40, b"Infinity", b"1e400"])
def test_numbers_no_datetime_can_hold_are_refused_never_crash(number: bytes) -> None:
    raw = orjson.dumps({**GOOD, "ts": 0}).replace(b'"ts":0', b'"ts":' + number)
    got = decode_interaction(raw, CATALOG)
    assert isinstance(got, Rejection) and got.reason in ("wrong_type", "not_json"), got


def test_check_time_survives_junk_record_timestamps() -> None:
    event = at(ARRIVAL)
    for arrival in (1e300, -1e300, float("inf"), 0.0, -62135596800.0 * 2):
        got = check_time(event, arrival, FUTURE, AGE)
        assert got is not None and got.reason == "bad_timestamp"


def test_timestamps_with_offsets_are_normalized_to_utc() -> None:
    event = Interaction.model_validate({**GOOD, "ts": "2026-11-22T14:31:05+02:00"})
    assert event.ts.utcoffset() == timedelta(0) and event.ts.hour == 12
    assert event.ts.timestamp() == 1795350665.0
