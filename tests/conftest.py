"""Shared fixtures.

The local stack (Kafka + Redis) comes first: `stack_settings` starts one per test session on
free ports and a temporary state dir, so it never clashes with a demo stack on the default
ports or with a test run in another checkout. Set TAILOR_KAFKA_BOOTSTRAP / TAILOR_REDIS_URL
to run the tests against existing servers instead. Add further fixtures below this section.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from config.settings import Settings
from engine.dev.processes import free_ports, start_role, stop, wait_http
from engine.dev.stack import Stack

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
