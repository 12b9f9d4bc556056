"""Redis, the serving store: decisions written by the worker, read by the API.

Keys: `tailor:offers:{customer_id}` and `tailor:board:{store_id}` hold decision JSON with a
TTL; `tailor:store:{store_id}` is the store's trending and context snapshot, which customer
decisions on every worker read; `tailor:popular:{store_id}` holds each store's yes-answers
per offer (absolute totals, so a rewrite is idempotent) and `tailor:popular` their union
across every worker, the fallback for a customer with no store.
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
CROWD_KEY = "tailor:crowd:"  # + app id: the crowd model's snapshot, and ":version" beside
REDIS_OPS = ("read", "write", "delete")  # the `op` label of tailor_redis_errors_total


def offers_key(customer_id: str) -> str:
    return OFFERS_KEY + customer_id


def board_key(store_id: str) -> str:
    return BOARD_KEY + store_id


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
    ) -> None:
        """Write decisions, boards, store snapshots and popularity in one round trip."""
        pipe = self.client.pipeline(transaction=False)
        for customer_id, decision in offers.items():
            pipe.set(offers_key(customer_id), orjson.dumps(decision), ex=self.offers_ttl_s)
        for store_id, board in boards.items():
            pipe.set(board_key(store_id), orjson.dumps(board), ex=self.board_ttl_s)
        for store_id, state in store_states.items():
            pipe.set(STORE_KEY + store_id, orjson.dumps(state), ex=self.board_ttl_s)
        for scope, totals in popular.items():
            pipe.zadd(POPULAR_KEY + ":" + scope, dict(totals))
        if popular and popular_scopes:
            pipe.zunionstore(POPULAR_KEY, [POPULAR_KEY + ":" + s for s in popular_scopes])
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
        """Delete the customers' offers (the only Redis keys that name a customer)."""
        if not customer_ids:
            return
        try:
            await self.client.delete(*(offers_key(c) for c in customer_ids))
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

    async def board(self, store_id: str) -> dict[str, Any] | None:
        return await self._get(board_key(store_id))

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
