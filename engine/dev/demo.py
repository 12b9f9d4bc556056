"""`tailor demo`: the whole loop on one machine, stopped cleanly on Ctrl-C or SIGTERM.

Starts the local stack (unless TAILOR_KAFKA_BOOTSTRAP / TAILOR_REDIS_URL point elsewhere),
a worker and the API as child processes, a Prometheus scraping both (unless
TAILOR_PROMETHEUS_URL points elsewhere) for the API's operations page, then the simulator in
this process, and prints a live line read from the worker's own /metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import time
from datetime import UTC, datetime

import httpx

from config.settings import Settings
from engine.dev.processes import start_role, stop, wait_http
from engine.dev.prometheus import LocalPrometheus, target
from engine.dev.stack import Stack
from engine.sim.simulate import simulate
from engine.wire import metrics

LIVE_EVERY_S = 2.0


async def _live(metrics_url: str, stop_event: asyncio.Event) -> None:
    previous: dict[str, float] = {}
    last = time.monotonic()
    async with httpx.AsyncClient(timeout=2) as client:
        while not stop_event.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop_event.wait(), LIVE_EVERY_S)
            try:
                now_totals = metrics.totals((await client.get(metrics_url)).text)
            except httpx.HTTPError:
                print("live: worker metrics unavailable", flush=True)
                continue
            now = time.monotonic()
            delta = {k: v - previous.get(k, 0.0) for k, v in now_totals.items()}
            n = delta.get("tailor_decision_freshness_seconds_count", 0.0)
            fresh = delta.get("tailor_decision_freshness_seconds_sum", 0.0) / n * 1000 if n else 0.0
            print(
                f"live: {delta.get('tailor_events_total', 0.0) / (now - last):7.1f} events/s | "
                f"decisions {now_totals.get('tailor_decisions_written_total', 0):8.0f} | "
                f"dead letters {now_totals.get('tailor_dead_letters_total', 0):4.0f} | "
                f"event->decision {fresh:6.1f} ms avg",
                flush=True,
            )
            previous, last = now_totals, now


def _banner(settings: Settings, keys_note: str) -> str:
    api = f"http://{settings.api_host}:{settings.api_port}"
    return f"""
  Tailor is running. {keys_note}
    API docs          {api}/docs
    store board       {api}/v1/stores/s-1/board
    customer offers   {api}/v1/customers/sim7-c0001/offers?store_id=s-1
    catalog           {api}/v1/offers
    operations        {api}/ops
    Prometheus        {settings.prometheus}
    API metrics       {api}/metrics
    worker metrics    http://127.0.0.1:{settings.worker_web_port}/metrics
    logs              {settings.state_dir / "logs"}
  Ctrl-C stops everything the demo started.
"""


def run(settings: Settings, rate: float = 20.0, duration: float | None = None) -> int:
    stack = Stack(settings)
    prometheus = LocalPrometheus(settings, stack.state_dir, stack.logs_dir)
    was_running = any(s.state == "running" for s in stack.status())
    logs = settings.state_dir / "logs"
    children: list[subprocess.Popen[bytes]] = []
    stop_event = asyncio.Event()

    def on_signal(*_: object) -> None:
        stop_event.set()

    # Until the simulator's loop takes over the signals, SIGTERM stops the demo like Ctrl-C.
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        stack.up()
        served = settings.model_copy(
            update={"kafka_bootstrap": settings.kafka, "redis_url": settings.redis}
        )
        worker = start_role("worker", served, logs / "worker.log")
        children.append(worker)
        api = start_role("api", served, logs / "api.log")
        children.append(api)
        print("Waiting for the worker and the API ...", flush=True)
        wait_http(f"http://127.0.0.1:{settings.api_port}/healthz", api, logs / "api.log")
        metrics_url = f"http://127.0.0.1:{settings.worker_web_port}/metrics"
        wait_http(f"http://127.0.0.1:{settings.worker_web_port}/ready", worker, logs / "worker.log")
        if settings.embedded_prometheus:
            prometheus.start(
                [target(settings.api_host, settings.api_port)],
                [target(settings.worker_web_bind, settings.worker_web_port)],
            )
        else:
            print(f"Prometheus: using {settings.prometheus} (it scrapes the API and worker itself)")
        keys_note = (
            "API keys: on (TAILOR_API_KEYS)."
            if settings.api_keys
            else "API keys: off (local development; set TAILOR_API_KEYS to require them)."
        )
        print(_banner(settings, keys_note), flush=True)

        async def main() -> None:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, on_signal)
            live = asyncio.create_task(_live(metrics_url, stop_event))
            try:
                summary = await simulate(
                    f"http://127.0.0.1:{settings.api_port}",
                    rate=rate,
                    duration=duration,
                    seed=7,
                    customers=500,
                    speed=1.0,  # real time, so event-to-decision freshness is honest
                    start=datetime.now(UTC),
                    progress=lambda line: print(line, flush=True),
                    stop=stop_event,
                    api_key=settings.api_keys[0].get_secret_value() if settings.api_keys else None,
                )
                if summary.by_policy:
                    print(f"holdout: {summary.lift_line()}", flush=True)
                print(
                    f"simulator: {summary.visits} visits, {summary.events} events, "
                    f"{summary.purchases} purchases, {summary.errors} errors",
                    flush=True,
                )
            finally:
                stop_event.set()
                await live

        asyncio.run(main())
        return 0
    except KeyboardInterrupt:
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
        print("Stopping ...", flush=True)
        for child in reversed(children):
            stop(child)
        prometheus.stop()
        if not was_running:
            stack.down()
        else:
            print("The stack was already running before the demo; it stays up (tailor stack down).")
