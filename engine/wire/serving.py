"""Redis, the serving store: decisions written by the worker, read by the API.

Keys: `tailor:offers:{customer_id}` and `tailor:board:{store_id}` hold decision JSON with a
TTL, a customer's with their `taste` beside it, and `tailor:shelf:{store_id}` the store's
shelf per policy: from these two the API tailors a customer's offers at request time, for
the store and channel asked (`models.shelf`). `tailor:store:{store_id}` is the store's
trending and context snapshot, which customer decisions on every worker read;
`tailor:popular:{store_id}` holds each store's yes-answers per offer (absolute totals, so
a rewrite is idempotent) and `tailor:popular` their union across every worker, the
fallback for a customer with no store.
`tailor:lane:{store_id}:{lane}` is a lane's personal board while a loyalty scan is active
(`lane_board`: the scanned customer's offers, without their id), expiring when it ends.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

import orjson
import redis.asyncio as aioredis

from engine.wire import metrics

OFFERS_KEY = "tailor:offers:"
BOARD_KEY = "tailor:board:"
STORE_KEY = "tailor:store:"
POPULAR_KEY = "tailor:popular"
LANE_KEY = "tailor:lane:"
SHELF_KEY = "tailor:shelf:"
# What a lane's personal board keeps of the customer's decision: nothing that names them,
# nor when or where they were before (their decision is made at this store as scanned).
LANE_CONTEXT = ("daypart", "weather", "temperature_c", "queue_length")
LANE_OFFER = ("offer_id", "name", "price", "category", "score", "p_yes", "propensity", "reasons")
CROWD_KEY = "tailor:crowd:"  # + app id: the crowd model's snapshot, and ":version" beside
REDIS_OPS = ("read", "write", "delete")  # the `op` label of tailor_redis_errors_total


def offers_key(customer_id: str) -> str:
    return OFFERS_KEY + customer_id


def board_key(store_id: str) -> str:
    return BOARD_KEY + store_id


def shelf_key(store_id: str) -> str:
    return SHELF_KEY + store_id


def lane_key(store_id: str, lane: int) -> str:
    return f"{LANE_KEY}{store_id}:{lane}"


def lane_board(decision: dict[str, Any], lane: int, until: float) -> dict[str, Any]:
    """A lane's personal board from the scanned customer's decision at its store: its
    offers and the store's context, personal until `until` (epoch seconds); no customer id.

    >>> d = {"decision_id": "d-1", "policy": "engine-v1", "customer_id": "c-1", "answers": 4,
    ...      "store_id": "s-1", "created_at": 9.0, "context": {"daypart": "lunch", "queue": 2},
    ...      "offers": [{"offer_id": "fries", "score": 1.0, "reasons": [], "slot": 0}]}
    >>> lane_board(d, 2, 99.0)  # doctest: +NORMALIZE_WHITESPACE
    {'decision_id': 'd-1', 'policy': 'engine-v1', 'store_id': 's-1', 'lane': 2,
     'until': 99.0, 'context': {'daypart': 'lunch'},
     'offers': [{'offer_id': 'fries', 'score': 1.0, 'reasons': []}]}
    """
    context = decision.get("context") or {}
    return {
        "decision_id": decision["decision_id"],
        "policy": decision.get("policy"),
        "store_id": decision.get("store_id"),
        "lane": lane,
        "until": until,
        "context": {name: context[name] for name in LANE_CONTEXT if name in context},
        "offers": [
            {name: offer[name] for name in LANE_OFFER if name in offer}
            for offer in decision.get("offers", [])
        ],
    }


class Serving:
    """Typed access to Tailor's Redis keys; every write of a batch goes in one pipeline."""

    def __init__(self, client: aioredis.Redis, offers_ttl_s: int, board_ttl_s: int) -> None:
        self.client = client
        self.offers_ttl_s = offers_ttl_s
        self.board_ttl_s = board_ttl_s
        for op in REDIS_OPS:  # a series from the start: no errors yet reads as 0, not no data
            metrics.REDIS_ERRORS.labels(op)

    @classmethod
    def from_url(
        cls, url: str, offers_ttl_s: int, board_ttl_s: int, timeout_s: float = 5.0
    ) -> Serving:
        """A client whose every call fails within `timeout_s` when Redis is away or hung,
        so an outage is seen (and retried, and reported) instead of waited on forever."""
        client = aioredis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=min(timeout_s, 2.0)
        )
        return cls(client, offers_ttl_s, board_ttl_s)

    async def close(self) -> None:
        await self.client.aclose()

    async def ping(self) -> bool:
        return bool(await self.client.ping())

    async def write(
        self,
        offers: Mapping[str, dict[str, Any]] = {},
        boards: Mapping[str, dict[str, Any]] = {},
        store_states: Mapping[str, dict[str, Any]] = {},
        popular: Mapping[str, Mapping[str, float]] = {},
        popular_scopes: Sequence[str] = (),
        lanes: Mapping[tuple[str, int], dict[str, Any]] = {},
        shelves: Mapping[str, dict[str, Any]] = {},
        tastes: Mapping[str, dict[str, Any]] = {},
    ) -> None:
        """Write decisions (with each customer's taste beside, if given), boards, shelves,
        store snapshots, popularity and lanes' personal boards (each expiring at its own
        `until`, the same on a rewrite) in one round trip."""
        pipe = self.client.pipeline(transaction=False)
        for customer_id, decision in offers.items():
            if customer_id in tastes:
                decision = {**decision, "taste": tastes[customer_id]}
            pipe.set(offers_key(customer_id), orjson.dumps(decision), ex=self.offers_ttl_s)
        for store_id, shelf in shelves.items():
            pipe.set(shelf_key(store_id), orjson.dumps(shelf), ex=self.board_ttl_s)
        for store_id, board in boards.items():
            pipe.set(board_key(store_id), orjson.dumps(board), ex=self.board_ttl_s)
        for store_id, state in store_states.items():
            pipe.set(STORE_KEY + store_id, orjson.dumps(state), ex=self.board_ttl_s)
        for scope, totals in popular.items():
            pipe.zadd(POPULAR_KEY + ":" + scope, dict(totals))
        if popular and popular_scopes:
            pipe.zunionstore(POPULAR_KEY, [POPULAR_KEY + ":" + s for s in popular_scopes])
        for (store_id, lane), board in lanes.items():
            until_ms = int(board["until"] * 1000)
            pipe.set(lane_key(store_id, lane), orjson.dumps(board), pxat=until_ms)
        try:
            await pipe.execute()
        except Exception:
            metrics.REDIS_ERRORS.labels("write").inc()
            raise
        if offers:
            metrics.DECISIONS.labels("customer").inc(len(offers))
        if boards:
            metrics.DECISIONS.labels("board").inc(len(boards))

    async def forget(self, customer_ids: Sequence[str]) -> None:
        """Delete the customers' offers (the only Redis keys that name a customer) and a
        lane's personal board still showing their decision (the record names the lane;
        the lane names no one, so it is cleared only while it holds that decision)."""
        if not customer_ids:
            return
        try:
            records = await self.client.mget([offers_key(c) for c in customer_ids])
            lanes = [  # (key, the decision it showed them)
                (lane_key(str(where[0]), int(where[1])), where[2])
                for raw in records
                if raw and (where := orjson.loads(raw).get("lane"))
            ]
            boards = await self.client.mget([key for key, _ in lanes]) if lanes else []
            showing = [
                key
                for (key, decision_id), raw in zip(lanes, boards, strict=True)
                if raw and orjson.loads(raw).get("decision_id") == decision_id
            ]
            await self.client.delete(*(offers_key(c) for c in customer_ids), *showing)
        except Exception:
            metrics.REDIS_ERRORS.labels("delete").inc()
            raise

    async def _get(self, key: str) -> dict[str, Any] | None:
        try:
            raw = await self.client.get(key)
        except Exception:
            metrics.REDIS_ERRORS.labels("read").inc()
            raise
        return orjson.loads(raw) if raw else None

    async def customer_offers(self, customer_id: str) -> dict[str, Any] | None:
        return await self._get(offers_key(customer_id))

    async def customer_and_shelf(
        self, customer_id: str, store_id: str | None
    ) -> tuple[dict[str, Any] | None, bytes | None]:
        """The customer's record (decision and taste) and the raw shelf of the store, or
        of the store their decision was made at when none is asked for: one round trip
        when the store is known."""
        try:
            if store_id is None:
                raw = await self.client.get(offers_key(customer_id))
                record = orjson.loads(raw) if raw else None
                store_id = (record or {}).get("store_id")
                shelf = await self.client.get(shelf_key(store_id)) if store_id else None
                return record, cast(bytes | None, shelf)
            raw, shelf = await self.client.mget([offers_key(customer_id), shelf_key(store_id)])
        except Exception:
            metrics.REDIS_ERRORS.labels("read").inc()
            raise
        return (orjson.loads(raw) if raw else None), cast(bytes | None, shelf)

    async def board(self, store_id: str) -> dict[str, Any] | None:
        return await self._get(board_key(store_id))

    async def lane(self, store_id: str, lane: int) -> dict[str, Any] | None:
        """The lane's personal board, while a scan is active."""
        return await self._get(lane_key(store_id, lane))

    async def store_states(self, store_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Trending and context snapshots of these stores, in one round trip."""
        if not store_ids:
            return {}
        try:
            values = await self.client.mget([STORE_KEY + s for s in store_ids])
        except Exception:
            metrics.REDIS_ERRORS.labels("read").inc()
            raise
        return {s: orjson.loads(v) for s, v in zip(store_ids, values, strict=True) if v}

    async def write_crowd(self, app_id: str, state: dict[str, Any], version: int) -> None:
        """The crowd's snapshot and its version, together (a reader checks the version)."""
        try:
            pipe = self.client.pipeline(transaction=True)
            pipe.set(CROWD_KEY + app_id, orjson.dumps(state))
            pipe.set(CROWD_KEY + app_id + ":version", version)
            await pipe.execute()
        except Exception:
            metrics.REDIS_ERRORS.labels("write").inc()
            raise

    async def crowd_version(self, app_id: str) -> int | None:
        try:
            raw = await self.client.get(CROWD_KEY + app_id + ":version")
        except Exception:
            metrics.REDIS_ERRORS.labels("read").inc()
            raise
        return int(raw) if raw else None

    async def crowd(self, app_id: str) -> dict[str, Any] | None:
        return await self._get(CROWD_KEY + app_id)

    async def popular(self, k: int) -> Sequence[tuple[str, float]]:
        try:
            rows = await self.client.zrevrange(POPULAR_KEY, 0, k - 1, withscores=True)
        except Exception:
            metrics.REDIS_ERRORS.labels("read").inc()
            raise
        return [(m.decode(), float(s)) for m, s in cast(list[tuple[bytes, float]], rows)]
