"""The simulator's HTTP side: the client that calls the API for one run, counting every
failure instead of raising it and backing off while the server struggles, and the run's
summary (`SimSummary`) that progress lines and the final report are made of.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from engine.sim.payloads import build_events, catalog_from_api, iso_utc
from engine.sim.world import Visit, World
from models.offer import Catalog

OFFERS_K = 6  # what a web/app page asks for; a screen shows `visit.slots` of them
MAX_BACKOFF_S = 2.0
LOYALTY_SHARE = 0.3  # drive-thru visits whose customer scans a loyalty card at the post
SCAN_WAIT_S = 2.0  # how long a lane's board may take to turn to the scanned customer


@dataclass(slots=True)
class SimSummary:
    """What a run did; `errors` counts every failed request (4xx, 5xx or no response)."""

    visits: int = 0
    events: int = 0
    purchases: int = 0
    client_errors: int = 0  # 4xx: the simulator sent something the API refused
    server_errors: int = 0  # 5xx
    network_errors: int = 0  # no response at all
    contexts: int = 0  # store context updates accepted
    no_board: int = 0  # drive-thru visits before the store had a board (fell back)
    scans: int = 0  # loyalty scans at a lane (identify events accepted)
    personal_lanes: int = 0  # ...after which the lane's board showed the customer's offers
    empty: int = 0  # visits where nothing was shown
    sim_time: datetime | None = None
    elapsed_s: float = 0.0
    first_errors: list[str] = field(default_factory=list)
    # Personalized visits (web/app) by the policy that decided: [visits, purchases,
    # revenue]. The engine against the holdout's control policy is the live lift.
    by_policy: dict[str, list[float]] = field(default_factory=dict)

    def lift_line(self) -> str:
        parts = [
            f"{policy} {p / v:.1%} bought, {r / v:.2f}/visit over {v:.0f}"
            for policy, (v, p, r) in sorted(self.by_policy.items())
            if v
        ]
        return "by policy: " + "; ".join(parts) if parts else ""

    @property
    def errors(self) -> int:
        return self.client_errors + self.server_errors + self.network_errors

    @property
    def purchase_rate(self) -> float:
        return self.purchases / self.visits if self.visits else 0.0

    def line(self) -> str:
        """A one-line progress report."""
        clock = f"{self.sim_time:%a %H:%M} UTC" if self.sim_time else "-"
        rate = self.visits / self.elapsed_s if self.elapsed_s > 0 else 0.0
        return (
            f"simulate | sim {clock} | visits {self.visits} ({rate:.1f}/s) | "
            f"events {self.events} | purchases {self.purchases} ({self.purchase_rate:.1%}) | "
            f"errors 4xx {self.client_errors} 5xx {self.server_errors} "
            f"net {self.network_errors}"
            + (f" | scans {self.scans} ({self.personal_lanes} personal)" if self.scans else "")
            + (f" | {self.lift_line()}" if self.by_policy else "")
        )


class Driver:
    """One run: the HTTP client, the world, the counters and the back-off state."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        summary: SimSummary,
        progress: Callable[[str], None],
        loyalty_share: float = LOYALTY_SHARE,
        seed: int = 0,
    ) -> None:
        self.client = client
        self.summary = summary
        self.progress = progress
        self.loyalty_share = loyalty_share
        # Lanes and scans draw from their own generator: the world's stream (and so every
        # visit and answer of a seed) stays what it was without them.
        self.rng = random.Random(seed)
        self.pause_until = 0.0
        self.backoff_s = 0.0

    # ---- bookkeeping -------------------------------------------------------------------

    def _failed(self, what: str, detail: str, *, client_error: bool = False) -> None:
        s = self.summary
        if len(s.first_errors) < 5:
            s.first_errors.append(f"{what}: {detail}"[:300])
            self.progress(f"simulate | {what} failed: {detail}"[:300])
        if client_error:
            return  # our mistake, not the server's load: no reason to slow down
        self.backoff_s = min(MAX_BACKOFF_S, max(0.05, self.backoff_s * 2))
        self.pause_until = time.monotonic() + self.backoff_s

    def _ok(self) -> None:
        self.backoff_s = 0.0

    async def request(
        self, method: str, url: str, *, ok: tuple[int, ...] = (200, 202), **kw: Any
    ) -> httpx.Response | None:
        """A request whose failure is counted, not raised; statuses in `ok` come back."""
        try:
            response = await self.client.request(method, url, **kw)
        except httpx.HTTPError as exc:
            self.summary.network_errors += 1
            self._failed(f"{method} {url}", f"{type(exc).__name__}: {exc}")
            return None
        if response.status_code in ok:
            self._ok()
            return response
        if response.status_code >= 500:
            self.summary.server_errors += 1
        else:
            self.summary.client_errors += 1
        self._failed(
            f"{method} {url}",
            f"{response.status_code} {response.text[:200]}",
            client_error=response.status_code < 500,
        )
        return None

    # ---- the API calls -----------------------------------------------------------------

    async def fetch_catalog(
        self, deadline: float | None, stop: asyncio.Event | None
    ) -> Catalog | None:
        """Stores and offers from the API, retrying while it comes up (until `deadline`)."""
        waited = 0.0
        while True:
            stores = await self.request("GET", "/v1/stores")
            offers = await self.request("GET", "/v1/offers") if stores else None
            if stores is not None and offers is not None:
                return catalog_from_api(stores.json(), offers.json())
            if deadline is not None and time.monotonic() >= deadline:
                return None
            if stop is not None and stop.is_set():
                return None
            if waited % 5.0 < 1.0:
                self.progress(f"simulate | waiting for the API at {self.client.base_url} ...")
            await asyncio.sleep(1.0)
            waited += 1.0

    async def post_context(self, world: World, store_id: str) -> bool:
        body = world.conditions(store_id).as_json()
        ok = await self.request("POST", f"/v1/stores/{store_id}/context", json=body) is not None
        if ok:
            self.summary.contexts += 1
        return ok

    async def shown_offers(
        self, world: World, visit: Visit
    ) -> tuple[str | None, list[str], str | None]:
        """What the visit's screen shows: the lane's board, or the customer's offers."""
        customer_url = f"/v1/customers/{visit.customer.customer_id}/offers"
        params = {"store_id": visit.store_id, "channel": visit.channel, "k": OFFERS_K}
        if visit.channel == "drive_thru":
            lane = self.rng.randint(1, max(1, world.catalog.stores[visit.store_id].lanes))
            if self.rng.random() < self.loyalty_share:
                response = await self.scanned(visit, lane)
            else:
                response = await self.lane_board(visit, lane)
            if response is not None and response.status_code == 503:
                # No board yet (no worker, or it has not decided): show what anyone gets.
                self.summary.no_board += 1
                response = await self.request("GET", customer_url, params=params)
        else:
            response = await self.request("GET", customer_url, params=params)
        if response is None:
            return None, [], None
        body = response.json()
        # Only a customer's own decision (on a page, or on a lane after their scan) says
        # which policy (engine or holdout) chose it.
        policy = body.get("policy") if body.get("source") in ("customer", "lane") else None
        decision_id = body.get("decision_id")
        ids = [
            o["offer_id"]
            for o in body.get("offers", [])
            if isinstance(o, dict) and o.get("offer_id") in world.catalog.offers
        ]
        shown = list(dict.fromkeys(ids))[: visit.slots]
        return (decision_id if isinstance(decision_id, str) else None), shown, policy

    async def lane_board(self, visit: Visit, lane: int) -> httpx.Response | None:
        board = f"/v1/stores/{visit.store_id}/board"
        return await self.request("GET", board, params={"lane": lane}, ok=(200, 503))

    async def scanned(self, visit: Visit, lane: int) -> httpx.Response | None:
        """A loyalty scan at the lane's speaker post, then the lane's board once it shows
        the customer's offers (or, after `SCAN_WAIT_S`, whatever it shows). A lane stays
        personal for a while after a scan, so the board must also have changed: until
        then it may still show the car before."""
        before = await self.lane_board(visit, lane)
        if before is None or before.status_code != 200:
            return before  # no board yet, or no answer: the caller falls back
        shown_before = before.json().get("decision_id")
        scan = {
            "event_id": uuid.uuid4().hex,
            "type": "identify",
            "customer_id": visit.customer.customer_id,
            "store_id": visit.store_id,
            "lane": lane,
            # Now, not the simulated clock: a lane stays personal for a while after the
            # scan's own time, and the screen that shows it runs on the real clock.
            "ts": iso_utc(datetime.now(UTC)),
        }
        if await self.request("POST", "/v1/events", json=[scan]) is None:
            return await self.lane_board(visit, lane)
        self.summary.scans += 1
        deadline = time.monotonic() + SCAN_WAIT_S
        while True:
            response = await self.lane_board(visit, lane)
            if response is None or response.status_code != 200:
                return response  # no board yet, or no answer: the caller falls back
            body = response.json()
            if body.get("source") == "lane" and body.get("decision_id") != shown_before:
                self.summary.personal_lanes += 1
                return response
            if time.monotonic() >= deadline:
                return response
            await asyncio.sleep(0.1)

    async def visit(self, world: World, visit: Visit) -> None:
        decision_id, shown, policy = await self.shown_offers(world, visit)
        if not shown:
            self.summary.empty += 1
            return
        answer = world.answer(visit, shown)
        events = build_events(visit, shown, decision_id, answer, world.catalog)
        if await self.request("POST", "/v1/events", json=events) is not None:
            self.summary.events += len(events)
            self.summary.purchases += bool(answer.purchases)
            if isinstance(policy, str):
                counts = self.summary.by_policy.setdefault(policy, [0.0, 0.0, 0.0])
                counts[0] += 1
                counts[1] += bool(answer.purchases)
                counts[2] += sum(world.catalog.offers[o].price for o in answer.purchases)
