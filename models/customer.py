"""One customer's own model: how their answers differ from what everyone teaches.

The 1-1 loop: a decision asks a question (the offers shown); a yes to one offer is also
a soft no to the others asked alongside it, and an offer shown with no yes within the
answer window is a no. The model is a `Residual` around the crowd's logit, so a new
customer's first decision is the crowd's and each answer moves it toward their own.

>>> from models.offer import Offer
>>> from models.context import Context
>>> fries = Offer("fries", "Fries", "sides", 2.4, 40, frozenset({"lunch"}))
>>> pie = Offer("pie", "Pie", "desserts", 1.9, 45, frozenset({"lunch"}))
>>> m, noon = CustomerModel(), Context("lunch")
>>> m.predict_one(fries, noon, 0.0) == m.predict_one(pie, noon, 0.0) == 0.5  # the crowd's
True
>>> for _ in range(5):
...     m.learn(fries, noon, 0.0, yes=True, alternatives=[(pie, 0.0)])
>>> m.predict_one(fries, noon, 0.0) > 0.5 > m.predict_one(pie, noon, 0.0)
True
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from models.context import Context
from models.offer import Offer
from models.residual import Residual, Vector

if TYPE_CHECKING:
    from models.scoring import Menu
    from models.shared import Index

ALTERNATIVE_WEIGHT = 0.3  # a yes says less about offers not known to have been shown
MAX_STATE_BYTES = 2048
# Answers remembered to refuse a second delivery of the same event_id (a client retry):
# retries come within seconds, and 24 digests of 40 bits cost about 500 bytes of state.
SEEN_MAX = 24
YESES_MAX = 8  # offers whose funnel (click, add-to-cart, purchase) is remembered
RECENT_MAX = 20  # the choices a customer's next choice is paired with (`Together.history`)


def digest(event_id: str) -> int:
    """A 40-bit digest of an event id: the chance two of a customer's last 24 collide is
    about 2e-11."""
    return int.from_bytes(hashlib.blake2b(event_id.encode(), digest_size=5).digest(), "big")


def features(offer: Offer, ctx: Context) -> dict[str, float]:
    """A customer's taste: for this offer, its category, in this daypart and weather."""
    x = {
        "o=" + offer.offer_id: 1.0,
        "c=" + offer.category: 1.0,
        f"c={offer.category}|{ctx.daypart}": 1.0,
        f"c={offer.category}|{ctx.thermal}": 1.0,
    }
    for tag in offer.tags:
        x["t=" + tag] = 1.0
    return x


def _when(entry: float | list[float]) -> float:
    """The time of a `pending` entry (a time) or an `unanswered` entry ([count, time])."""
    return float(entry[-1]) if isinstance(entry, list) else float(entry)


