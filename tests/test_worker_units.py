"""The worker's record handling without servers: dead letters, store answers, commands.

The end-to-end and fault-injection suites prove the pipeline on real Kafka and Redis;
these pin down the rules those depend on, quickly.
"""

from __future__ import annotations

import hashlib
import tempfile
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from config.settings import Settings
from engine.wire.events import Rejection
from engine.worker.app import Worker, build
from engine.worker.commands import Command, command_of
from engine.worker.dead_letter import MAX_KEY_BYTES, dead_letter_record
from engine.worker.stores import NO_STORE, learn_answer


@pytest.fixture(scope="module")
def worker() -> Worker:
    return build(Settings(state_dir=tempfile.mkdtemp(), dead_letter_max_bytes=4096))


def record(value: bytes, key: bytes | None = b"c-1", headers: Any = None) -> Any:
    message = SimpleNamespace(
        topic="tailor.interactions", partition=3, offset=77, key=key, value=value,
        headers=headers or [], timestamp=1_700_000_000.0,
    )  # fmt: skip
    return SimpleNamespace(message=message, value=value)


def test_a_payload_too_large_to_resend_is_cut_with_its_length_and_digest(worker: Worker) -> None:
    big = b"x" * 1_000_000
    out = dead_letter_record(worker, record(big), Rejection("not_json", "body is not JSON"))
    headers = dict(out.headers)
    assert len(out.value) == 4096 and out.value == big[:4096]
    assert headers["tailor.truncated"] == b"1"
    assert headers["tailor.length"] == b"1000000"
    assert headers["tailor.sha256"] == hashlib.sha256(big).hexdigest().encode()
    assert headers["tailor.source"] == b"tailor.interactions/3/77"


def test_a_small_payload_and_a_binary_key_are_kept_byte_for_byte(worker: Worker) -> None:
    out = dead_letter_record(worker, record(b"{nope", key=b"\xff\xfe"), Rejection("not_json", "x"))
    assert out.value == b"{nope" and out.key == b"\xff\xfe"
    assert "tailor.truncated" not in dict(out.headers)


def test_a_huge_key_is_replaced_by_its_digest(worker: Worker) -> None:
    key = b"k" * (MAX_KEY_BYTES + 1)
    out = dead_letter_record(worker, record(b"{}", key=key), Rejection("bad_key", "x"))
    assert out.key is None
    assert dict(out.headers)["tailor.key_sha256"] == hashlib.sha256(key).hexdigest().encode()


def answer(offset: int, partition: int = 0, store: str | None = "s-1") -> dict[str, Any]:
    return {
        "store_id": store, "offer_id": "fries", "type": "purchase", "ts": 1_700_000_000.0,
        "daypart": "lunch", "weather": "sunny", "src": [partition, offset],
    }  # fmt: skip


def test_a_store_answer_counts_once_however_often_it_is_sent(worker: Worker) -> None:
    state: dict[str, Any] = {}
    assert learn_answer(worker, state, answer(10))
    assert not learn_answer(worker, state, answer(10)), "the same source record again"
    assert not learn_answer(worker, state, answer(9)), "an older one, resent after a crash"
    assert learn_answer(worker, state, answer(11))
    assert learn_answer(worker, state, answer(5, partition=1)), "partitions are apart"
    assert state["popular"]["fries"] == pytest.approx(3.0)
    assert state["applied"] == {"0": 11, "1": 5}
    assert "trending" in state


def test_answers_outside_a_store_count_for_popularity_only(worker: Worker) -> None:
    state: dict[str, Any] = {}
    assert learn_answer(worker, state, answer(1, store=None))
    assert state["popular"] == {"fries": 1.0} and "trending" not in state
    assert NO_STORE not in worker.catalog.stores


def test_commands_name_their_owner_and_malformed_ones_are_refused() -> None:
    def cmd(name: bytes, body: object) -> Any:
        return command_of(record(orjson.dumps(body), headers=[("tailor.command", name)]))

    handover = cmd(b"handover", {"customer_id": "c-1", "session_id": "anon-1",
                                 "context": {}, "asked_at": 1.0})  # fmt: skip
    assert isinstance(handover, Command) and handover.owner == "anon-1"
    merge = cmd(b"merge", {"customer_id": "c-1", "session_id": "anon-1",
                           "context": {}, "asked_at": 1.0})  # fmt: skip
    assert isinstance(merge, Command) and merge.owner == "c-1"
    assert merge.identity == "merge:anon-1:1.0"
    expire = cmd(b"expire", {"customer_id": "c-2", "context": {"daypart": "lunch"}})
    assert isinstance(expire, Command) and expire.owner == "c-2" and expire.identity is None
    assert isinstance(cmd(b"explode", {"customer_id": "c"}), Rejection)
    assert isinstance(cmd(b"forget", {"nobody": 1}), Rejection)
    assert command_of(record(b"{}")) is None


def window_noes(worker: Worker) -> float:
    from engine.wire import metrics

    return sum(
        s.value
        for m in metrics.ANSWERS.collect()
        for s in m.samples
        if s.name.endswith("_total") and s.labels.get("source") == "window"
    )


def test_answer_windows_run_on_event_time_not_arrival(worker: Worker) -> None:
    """A feed running late (or a backfill) keeps a question and its answer together, and
    apart what was apart in time, however close together the records arrive."""
    from engine.wire.events import Interaction
    from engine.worker.batch import Batch
    from engine.worker.interactions import learn

    window = worker.settings.answer_window_s
    t0 = 1_700_000_000.0

    def event(kind: str, ts: float, n: int) -> Interaction:
        return Interaction.model_validate(
            {"event_id": f"e-{kind}-{n}-{ts}", "type": kind, "customer_id": f"c-{n}",
             "store_id": "s-1", "offer_id": "fries", "ts": ts}
        )  # fmt: skip

    def run(n: int, answered_after: float, arrives_after: float) -> float:
        batch = Batch({})
        model = batch.model(f"c-{n}")
        before = window_noes(worker)
        shown_at = t0 + 10 * window  # a backfill: both arrive long after they happened
        learn(worker, batch, event("impression", t0, n), model, shown_at, (0, 1), {}, {})
        arrival = shown_at + arrives_after
        got = event("purchase", t0 + answered_after, n)
        learn(worker, batch, got, model, arrival, (0, 2), {}, {})
        return window_noes(worker) - before

    assert run(1, answered_after=window / 2, arrives_after=3 * window) == 0, "late, still a yes"
    assert run(2, answered_after=3 * window, arrives_after=1.0) == 1, "answered too late: a no"
    assert run(3, answered_after=window / 2, arrives_after=1.0) == 0


def test_every_dead_letter_reason_is_a_series_from_the_start() -> None:
    """A counter first seen at 1 has no step for rate() or increase() to see: the first
    dead letter of a reason would never reach a chart."""
    from prometheus_client import REGISTRY

    from engine.wire.events import REASONS

    for reason in REASONS:
        value = REGISTRY.get_sample_value("tailor_dead_letters_total", {"reason": reason})
        assert value is not None, reason
