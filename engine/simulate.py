"""`tailor simulate`: simulated drive-thru and web/app customers against the HTTP API.

The world (engine/world.py) decides who turns up, where, in what weather, and what they
buy; this module only moves it over HTTP: it reads the stores and offers from the API (so it
works against any deployment), posts each store's context when it changes, fetches a board
or a customer's offers per visit, and posts that visit's impressions and answers as one
batch. Events carry the SIMULATED clock, so dayparts move at `speed` times real time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import math
import os
import signal
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from engine.world import Answer, Visit, World
from models.offer import Catalog, Offer, Store

DEFAULT_API = "http://127.0.0.1:8080"
OFFERS_K = 6  # what a web/app page asks for; a screen shows `visit.slots` of them
PROGRESS_EVERY_S = 5.0
MAX_BACKOFF_S = 2.0
# Answers come a little after the question, in simulated seconds.
DISMISS_AFTER_S = 3
CLICK_AFTER_S = 5
PURCHASE_AFTER_S = 20


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
            f"net {self.network_errors}" + (f" | {self.lift_line()}" if self.by_policy else "")
        )


def iso_utc(ts: datetime) -> str:
    """'2026-11-22T12:31:05Z': the wire's timestamp format, to the second."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_events(
    visit: Visit,
    shown: Sequence[str],
    decision_id: str | None,
    answer: Answer,
    catalog: Catalog,
    new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
) -> list[dict[str, Any]]:
    """The events of one visit, in order: an impression per shown offer (the questions),
    then dismisses, clicks and the purchase (the answers), all tied to `decision_id`.

    Pure apart from `new_id`; every dict validates as `engine.events.Interaction`.
    """
    context = visit.conditions.as_json()

    def event(kind: str, offer_id: str, after_s: int, value: float | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "event_id": new_id(),
            "type": kind,
            "customer_id": visit.customer.customer_id,
            "store_id": visit.store_id,
            "channel": visit.channel,
            "offer_id": offer_id,
            "ts": iso_utc(visit.ts + timedelta(seconds=after_s)),
            "context": context,
        }
        if decision_id is not None:
            out["decision_id"] = decision_id
        if value is not None:
            out["value"] = value
        return out

    events = [event("impression", o, 0) for o in shown]
    events += [event("dismiss", o, DISMISS_AFTER_S) for o in answer.dismissed]
    events += [event("click", o, CLICK_AFTER_S) for o in answer.clicks]
    if answer.purchase is not None:
        price = catalog.offers[answer.purchase].price
        events.append(event("purchase", answer.purchase, PURCHASE_AFTER_S, price))
    return events


def catalog_from_api(stores: dict[str, Any], offers: dict[str, Any]) -> Catalog:
    """The catalog as the API serves it (`GET /v1/stores`, `GET /v1/offers`)."""
    return Catalog.of(
        (
            Offer(
                offer_id=o["offer_id"],
                name=o.get("name", o["offer_id"]),
                category=o.get("category", "other"),
                price=float(o["price"]),
                prep_s=int(o.get("prep_s", 60)),
                dayparts=frozenset(o.get("dayparts", [])),
                tags=frozenset(o.get("tags", [])),
            )
            for o in offers["offers"]
        ),
        (
            Store(
                store_id=s["store_id"],
                name=s.get("name", s["store_id"]),
                utc_offset_h=float(s.get("utc_offset_h", 0.0)),
                lanes=int(s.get("lanes", 1)),
                exclude=frozenset(s.get("exclude", [])),
            )
            for s in stores["stores"]
        ),
    )


def default_start(now: datetime | None = None) -> datetime:
    """Today 06:00 UTC: the demo opens with breakfast."""
    now = now or datetime.now(UTC)
    return now.astimezone(UTC).replace(hour=6, minute=0, second=0, microsecond=0)


