"""`tailor simulate`: simulated drive-thru and web/app customers against the HTTP API.

The world (engine/sim/world.py) decides who turns up, where, in what weather, and what they
buy; this module only moves it over HTTP: it reads the stores and offers from the API (so it
works against any deployment), posts each store's context when it changes, fetches a board
or a customer's offers per visit, and posts that visit's impressions and answers as one
batch. Events carry the SIMULATED clock, so dayparts move at `speed` times real time.

`simulate` runs the loop and `run` / `add_arguments` are the CLI; the requests and the
run's counters are in `engine.sim.driver`, the events' JSON in `engine.sim.payloads`
(whose `build_events`, `catalog_from_api` and `iso_utc` are re-exported here).
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
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx

from engine.sim.driver import LOYALTY_SHARE, Driver, SimSummary
from engine.sim.payloads import build_events, catalog_from_api, iso_utc
from engine.sim.world import World

__all__ = [
    "DEFAULT_API",
    "SimSummary",
    "add_arguments",
    "build_events",
    "catalog_from_api",
    "default_start",
    "iso_utc",
    "run",
    "simulate",
]

DEFAULT_API = "http://127.0.0.1:8080"
PROGRESS_EVERY_S = 5.0


# Simulated hours covered by a run with no duration, at speed > 1 (real hours x speed).
_OPEN_ENDED_REAL_S = 6 * 3600.0


def default_start(
    now: datetime | None = None, speed: float = 1.0, duration: float | None = None
) -> datetime:
    """06:00 UTC, breakfast, on a day early enough that the simulated clock (running
    `speed` times real time for `duration` seconds) stays behind the real one: Tailor
    refuses events stamped in the future (TAILOR_MAX_FUTURE_SKEW_S).

    >>> noon = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    >>> default_start(noon).isoformat()
    '2026-11-22T06:00:00+00:00'
    >>> default_start(noon, speed=60, duration=300).isoformat()  # 5 simulated hours
    '2026-11-22T06:00:00+00:00'
    >>> default_start(noon, speed=60, duration=600).isoformat()  # 10: would pass noon
    '2026-11-21T06:00:00+00:00'
    >>> default_start(noon, speed=60, duration=3600).isoformat()  # 60 simulated hours
    '2026-11-19T06:00:00+00:00'
    """
    now = (now or datetime.now(UTC)).astimezone(UTC)
    ahead = max(0.0, speed - 1.0) * (duration or _OPEN_ENDED_REAL_S)
    latest = now - timedelta(seconds=ahead)  # the simulated clock must end by now
    start = latest.replace(hour=6, minute=0, second=0, microsecond=0)
    return start if start <= latest else start - timedelta(days=1)


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
    loyalty_share: float = LOYALTY_SHARE,
) -> SimSummary:
    """Send simulated traffic to the API at `rate` visits per second.

    Runs for `duration` real seconds (None or 0: until cancelled or `stop` is set); the
    simulated clock starts at `start` (default: 06:00 UTC on a day early enough that it
    ends before now) and runs `speed` times
    faster than real time. Transient HTTP errors are counted and briefly backed off from.
    On cancellation the visits in flight are cancelled and CancelledError propagates.
    `transport` replaces the network (tests pass an `httpx.MockTransport`). A share
    `loyalty_share` of drive-thru visits scans a loyalty card at a lane first and is shown
    that lane's board once it turns to them.
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
        driver = Driver(client, summary, say, loyalty_share, seed)
        try:
            catalog = await driver.fetch_catalog(deadline, stop)
            if catalog is None:
                say(f"simulate | no API at {api}: gave up")
                return summary
            world = World(
                catalog,
                start=start or default_start(speed=speed, duration=duration),
                seed=seed,
                customers=customers,
                speed=speed,
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
        "--loyalty-share",
        type=float,
        default=LOYALTY_SHARE,
        help="drive-thru visits that scan a loyalty card at a lane first, turning its board "
        f"to their offers (default {LOYALTY_SHARE:g})",
    )
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
    if not 0 <= getattr(args, "loyalty_share", LOYALTY_SHARE) <= 1:
        print(f"tailor simulate: --loyalty-share must be within [0, 1], got {args.loyalty_share}")
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
                loyalty_share=getattr(args, "loyalty_share", LOYALTY_SHARE),
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
