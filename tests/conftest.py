"""Shared fixtures.

The local stack (Kafka + Redis) comes first: `stack_settings` starts one per test session on
free ports and a temporary state dir, so it never clashes with a demo stack on the default
ports or with a test run in another checkout. Set TAILOR_KAFKA_BOOTSTRAP / TAILOR_REDIS_URL
to run the tests against existing servers instead. Add further fixtures below this section.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest
from playwright.async_api import Browser, async_playwright

from config.settings import Settings
from engine.dev.processes import free_ports, start_role, stop, wait_http
from engine.dev.prometheus import LocalPrometheus, target
from engine.dev.stack import Stack
from tests.browser_kit import CHROMIUM, CHROMIUM_FLAGS

T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T | None]], what: str, within: float = 90.0
) -> T:
    """Poll until `probe` returns something truthy. The timeout only bounds a failing test;
    nothing asserts on how fast it passes."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if got := await probe():
            return got
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out after {within:.0f}s waiting for {what}")


REPO_ROOT = Path(__file__).resolve().parent.parent
KAFKA_LIBS = REPO_ROOT / ".cache" / "kafka" / "libs"


@pytest.fixture(scope="session")
def make_stack_settings(tmp_path_factory: pytest.TempPathFactory) -> Callable[[], Settings]:
    """Factory: settings for a fresh stack (own state dir and free ports, external servers
    from the environment). For tests that need a stack of their own, such as `down`."""

    def make() -> Settings:
        kafka_port, controller_port, redis_port = free_ports(3)
        return Settings(
            kafka_bootstrap=os.environ.get("TAILOR_KAFKA_BOOTSTRAP") or None,
            redis_url=os.environ.get("TAILOR_REDIS_URL") or None,
            kafka_port=kafka_port,
            kafka_controller_port=controller_port,
            redis_port=redis_port,
            state_dir=tmp_path_factory.mktemp("stack"),
            kafka_libs=KAFKA_LIBS,
        )

    return make


@pytest.fixture(scope="session")
def stack_settings(make_stack_settings: Callable[[], Settings]) -> Iterator[Settings]:
    """Settings of a running Kafka + Redis, shared by the whole session; stopped at the end
    (also when `up` fails halfway, so no server outlives the run)."""
    settings = make_stack_settings()
    stack = Stack(settings)
    try:
        stack.up()
        yield settings
    finally:
        stack.down()


# ---- further fixtures below -------------------------------------------------------------


@dataclass
class Pipeline:
    """A running `tailor worker` and `tailor api` on a test stack."""

    settings: Settings
    api: str
    worker_metrics: str
    logs: Path
    worker: subprocess.Popen[bytes]

    def restart_worker(self) -> None:
        """Stop the worker gracefully and start a fresh process that must recover its state."""
        stop(self.worker)
        self.worker = start_role("worker", self.settings, self.logs / "worker.log")
        ready = self.worker_metrics.replace("/metrics", "/ready")
        wait_http(ready, self.worker, self.logs / "worker.log")


@contextmanager
def running_pipeline(
    stack_settings: Settings, logs: Path, app_prefix: str, **overrides: object
) -> Iterator[Pipeline]:
    """Start the worker and the API as child processes (their own app id and ports), wait
    until both are ready, and stop both at the end."""
    api_port, web_port = free_ports(2)
    settings = stack_settings.model_copy(
        update={
            "kafka_bootstrap": stack_settings.kafka,
            "redis_url": stack_settings.redis,
            "app_id": f"{app_prefix}-{uuid.uuid4().hex[:8]}",
            "api_port": api_port,
            "worker_web_port": web_port,
            **overrides,
        }
    )
    worker = start_role("worker", settings, logs / "worker.log")
    api = start_role("api", settings, logs / "api.log")
    pipeline = Pipeline(
        settings,
        f"http://127.0.0.1:{api_port}",
        f"http://127.0.0.1:{web_port}/metrics",
        logs,
        worker,
    )
    try:
        wait_http(f"{pipeline.api}/healthz", api, logs / "api.log")
        wait_http(f"http://127.0.0.1:{web_port}/ready", worker, logs / "worker.log")
        yield pipeline
    finally:
        stop(api)
        stop(pipeline.worker)
        print(f"--- logs: {logs}")


@dataclass
class Observed:
    """A running pipeline and the real Prometheus that scrapes its API and worker."""

    pipeline: Pipeline
    prometheus: str  # its URL; the API's TAILOR_PROMETHEUS_URL points here too


@pytest.fixture(scope="module")
def observed(
    stack_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Observed]:
    """`tailor worker`, `tailor api` and Debian's `prometheus` (started by the project's
    launcher, `engine.dev.prometheus`) scraping both, for the dashboard and /ops tests; one
    per module, so no worker outlives its tests consuming every later test's events. Half
    the customers are in the control group, so both groups have answers soon."""
    state = tmp_path_factory.mktemp("observed").resolve()
    (port,) = free_ports(1)
    with running_pipeline(
        stack_settings, state / "logs", "tailor-ops", prometheus_port=port, holdout_share=0.5
    ) as pipeline:
        s = pipeline.settings
        prometheus = LocalPrometheus(s, state, state / "logs")
        prometheus.start(
            [target(s.api_host, s.api_port)], [target(s.worker_web_bind, s.worker_web_port)]
        )
        try:
            yield Observed(pipeline, prometheus.url)
        finally:
            prometheus.stop()


@pytest.fixture(scope="module")
def chromium_path() -> Path:
    if not CHROMIUM.exists():
        pytest.skip(
            f"Debian's chromium is not installed at {CHROMIUM}: `make setup` installs it as "
            "root, otherwise run `sudo apt-get install chromium`"
        )
    return CHROMIUM


@pytest.fixture(scope="module")
async def browser(chromium_path: Path) -> AsyncIterator[Browser]:
    """Headless Chromium (tests/browser_kit.py), one per test module."""
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=chromium_path, args=CHROMIUM_FLAGS
        )
        yield chromium
        await chromium.close()