class _Driver:
    """One run: the HTTP client, the world, the counters and the back-off state."""

    def __init__(
        self, client: httpx.AsyncClient, summary: SimSummary, progress: Callable[[str], None]
    ) -> None:
        self.client = client
        self.summary = summary
        self.progress = progress
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
            board = f"/v1/stores/{visit.store_id}/board"
            response = await self.request("GET", board, ok=(200, 503))
            if response is not None and response.status_code == 503:
                # No board yet (no worker, or it has not decided): show what anyone gets.
                self.summary.no_board += 1
                response = await self.request("GET", customer_url, params=params)
        else:
            response = await self.request("GET", customer_url, params=params)
        if response is None:
            return None, [], None
        body = response.json()
        # Only a customer's own decision says which policy (engine or holdout) chose it.
        policy = body.get("policy") if body.get("source") == "customer" else None
        decision_id = body.get("decision_id")
        ids = [
            o["offer_id"]
            for o in body.get("offers", [])
            if isinstance(o, dict) and o.get("offer_id") in world.catalog.offers
        ]
        shown = list(dict.fromkeys(ids))[: visit.slots]
        return (decision_id if isinstance(decision_id, str) else None), shown, policy

    async def visit(self, world: World, visit: Visit) -> None:
        decision_id, shown, policy = await self.shown_offers(world, visit)
        if not shown:
            self.summary.empty += 1
            return
        answer = world.answer(visit, shown)
        events = build_events(visit, shown, decision_id, answer, world.catalog)
        if await self.request("POST", "/v1/events", json=events) is not None:
            self.summary.events += len(events)
            self.summary.purchases += answer.purchase is not None
            if isinstance(policy, str):
                counts = self.summary.by_policy.setdefault(policy, [0.0, 0.0, 0.0])
                counts[0] += 1
                if answer.purchase is not None:
                    counts[1] += 1
                    counts[2] += world.catalog.offers[answer.purchase].price


async def simulate(
    api: str,
    *,
    rate: float,
    duration: float | None,
    seed: int,
    customers: int,
    speed: float,
    progress: Callable[[str], None] | None = print,
    start: datetime | None = None,
    concurrency: int | None = None,
    stop: asyncio.Event | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    api_key: str | None = None,
) -> SimSummary:
    """Send simulated traffic to the API at `rate` visits per second.

    Runs for `duration` real seconds (None or 0: until cancelled or `stop` is set); the
    simulated clock starts at `start` (default today 06:00 UTC) and runs `speed` times
    faster than real time. Transient HTTP errors are counted and briefly backed off from.
    On cancellation the visits in flight are cancelled and CancelledError propagates.
    `transport` replaces the network (tests pass an `httpx.MockTransport`).
    """
    if rate <= 0:
        raise ValueError(f"rate must be > 0, got {rate}")
    say = progress or (lambda _: None)
    summary = SimSummary()
    began = time.monotonic()
    deadline = began + duration if duration else None
    limit = asyncio.Semaphore(concurrency or max(4, min(64, math.ceil(rate / 5))))
    in_flight: set[asyncio.Task[None]] = set()
    timeout = httpx.Timeout(5.0, connect=2.0)
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    async with httpx.AsyncClient(
        base_url=api, timeout=timeout, transport=transport, headers=headers
    ) as client:
        driver = _Driver(client, summary, say)
        try:
            catalog = await driver.fetch_catalog(deadline, stop)
            if catalog is None:
                say(f"simulate | no API at {api}: gave up")
                return summary
            world = World(
                catalog, start=start or default_start(), seed=seed, customers=customers, speed=speed
            )
            summary.sim_time = world.clock.now
            say(
                f"simulate | {len(world.customers)} customers, {len(catalog.stores)} stores, "
                f"{len(catalog.offers)} offers; {rate:g} visits/s, clock x{speed:g} from "
                f"{iso_utc(world.clock.now)}"
            )
            stale = set(world.store_ids)  # contexts still to send
            last = next_visit = next_report = time.monotonic()
            next_report += PROGRESS_EVERY_S
            while not (stop is not None and stop.is_set()):
                now = time.monotonic()
                if deadline is not None and now >= deadline:
                    break
                stale.update(world.advance(now - last))
                last = now
                summary.sim_time = world.clock.now
                summary.elapsed_s = now - began
                if now >= driver.pause_until:  # backing off: contexts wait too
                    for store_id in sorted(stale):
                        if await driver.post_context(world, store_id):
                            stale.discard(store_id)
                if now >= next_report:
                    say(summary.line() + " | " + _weather_line(world))
                    next_report = now + PROGRESS_EVERY_S
                wait = max(next_visit, driver.pause_until) - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(min(wait, 0.25))
                    continue
                await limit.acquire()
                task = asyncio.create_task(driver.visit(world, world.next_visit()))
                summary.visits += 1
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
                task.add_done_callback(lambda _: limit.release())
                next_visit += 1.0 / rate
                if next_visit < time.monotonic() - 1.0:
                    next_visit = time.monotonic()  # fell behind (slow API): do not burst
            if in_flight:
                await asyncio.wait(in_flight, timeout=5.0)
        except asyncio.CancelledError:
            summary.elapsed_s = time.monotonic() - began
            say(summary.line() + " | cancelled")
            raise
        finally:
            for task in in_flight:
                task.cancel()
            if in_flight:
                await asyncio.gather(*in_flight, return_exceptions=True)
    summary.elapsed_s = time.monotonic() - began
    say(summary.line() + " | done")
    return summary


