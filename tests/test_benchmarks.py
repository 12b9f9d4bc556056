"""The throughput benchmark's pure helpers (no servers)."""

from __future__ import annotations

import json
import os
import shutil
from datetime import datetime

import orjson
import pytest

from benchmarks.latency import live_events, percentile
from benchmarks.throughput import decision_payload, make_events
from config.catalog import load_catalog
from engine.wire.events import Interaction, decode_interaction
from engine.wire.metrics import totals
from models.context import daypart_at

CATALOG = load_catalog()


def test_generated_events_are_valid_seeded_and_mostly_impressions() -> None:
    events = make_events(2_000, 300, CATALOG, seed=3)
    assert events == make_events(2_000, 300, CATALOG, seed=3)
    assert events != make_events(2_000, 300, CATALOG, seed=4)
    for raw in events:
        event = decode_interaction(orjson.dumps(raw), CATALOG)
        assert isinstance(event, Interaction), event
        assert event.store_id in ("s-1", "s-2", "s-3")
        assert int(event.customer_id.removeprefix("c-")) < 300
        daypart = daypart_at(event.ts.timestamp(), CATALOG.stores[event.store_id].utc_offset_h)
        assert event.offer_id in {o.offer_id for o in CATALOG.available(event.store_id, daypart)}
    types = [e["type"] for e in events]
    assert 0.7 < types.count("impression") / len(types) < 0.9
    assert types.count("purchase") > 0 and types.count("click") > 0
    assert len({e["event_id"] for e in events}) == len(events)
    dayparts = {daypart_at(datetime.fromisoformat(e["ts"]).timestamp()) for e in events}
    assert len(dayparts) == 5


def test_decision_payload_is_json_of_about_the_size_asked() -> None:
    payload = decision_payload(1024)
    assert abs(len(payload) - 1024) <= 8
    assert orjson.loads(payload)["offers"]


def test_metric_totals_sum_tailor_samples_over_labels() -> None:
    text = (
        "# TYPE tailor_events_total counter\n"
        'tailor_events_total{type="impression",outcome="question"} 3.0\n'
        'tailor_events_total{type="click",outcome="answer"} 2.0\n'
        "# TYPE other_total counter\n"
        "other_total 9.0\n"
    )
    summed = totals(text)
    assert summed["tailor_events_total"] == 5.0
    assert "other_total" not in summed


def test_live_events_each_have_a_customer_and_an_id_of_their_own() -> None:
    live = live_events(make_events(50, 5, CATALOG, seed=1), "r1")
    assert len({e["customer_id"] for e in live}) == 50
    assert len({e["event_id"] for e in live}) == 50
    assert all(isinstance(decode_interaction(orjson.dumps(e), CATALOG), Interaction) for e in live)


def test_percentiles_by_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.99) == 99.0
    assert percentile([3.0], 0.99) == 3.0
    assert percentile([], 0.5) == 0.0


def test_server_p99_is_the_bucket_holding_99_percent_between_two_scrapes() -> None:
    from benchmarks.serving import server_p99_ms

    before = {0.001: 10.0, 0.002: 10.0, 0.005: 10.0, float("inf"): 10.0}
    after = {0.001: 60.0, 0.002: 109.0, 0.005: 110.0, float("inf"): 110.0}
    assert server_p99_ms(before, after) == 2.0  # 99 of the 100 new requests within 2 ms
    after[0.002] = 108.0
    assert server_p99_ms(before, after) == 5.0  # 98: the next bucket
    assert server_p99_ms(after, after) is None  # nothing between the scrapes


@pytest.mark.e2e
def test_serving_benchmark_runs_end_to_end_and_reports_its_figures(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A tiny run of benchmarks.serving through wrk, redis-benchmark and a real API: figures
    come back (no timing is asserted: the machine is shared)."""
    from benchmarks import serving

    if shutil.which("wrk") is None or shutil.which("redis-benchmark") is None:
        if os.geteuid() == 0:
            pytest.fail("wrk or redis-benchmark is missing: `make setup` installs them")
        pytest.skip("wrk or redis-benchmark is missing: `sudo apt-get install wrk redis-tools`")
    args = ["--duration", "1", "--customers", "200", "--connections", "4", "--json"]
    assert serving.main(args) == 0
    out = capsys.readouterr().out
    assert "serving | wrk 4 connections" in out
    result = json.loads(out.strip().splitlines()[-1])
    assert result["peak"]["rps"] > 0 and result["peak"]["non_2xx"] == 0
    assert result["peak"]["p99_ms"] > 0 and result["peak"]["server_p99_ms"] > 0
    assert result["redis_get"]["rps"] > 0 and result["ratio_to_redis"] > 0
    half = result["half_peak"]  # paced by wrk's delay() (its rate is timing: not asserted)
    assert half["connections"] == serving.PACED_CONNECTIONS and half["delay_ms"] >= 1
    assert half["rps"] > 0 and half["non_2xx"] == 0
    assert result["one_connection"]["rps"] > 0
    assert set(result["targets"]) == {
        "server p99 <= 2 ms at half the peak",
        "throughput >= 0.2 x raw Redis GET",
    }
    assert "API / raw Redis GET" in serving.report(result)
