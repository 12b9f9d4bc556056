"""`tailor replay` and its pure parts: metrics computed by hand on tiny fixtures, the
estimators' logging-policy check, determinism, the JSON shape, and (when the shared data
is there) a smoke replay of every real source. No servers; seconds in all."""

from __future__ import annotations

import json
import math
import os
import statistics
from pathlib import Path
from typing import Any

import pytest

from engine import cli
from engine.replay.baselines import BiasedMF, RandomPolicy, TrendingPolicy
from engine.replay.loop import ReplayError
from engine.replay.main import SOURCES, replay
from engine.replay.metrics import (
    Z_95,
    auc,
    epsilon_greedy_probability,
    hit_at_k,
    ips,
    logloss,
    snips,
)
from engine.replay.sources.coupon import read_coupon
from engine.replay.sources.interactions import read_interactions, replay_interactions
from engine.replay.sources.open_bandit import replay_open_bandit
from engine.replay.sources.simulator import write_simulated_interactions
from models.context import Context
from models.offer import DAYPARTS, Offer

FIXTURES = Path(__file__).parent / "fixtures"
INTERACTIONS = FIXTURES / "interactions.csv"
OPEN_BANDIT = FIXTURES / "open-bandit"
COUPON = FIXTURES / "coupon.csv"
DATA = Path(
    os.environ.get("TAILOR_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data"
)


# ---- pure metrics --------------------------------------------------------------------


def test_auc_is_exact_with_ties() -> None:
    # Positives 0.8, 0.5, 0.5; negatives 0.5, 0.2: pairs 1 + 1 + 0.5 + 1 + 0.5 + 1 = 5 of 6.
    assert auc([1, 1, 1, 0, 0], [0.8, 0.5, 0.5, 0.5, 0.2]) == pytest.approx(5 / 6, abs=1e-15)
    assert auc([0, 1], [0.9, 0.1]) == 0.0
    assert auc([0, 0], [0.1, 0.2]) is None


def test_logloss_by_hand() -> None:
    expected = -(math.log(0.9) + math.log(1 - 0.3) + math.log(0.5)) / 3
    assert logloss([1, 0, 1], [0.9, 0.3, 0.5]) == pytest.approx(expected, rel=1e-12)
    assert logloss([], []) is None
    assert math.isfinite(logloss([1], [0.0]) or math.inf)  # clipped, not infinite


def test_hit_at_k_shares_ties_at_the_cut() -> None:
    assert hit_at_k([0.3, 0.2, 0.1], target=0, k=1) == 1.0
    assert hit_at_k([0.3, 0.2, 0.1], target=2, k=2) == 0.0
    assert hit_at_k([0.5, 0.5, 0.5, 0.1], target=1, k=2) == pytest.approx(2 / 3)
    assert hit_at_k([0.1, 0.2], target=0, k=10) == 1.0  # fewer offers than k


def test_epsilon_greedy_probabilities_sum_to_one() -> None:
    scores = [0.3, 0.9, 0.9, 0.1]
    probs = [epsilon_greedy_probability(scores, a, 0.1) for a in range(4)]
    assert sum(probs) == pytest.approx(1.0)
    assert probs[1] == probs[2] == pytest.approx(0.45 + 0.025)


def test_ips_and_snips_on_a_four_row_log_by_hand() -> None:
    rewards = [1.0, 0.0, 1.0, 0.0]
    target = [0.5, 0.2, 1.0, 0.0]
    logged = [0.25, 0.5, 0.5, 0.25]
    terms = [2.0, 0.0, 2.0, 0.0]  # pi / mu * r
    v = ips(rewards, target, logged)
    assert v.estimate == 1.0
    half = Z_95 * statistics.stdev(terms) / 2  # sqrt(n) = 2
    assert (v.low, v.high) == (pytest.approx(1.0 - half), pytest.approx(1.0 + half))
    s = snips(rewards, target, logged)
    assert s.estimate == pytest.approx(4.0 / (2.0 + 0.4 + 2.0 + 0.0))
    assert s.low < s.estimate < s.high


def test_ips_of_the_logging_policy_is_the_logged_ctr_exactly() -> None:
    rewards = [0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0]
    logged = [0.9, 1e-6, 0.3, 0.029411764705882353, 0.5, 0.1, 0.77]
    assert ips(rewards, logged, logged).estimate == math.fsum(rewards) / len(rewards)
    assert snips(rewards, logged, logged).estimate == math.fsum(rewards) / len(rewards)


# ---- baselines -----------------------------------------------------------------------

FRIES = Offer("fries", "Fries", "sides", 1.0, 30, frozenset(DAYPARTS))
PIE = Offer("pie", "Pie", "desserts", 1.0, 30, frozenset(DAYPARTS))
NOON = Context("lunch", store_id="s-1")


def test_baselines_learn_what_they_should() -> None:
    trending, mf, random_policy = TrendingPolicy(), BiasedMF(seed=1), RandomPolicy(seed=1)
    for t in range(30):
        for policy in (trending, mf, random_policy):
            policy.learn("c-1", FRIES, NOON, 1.0, float(t))
            policy.learn("c-1", PIE, NOON, 0.0, float(t))
    fries, pie = trending.scores("c-1", [FRIES, PIE], NOON, 30.0)
    assert fries > pie == 0.0
    assert (
        trending.p_yes("c-1", FRIES, NOON, 30.0)
        > 0.9
        > 0.1
        > trending.p_yes("c-1", PIE, NOON, 30.0)
    )
    assert mf.p_yes("c-1", FRIES, NOON, 30.0) > mf.p_yes("c-1", PIE, NOON, 30.0)
    assert RandomPolicy(seed=1).scores(None, [FRIES, PIE], NOON, 0.0) == RandomPolicy(
        seed=1
    ).scores(None, [FRIES, PIE], NOON, 0.0)
    assert 0.0 < random_policy.p_yes(None, PIE, NOON, 0.0) < 1.0


# ---- interactions --------------------------------------------------------------------


def test_interactions_are_read_in_time_order_with_scaled_context() -> None:
    events, catalog = read_interactions(INTERACTIONS)
    assert [e.ts for e in events] == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    assert [e.offer.offer_id for e in events] == ["a", "a", "b", "b", "c", "c"]
    assert list(catalog.offers) == ["a", "b", "c"]
    assert events[4].customer_id is None  # an empty customer_id: anonymous
    assert events[0].ctx.extra == {"mood": "happy", "spend": -1.0}
    assert events[1].ctx.extra == {"mood": "sad", "spend": 0.0}
    assert events[5].ctx.extra == {"mood": "happy", "spend": 1.0}
    assert events[3].ctx.extra == {"mood": "sad"}  # empty values are no feature
    assert all(catalog.available(e.ctx.store_id, d) for e in events for d in DAYPARTS)


def test_interactions_popularity_by_hand() -> None:
    """Popularity ranks by yes-count and says P(yes) = (yes + 1) / (asked + 2). In time order:
    u1 a yes: tie of 3, hit@1 1/3 (all: 1/3); u2 a yes: a leads, 1 (1); u1 b no (not ranked);
    u2 b yes: among b, c (u2 bought a) a tie, 1/2 (all: a leads, 0); anonymous c yes: a and
    b lead, 0 (0); u1 c yes: among b, c a tie, 1/2 (all: a leads, 0)."""
    report = replay_interactions(INTERACTIONS, k=1)
    pop = report["policies"]["popularity"]
    assert pop["hit_at_1"] == pytest.approx((1 / 3 + 1 + 1 / 2 + 0 + 1 / 2) / 5, abs=1e-6)
    assert pop["hit_at_1_all"] == pytest.approx((1 / 3 + 1) / 5, abs=1e-6)
    assert (pop["ranked"], pop["ranked_all"]) == (5, 5)
    # P(yes) before learning: 1/2, 2/3, 1/2 (the no), 1/3, 1/2, 2/3.
    assert pop["auc"] == pytest.approx((0.5 + 1 + 0 + 0.5 + 1) / 5, abs=1e-6)
    expected = -(3 * math.log(1 / 2) + 2 * math.log(2 / 3) + math.log(1 / 3)) / 6
    assert pop["logloss"] == pytest.approx(expected, abs=1e-6)
    # Fewer offers than 10: the answered offer is always in the top 10.
    report = replay_interactions(INTERACTIONS)
    assert all(p["hit_at_10"] == 1.0 for p in report["policies"].values())


def test_interactions_reject_a_file_without_the_needed_columns(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("customer_id,offer_id,reward\nu1,a,1\n")
    with pytest.raises(ReplayError, match="timestamp"):
        read_interactions(bad)
    bad.write_text("customer_id,offer_id,timestamp,reward\nu1,a,yesterday,1\n")
    with pytest.raises(ReplayError, match=r"bad\.csv:2"):
        read_interactions(bad)


# ---- open bandit ---------------------------------------------------------------------


def test_open_bandit_popularity_and_logger_check_by_hand() -> None:
    """Popularity, epsilon-greedy (eps 0.05, 3 items), before learning each row: a 3-way
    tie (pi 1/3), then item 0 leads (pi of item 1: 0.05/3; of item 0: 0.95 + 0.05/3; of
    item 2: 0.05/3). Weights pi / mu with mu = 0.5, 0.25, 0.5, 0.25."""
    report = replay_open_bandit(OPEN_BANDIT)
    weights = [(1 / 3) / 0.5, (0.05 / 3) / 0.25, (0.95 + 0.05 / 3) / 0.5, (0.05 / 3) / 0.25]
    clicks = [1, 0, 1, 0]
    terms = [w * r for w, r in zip(weights, clicks, strict=True)]
    pop = report["policies"]["popularity"]
    assert pop["ips"]["estimate"] == pytest.approx(sum(terms) / 4, abs=1e-6)
    half = Z_95 * statistics.stdev(terms) / 2
    assert pop["ips"]["low"] == pytest.approx(sum(terms) / 4 - half, abs=1e-6)
    assert pop["snips"]["estimate"] == pytest.approx(sum(terms) / sum(weights), abs=1e-6)
    check = report["reference"]["logger_check"]
    assert check["logged_ctr"] == 0.5 == check["ips_of_logger"]
    assert check["reproduces_logged_ctr"] is True
    assert "0.13" in report["reference"]["caution"]


# ---- coupon --------------------------------------------------------------------------


def test_coupon_rows_become_events_of_respondents() -> None:
    events, catalog, rows = read_coupon(COUPON)
    assert len(events) == len(rows) == 6
    assert len(catalog.offers) == 5
    ids = [e.customer_id for e in events]
    assert ids[0] == ids[1] == ids[2] != ids[3] == ids[4] == ids[5]
    first = events[0].ctx
    assert (first.daypart, first.weather, first.temperature_c) == ("afternoon", "sunny", 26.7)
    assert first.extra["passanger"] == "Alone" and first.extra["CoffeeHouse"] == "1~3"
    assert events[2].ctx.thermal == "cold" and events[2].ctx.weather == "snow"
    assert [e.reward for e in events] == [1.0, 0.0, 1.0, 1.0, 0.0, 0.0]


# ---- determinism, shape, CLI ---------------------------------------------------------


def _shape(report: dict[str, Any]) -> None:
    assert set(report) == {"source", "events", "policies", "reference"}
    assert {"engine", "engine_shared_only", "popularity", "trending", "biased_mf", "random"} <= set(
        report["policies"]
    )


def test_same_seed_same_report() -> None:
    first = replay("simulator", None, limit=150, seed=3)
    again = replay("simulator", None, limit=150, seed=3)
    assert json.dumps(first) == json.dumps(again)
    _finite(first)
    assert first["events"] == 150
    assert replay("simulator", None, limit=150, seed=4) != first


def test_cli_prints_exactly_one_json_object(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["replay", "interactions", "--data", str(INTERACTIONS), "--json"])
    out = capsys.readouterr().out
    assert code == 0
    report = json.loads(out)  # one object, nothing else on stdout
    _shape(report)
    assert report["source"] == "interactions" and report["events"] == 6


def test_cli_table_and_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert cli.main(["replay", "open-bandit", "--data", str(OPEN_BANDIT)]) == 0
    out = capsys.readouterr().out
    assert "engine_shared_only" in out and "reproduces_logged_ctr: yes" in out
    assert cli.main(["replay", "coupon", "--data", str(tmp_path)]) == 2
    assert "no in-vehicle-coupon-recommendation.csv" in capsys.readouterr().err
    for source in SOURCES:  # the CLI's inline options know every source
        assert cli.parser().parse_args(["replay", source]).source == source


# ---- the real datasets, when they are there -------------------------------------------

needs_data = pytest.mark.skipif(not DATA.is_dir(), reason=f"no shared data at {DATA}")


def _finite(report: dict[str, Any]) -> None:
    _shape(report)
    for name, metrics in report["policies"].items():
        for key, value in metrics.items():
            if key.startswith("reliability"):
                assert all(0 <= row["p_yes"] <= 1 and row["n"] > 0 for row in value)
                continue
            if isinstance(value, dict):
                value = value["estimate"]
            assert value is None or math.isfinite(value), (name, key, value)


@needs_data
@pytest.mark.parametrize("source", ["coupon", "open-bandit"])
def test_real_sources_smoke(source: str) -> None:
    report = replay(source, DATA, limit=400)
    _finite(report)
    assert report["events"] == 400
    if source == "open-bandit":
        assert report["reference"]["logger_check"]["reproduces_logged_ctr"] is True
        assert report["reference"]["logger_check_bts"]["reproduces_logged_ctr"] is True
    else:
        assert report["policies"]["engine"]["auc"] is not None
        assert report["reference"]["gbm"]["auc"] is not None


def test_simulated_interactions_smoke(tmp_path: Path) -> None:
    path = tmp_path / "sim.csv"
    rows = write_simulated_interactions(path, visits=120, seed=5)
    report = replay("interactions", path, limit=400)
    _finite(report)
    assert report["events"] == min(rows, 400)
    assert report["policies"]["engine"]["hit_at_10"] is not None


# ---- off-policy evaluation of served decisions -----------------------------------------


def test_off_policy_estimates_of_a_known_policy_hold_its_true_simulated_value(
    tmp_path: Path,
) -> None:
    """Log with one policy (the engine exploring at 0.3, one offer per visit), estimate
    others from the log, and compare with their true value on the same visits (exact,
    from the world's P(yes)): the true values of the known policy (the world's best offer,
    epsilon-greedy) and of a uniformly random one lie within the 95% intervals of IPS and
    doubly robust, SNIPS comes within 20%, and the two policies are told apart."""
    from config.catalog import load_catalog
    from engine.replay.sources.decisions import replay_decisions
    from engine.replay.sources.simulator import WorldPolicy, write_simulated_decisions

    log = tmp_path / "served.jsonl"
    world, truth = write_simulated_decisions(log, 4000, seed=7, explore=0.3)
    report = replay_decisions(log, load_catalog(), extra={"known": WorldPolicy(world)})
    for name, true_value in (("known", truth["known"]), ("random", truth["uniform"])):
        for estimator in ("ips", "dr"):  # unbiased: the truth lies in their intervals
            got = report["policies"][name][estimator]
            assert got["low"] <= true_value <= got["high"], (name, estimator, got, true_value)
        snips = report["policies"][name]["snips"]["estimate"]  # biased, consistent
        assert abs(snips - true_value) < 0.2 * true_value
    assert report["policies"]["random"]["dr"]["high"] < report["policies"]["known"]["dr"]["low"]


def test_a_served_log_line_that_is_neither_decision_nor_answer_is_refused(
    tmp_path: Path,
) -> None:
    from config.catalog import load_catalog
    from engine.replay.sources.decisions import read_decisions

    log = tmp_path / "served.jsonl"
    log.write_text('{"decision_id": "d-1", "offer_id": "fries", "reward": 2.5}\n{"oops": 1}\n')
    with pytest.raises(ReplayError, match=r"served\.jsonl:2: neither a decision nor an answer"):
        read_decisions(log, load_catalog())