def _weather_line(world: World) -> str:
    parts = []
    for store_id in world.store_ids:
        c = world.conditions(store_id)
        parts.append(f"{store_id} {c.weather} {c.temperature_c:.1f}C q{c.queue_length}")
    daypart = world.context(world.store_ids[0]).daypart
    return f"{daypart}: " + ", ".join(parts)


def _start_time(text: str) -> datetime:
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not an ISO 8601 time: {text!r} (e.g. 2026-11-22T06:00:00Z)"
        ) from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `tailor simulate`."""
    parser.add_argument("--api", default=DEFAULT_API, help=f"API base URL (default {DEFAULT_API})")
    parser.add_argument("--rate", type=float, default=20.0, help="visits per second (default 20)")
    parser.add_argument(
        "--duration", type=float, default=None, help="seconds to run (default/0: until Ctrl-C)"
    )
    parser.add_argument("--seed", type=int, default=7, help="world seed (default 7)")
    parser.add_argument("--customers", type=int, default=500, help="population (default 500)")
    parser.add_argument(
        "--speed",
        type=float,
        default=60.0,
        help="simulated seconds per real second (default 60: a day in 24 minutes)",
    )
    parser.add_argument(
        "--start", type=_start_time, default=None, help="simulated start, UTC (default 06:00 today)"
    )
    parser.add_argument("--concurrency", type=int, default=None, help="visits in flight at most")
    parser.add_argument(
        "--api-key",
        default=os.environ.get("TAILOR_SIMULATE_API_KEY"),
        help="bearer key for writes when the API has keys on (env TAILOR_SIMULATE_API_KEY)",
    )


def run(args: argparse.Namespace) -> int:
    """Run the simulator until the duration ends or SIGINT/SIGTERM; 1 if the API refused
    events (a bug: the simulator must only send what the API accepts) or never answered."""
    for name, value in (("rate", args.rate), ("speed", args.speed), ("customers", args.customers)):
        if value <= 0:
            print(f"tailor simulate: --{name} must be > 0, got {value}")
            return 2

    # httpx logs every request at INFO: thousands of lines a minute that bury the progress.
    logging.getLogger("httpx").setLevel(logging.WARNING)

    async def main() -> SimSummary:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        try:
            return await simulate(
                args.api,
                rate=args.rate,
                duration=args.duration,
                seed=args.seed,
                customers=args.customers,
                speed=args.speed,
                progress=lambda line: print(line, flush=True),
                start=getattr(args, "start", None),
                concurrency=getattr(args, "concurrency", None),
                api_key=getattr(args, "api_key", None),
                stop=stop,
            )
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.remove_signal_handler(sig)

    summary = asyncio.run(main())
    if summary.first_errors:
        print("first errors:\n  " + "\n  ".join(summary.first_errors))
    return 1 if summary.client_errors or summary.sim_time is None else 0
