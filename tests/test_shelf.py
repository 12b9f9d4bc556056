"""Request-time decisions (`models.shelf`): a store's shelf plus a customer's taste ranks
what the worker's own decision ranks, after a round trip through JSON."""

from __future__ import annotations

import random

import orjson
import pytest

from config.catalog import load_catalog
from models.context import Context
from models.customer import CustomerModel
from models.layers import LearnerConfig
from models.learner import Learner
from models.policy import PolicyConfig
from models.shelf import Shelf, Taste, tailor
from models.trending import Trending, scopes_for

CATALOG = load_catalog()
GREEDY = PolicyConfig(explore_rate=0.0)
CHANNELS = ("app", "web", "drive_thru")


def trained(cfg: LearnerConfig) -> tuple[Learner, CustomerModel, Trending]:
    """A crowd, a customer and a store's trending that have each learned something."""
    learner, me, rng = Learner(CATALOG, cfg), CustomerModel(), random.Random(3)
    trending = Trending(half_life_s=3600.0)
    offers = list(CATALOG.offers.values())
    for n in range(400):
        offer = rng.choice(offers)
        ctx = Context(
            rng.choice(["breakfast", "lunch"]),
            temperature_c=rng.choice([8.0, 30.0]),
            channel=rng.choice(["app", "web"]),
            store_id="s-1",
        )
        yes = rng.random() < (0.6 if offer.category == "desserts" else 0.2)
        who = me if n % 4 == 0 else None
        learner.answer(who, offer, ctx, yes, now=float(n), choice=yes and n % 3 == 0)
        if yes:
            trending.add(offer.offer_id, 1.0, float(n), scopes_for("s-1", ctx.daypart, None))
    return learner, me, trending


def json_round_trip(shelf: Shelf, taste: Taste) -> tuple[Shelf, Taste]:
    raw_shelf = orjson.loads(orjson.dumps(shelf.as_json()))
    raw_taste = orjson.loads(orjson.dumps(taste.as_json()))
    return Shelf.from_json(raw_shelf, CATALOG, GREEDY), Taste.from_json(raw_taste)


@pytest.mark.parametrize("personal", [True, False])
@pytest.mark.parametrize("channel", [None, "app", "drive_thru"])
def test_shelf_and_taste_rank_as_the_workers_own_decision(
    personal: bool, channel: str | None
) -> None:
    cfg = LearnerConfig(personal=personal, policy=GREEDY)
    learner, me, trending = trained(cfg)
    assert learner.shared.together.clock > 0 and me.recent, "the test needs Together's part"
    now = 400.0
    here = Context("lunch", temperature_c=30.0, queue_length=6, store_id="s-1")
    decided = learner.decide_for(
        "c-1", me, "s-1", Context(**{**here.as_json(), "channel": channel}), trending, now,
        random.Random(0), "d-1", stock_out=("sundae",),
    )  # fmt: skip
    shelf = learner.shelf(here, trending, now, stock_out=("sundae",), channels=CHANNELS)
    shelf, taste = json_round_trip(shelf, learner.taste(me, now))
    ctx, offers = tailor(shelf, taste, channel, now, random.Random(0), GREEDY)
    assert ctx.channel == channel and ctx.store_id == "s-1"
    assert [o.offer_id for o in offers] == [o.offer_id for o in decided.offers]
    for mine, theirs in zip(offers, decided.offers, strict=True):
        assert mine.score == pytest.approx(theirs.score, rel=1e-3)
        assert mine.p_yes == pytest.approx(theirs.p_yes, rel=1e-3)
        assert mine.reasons == theirs.reasons
    assert "sundae" not in {o.offer_id for o in offers}


def test_the_same_taste_at_a_hot_and_a_cold_store_gets_each_stores_offers() -> None:
    learner, me, _ = trained(LearnerConfig(policy=GREEDY))
    taste = learner.taste(me, 400.0)
    hot = learner.shelf(Context("lunch", temperature_c=33.0, store_id="s-1"), None, 400.0)
    cold = learner.shelf(Context("lunch", temperature_c=2.0, store_id="s-2"), None, 400.0)
    _, at_hot = tailor(hot, taste, "app", 400.0, random.Random(0), GREEDY)
    _, at_cold = tailor(cold, taste, "app", 400.0, random.Random(0), GREEDY)
    assert [o.offer_id for o in at_hot] != [o.offer_id for o in at_cold]
    for store, offers in (("s-1", at_hot), ("s-2", at_cold)):
        sold = {o.offer_id for o in CATALOG.available(store, "lunch")}
        assert {o.offer_id for o in offers} <= sold


def test_the_frequency_cap_rests_an_offer_until_its_period_ends() -> None:
    learner, me, _ = trained(LearnerConfig(policy=GREEDY))
    here = Context("lunch", store_id="s-1")
    shelf = learner.shelf(here, None, 400.0)
    _, first = tailor(shelf, learner.taste(me, 400.0), None, 400.0, random.Random(0), GREEDY)
    top = first[0].offer_id
    for _ in range(GREEDY.frequency_cap):
        me.shown(top, 400.0)
    taste = learner.taste(me, 400.0)
    assert taste.capped == {top: 400.0 + GREEDY.frequency_cap_period_s}
    _, rested = tailor(shelf, taste, None, 401.0, random.Random(0), GREEDY)
    assert top not in {o.offer_id for o in rested}
    later = 400.0 + GREEDY.frequency_cap_period_s + 1
    _, back = tailor(shelf, taste, None, later, random.Random(0), GREEDY)
    assert back[0].offer_id == top


def test_a_shelf_drops_offers_the_catalog_no_longer_knows_and_refuses_a_bad_one() -> None:
    learner, _, _ = trained(LearnerConfig(policy=GREEDY))
    raw = learner.shelf(Context("lunch", store_id="s-1"), None, 0.0).as_json()
    raw["offers"][0] = "gone-from-the-menu"
    shelf = Shelf.from_json(raw, CATALOG, GREEDY)
    assert "gone-from-the-menu" not in shelf.menu.position
    assert len(shelf.menu) == len(raw["offers"]) - 1
    raw["z"][""] = raw["z"][""][:-1]
    with pytest.raises(ValueError, match="vector"):
        Shelf.from_json(raw, CATALOG, GREEDY)


def test_the_api_tailors_from_a_shelf_and_falls_back_on_an_unreadable_one() -> None:
    from engine.api.offers import Offers

    learner, me, trending = trained(LearnerConfig(policy=GREEDY))
    here = Context("lunch", temperature_c=30.0, store_id="s-1")
    shelf = {
        "store_id": "s-1",
        "shelves": {"engine-v1": learner.shelf(here, trending, 400.0).as_json()},
    }
    record = {"decision_id": "d-1", "store_id": "s-2", "taste": learner.taste(me, 400.0).as_json()}
    offers = Offers(CATALOG, None, GREEDY)  # type: ignore[arg-type] - no Redis read here
    tailored = offers.tailored("c-1", record, "s-1", orjson.dumps(shelf), "web", 4)
    assert tailored is not None and tailored["decision_id"].startswith("r-")
    assert tailored["store_id"] == "s-1" and tailored["context"]["channel"] == "web"
    assert len(tailored["offers"]) == 4
    for broken in (b"not json", b'{"shelves": {"engine-v1": {"offers": 3}}}', None):
        assert offers.tailored("c-1", record, "s-1", broken, "web", 4) is None
    assert (
        offers.tailored("c-1", {"decision_id": "d-1"}, "s-1", orjson.dumps(shelf), None, 4) is None
    )
