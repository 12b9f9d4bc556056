"""`GET /healthz`: is Redis reachable, is Kafka reachable, each asked for real and bounded.

A probe's answer is kept for `CACHE_S`, and callers arriving while a probe runs share it,
so a load balancer polling every replica often costs each server one round trip a second.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Literal

from pydantic import BaseModel

PROBE_TIMEOUT_S = 1.0
CACHE_S = 1.0


class CachedProbe:
    """`check()` runs `probe` (True when the server answered) at most once per `CACHE_S`."""

    def __init__(self, probe: Callable[[], Awaitable[bool]], timeout_s: float = PROBE_TIMEOUT_S):
        self.probe = probe
        self.timeout_s = timeout_s
        self._ok = False
        self._at = -CACHE_S
        self._running: asyncio.Task[bool] | None = None

    async def _run(self) -> bool:
        try:
            ok = await asyncio.wait_for(self.probe(), self.timeout_s)
        except Exception:
            ok = False
        self._ok, self._at = ok, time.monotonic()
        return ok

    async def check(self) -> bool:
        if time.monotonic() - self._at < CACHE_S:
            return self._ok
        running = self._running
        if (
            running is None
            or running.done()
            or running.get_loop() is not asyncio.get_running_loop()
        ):
            running = self._running = asyncio.ensure_future(self._run())
        return await asyncio.shield(running)


class Health(BaseModel):
    """The body of `GET /healthz`, 200 and 503 alike."""

    status: Literal["ok", "degraded"]
    redis: bool
    kafka: bool