class CustomerModel:
    """A customer's residual model, their open questions and their unanswered offers."""

    VERSION = 2

    def __init__(self, learning_rate: float = 0.4, l2: float = 1e-3) -> None:
        self._model = Residual(learning_rate, l2=l2, intercept_lr=learning_rate / 4)
        self.answers = 0
        self.asked: tuple[str, ...] = ()  # the offers of the latest decision
        self.pending: dict[str, float] = {}  # offer shown (an impression) -> when
        self.unanswered: dict[str, tuple[int, float]] = {}  # offer -> (times shown, last shown)
        self.recent: list[str] = []  # the latest choices (purchases), oldest first
        self.asked_in: Context | None = None  # where the open impressions were shown
        self.slots: dict[str, int] = {}  # open impression -> the slot it was shown in
        self.yeses: dict[str, tuple[float, float]] = {}  # offer -> (strongest yes, when)
        # Exactly once on at-least-once delivery: the last record applied (partition,
        # offset), so a replay after a crash is recognized, and the recent event digests
        # with the offset each was first applied at, so a resent event_id is too.
        self.position: tuple[int, int] | None = None
        self.seen: dict[int, int] = {}
        self.last_seen: float | None = None  # arrival time of the last record: idle expiry
        # The lane whose board shows their offers after a loyalty scan (store, lane, until
        # when, the decision shown): what forgetting them must clear too (the lane's board
        # names no one).
        self.lane: tuple[str, int, float, str] | None = None

    def replayed(self, partition: int, offset: int) -> bool:
        """Was this record applied already (Kafka redelivers after a crash or rebalance)?"""
        return (
            self.position is not None
            and self.position[0] == partition
            and offset <= self.position[1]
        )

    def first_seen_at(self, event_id: str) -> int | None:
        """The offset this event id was first applied at, if it is among the recent ones."""
        return self.seen.get(digest(event_id))

    def applied(self, partition: int, offset: int, at: float, event_id: str | None = None) -> None:
        """Record that the record at (partition, offset), arrived at `at` and carrying
        `event_id`, is applied."""
        self.position = (partition, offset)
        self.last_seen = at
        if event_id is not None:
            self.seen[digest(event_id)] = offset
            while len(self.seen) > SEEN_MAX:
                del self.seen[next(iter(self.seen))]

    def ask(self, offer_ids: Sequence[str]) -> None:
        """Remember the offers of the customer's latest decision (the open question)."""
        self.asked = tuple(offer_ids)

    def shown(
        self, offer_id: str, ts: float, ctx: Context | None = None, slot: int | None = None
    ) -> None:
        """An impression: the question was asked (in `ctx` and `slot`, where its answer
        belongs); a yes may follow within the window."""
        if ctx is not None:
            self.asked_in = ctx
        if slot is not None:
            self.slots[offer_id] = slot
        else:
            self.slots.pop(offer_id, None)
        self.pending[offer_id] = ts
        count, _ = self.unanswered.get(offer_id, (0, ts))
        self.unanswered[offer_id] = (count + 1, ts)

    def times_unanswered(self, offer_id: str, now: float, period_s: float) -> int:
        """How often the offer was shown without a yes, forgotten `period_s` after it was
        last shown (the frequency cap's memory)."""
        count, last = self.unanswered.get(offer_id, (0, now))
        return count if now - last <= period_s else 0

    def expired(self, now: float, window_s: float) -> list[str]:
        """Offers shown longer than `window_s` ago with no yes: each is a no to learn."""
        gone = [o for o, ts in self.pending.items() if now - ts > window_s]
        for offer_id in gone:
            del self.pending[offer_id]
        return gone

    def alternatives(self, chosen: str) -> list[str]:
        """What was asked alongside a yes: open impressions, else the latest decision."""
        # An impression of the chosen offer alone asked nothing alongside it.
        shown = [o for o in self.pending if o != chosen]
        return shown or [o for o in self.asked if o != chosen]

    def learn(
        self,
        offer: Offer,
        ctx: Context,
        offset: float,
        yes: bool,
        strength: float = 1.0,
        alternatives: Iterable[tuple[Offer, float]] = (),
        alternative_weight: float = ALTERNATIVE_WEIGHT,
    ) -> None:
        """Learn one answer around the crowd's logit `offset`; on a yes, each alternative
        (offer, its crowd logit) gets a no of `alternative_weight` and the open question
        is closed."""
        self._model.learn_one(features(offer, ctx), offset, yes, strength)
        alternatives = list(alternatives)
        if yes:
            for alt, alt_offset in alternatives:
                if alt.offer_id != offer.offer_id:
                    self._model.learn_one(
                        features(alt, ctx), alt_offset, False, strength * alternative_weight
                    )
        self.close(offer.offer_id, yes, [alt.offer_id for alt, _ in alternatives])

    def funnel(self, offer_id: str, strength: float, now: float, window_s: float) -> float:
        """What a yes of `strength` adds to the yes already learned for this offer within
        the window (a click, then add-to-cart, then purchase is one answer, graded: the
        strongest wins): the whole of it for a first yes, nothing for a repeated click.
        A purchase ends the funnel: the next purchase is an answer of its own."""
        for o in [o for o, (_, t) in self.yeses.items() if now - t > window_s]:
            del self.yeses[o]
        before, _ = self.yeses.pop(offer_id, (0.0, now))
        if max(before, strength) < 1.0:  # a full yes (a purchase) ends the funnel
            self.yeses[offer_id] = (max(before, strength), now)
            while len(self.yeses) > YESES_MAX:
                del self.yeses[next(iter(self.yeses))]
        return max(0.0, strength - before)

    def chose(self, offer_id: str) -> None:
        """A choice (a purchase): what `Together` pairs the next ones with."""
        if offer_id in self.recent:
            self.recent.remove(offer_id)
        self.recent.append(offer_id)
        del self.recent[:-RECENT_MAX]

    def close(self, offer_id: str, yes: bool, alternatives: Iterable[str] = ()) -> None:
        """An answer closes the question: a yes also clears the offer's frequency count
        and the questions asked alongside it."""
        self.pending.pop(offer_id, None)  # answered, yes or no: never a no by the window too
        if yes:
            for alt in alternatives:
                self.pending.pop(alt, None)
            self.unanswered.pop(offer_id, None)
        self.answers += 1

    def merge(self, session: CustomerModel) -> None:
        """Take in what an anonymous session taught (a login, a loyalty scan). Both are
        residuals around the same crowd, learned from different answers, so their weights
        add; counts, open questions and unanswered offers add up too."""
        weights = self._model.weights()
        for key, value in session._model.weights().items():
            weights[key] = weights.get(key, 0.0) + value
        self._model.load(weights, self._model.intercept + session._model.intercept)
        self.answers += session.answers
        for offer_id in session.recent:
            self.chose(offer_id)
        for offer_id, ts in session.pending.items():
            self.pending[offer_id] = max(ts, self.pending.get(offer_id, ts))
        self.slots.update(session.slots)
        for offer_id, (count, last) in session.unanswered.items():
            mine, my_last = self.unanswered.get(offer_id, (0, last))
            self.unanswered[offer_id] = (mine + count, max(last, my_last))

    def predict_one(self, offer: Offer, ctx: Context, offset: float) -> float:
        return self._model.predict_one(features(offer, ctx), offset)

    def residuals(self, menu: Menu, at: Index, ctx: Context) -> Vector:
        """`predict_one`'s w . x + b for the menu's offers at positions `at`, reading only
        the weights this customer holds (a sparse add, not a walk over the menu)."""
        # Python floats while summing: a numpy element update costs ten times as much.
        cats, tags = [0.0] * len(menu.categories), [0.0] * (len(menu.tags) + 1)
        own: list[tuple[int, float]] = []
        now = (ctx.daypart, ctx.thermal)  # the crossed categories that apply
        position, category_at, tag_at = menu.position, menu.category_at, menu.tag_at
        for key, w in self._model.items().items():
            kind = key[:2]
            if kind == "o=":
                if (pos := position.get(key[2:])) is not None:
                    own.append((pos, w))
            elif kind == "c=":
                i = category_at.get(key[2:])
                if i is None:
                    category, _, when = key[2:].rpartition("|")
                    if when in now:
                        i = category_at.get(category)
                if i is not None:
                    cats[i] += w
            elif kind == "t=" and (i := tag_at.get(key[2:])) is not None:
                tags[i] += w
        out: Vector = np.array(cats)[menu.category_of[at]] + self._model.intercept
        if menu.tags:
            out += np.array(tags)[menu.tag_index[at]].sum(axis=1)
        if own:
            full = np.zeros(len(menu))
            for pos, w in own:
                full[pos] += w
            out += full[at]
        return out

    def liked(self) -> tuple[list[str], list[str], list[str]]:
        """The offers, categories and tags this customer likes more than the crowd does:
        where candidate generation looks beyond the crowd's favourites."""
        offers, categories, tags = [], [], []
        for key, w in self._model.items().items():
            if w > 0:
                kind, rest = key[:2], key[2:]
                if kind == "o=":
                    offers.append(rest)
                elif kind == "c=":
                    categories.append(rest.split("|", 1)[0])
                elif kind == "t=":
                    tags.append(rest)
        return offers, categories, tags

    def affinity(self, offer: Offer) -> float:
        """How much more than the crowd this customer likes this very offer (a logit)."""
        return self._model.weight("o=" + offer.offer_id)

    def to_state(self) -> dict[str, Any]:
        """Compact JSON-able state, at most `MAX_STATE_BYTES` serialized: the weights that
        matter most are kept first, the smallest dropped (shrunk to the crowd)."""
        weights = sorted(self._model.weights().items(), key=lambda kv: -abs(kv[1]))
        state: dict[str, Any] = {
            "v": self.VERSION,
            "n": self.answers,
            "b": round(self._model.intercept, 4),
            "a": list(self.asked),
            "p": {o: round(t, 1) for o, t in self.pending.items()},
            "u": {o: [c, round(t, 1)] for o, (c, t) in self.unanswered.items()},
            "w": {},
        }
        if self.recent:
            state["r"] = self.recent
        if self.yeses:
            state["y"] = {o: [s, round(t, 1)] for o, (s, t) in self.yeses.items()}
        if self.asked_in is not None and self.pending:
            state["ac"] = {k: v for k, v in self.asked_in.as_json().items() if v is not None}
        if slots := {o: s for o, s in self.slots.items() if o in self.pending}:
            state["sl"] = slots
        if self.position is not None:
            state["o"] = list(self.position)
        if self.last_seen is not None:
            state["t"] = round(self.last_seen, 1)
        if self.seen:
            state["s"] = [[d, o] for d, o in self.seen.items()]
        if self.lane is not None:
            state["ln"] = list(self.lane)
        # Bookkeeping first, oldest dropped until a quarter of the budget is left for taste.
        for part in ("u", "y", "p"):
            while state.get(part) and len(orjson.dumps(state)) > MAX_STATE_BYTES * 3 // 4:
                oldest = min(state[part], key=lambda o: _when(state[part][o]))
                del state[part][oldest]
        budget = MAX_STATE_BYTES - len(orjson.dumps(state))
        for key, value in weights:
            if abs(value) < 1e-3:
                break
            item = len(orjson.dumps({key: round(value, 4)})) - 1
            if item > budget:
                continue
            state["w"][key] = round(value, 4)
            budget -= item
        return state

    @classmethod
    def from_state(cls, state: dict[str, Any] | None) -> CustomerModel:
        """Rebuild from `to_state`. Version 1 (a standalone model, not a residual) keeps
        its counts and is relearned; anything unreadable starts afresh. Never raises."""
        model = cls()
        if not isinstance(state, dict) or state.get("v") not in (1, cls.VERSION):
            return model
        try:
            model.answers = int(state.get("n", 0))
            model.asked = tuple(str(o) for o in state.get("a", ()))
            if (position := state.get("o")) is not None:
                model.position = (int(position[0]), int(position[1]))
            model.seen = {int(d): int(o) for d, o in state.get("s", ())}
            model.last_seen = float(state["t"]) if "t" in state else None
            model.recent = [str(o) for o in state.get("r", ())][-RECENT_MAX:]
            yeses = dict(state.get("y", {}))
            model.yeses = {str(o): (float(v[0]), float(v[1])) for o, v in yeses.items()}
            if isinstance(state.get("ac"), dict):
                model.asked_in = Context.from_json(state["ac"])
            model.slots = {str(o): int(s) for o, s in dict(state.get("sl", {})).items()}
            if (lane := state.get("ln")) is not None:
                model.lane = (str(lane[0]), int(lane[1]), float(lane[2]), str(lane[3]))
            if state["v"] == cls.VERSION:
                model._model.load(dict(state.get("w", {})), float(state.get("b", 0.0)))
                model.pending = {str(o): float(t) for o, t in dict(state.get("p", {})).items()}
                model.unanswered = {
                    str(o): (int(v[0]), float(v[1])) if isinstance(v, list) else (int(v), 0.0)
                    for o, v in dict(state.get("u", {})).items()
                }
        except (TypeError, ValueError, KeyError):
            return cls()
        return model
