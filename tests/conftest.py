"""Shared fixtures.

The local stack (Kafka + Redis) comes first: `stack_settings` starts one per test session on
free ports and a temporary state dir, so it never clashes with a demo stack on the default
ports or with a test run in another checkout. Set TAILOR_KAFKA_BOOTSTRAP / TAILOR_REDIS_URL
to run the tests against existing servers instead. Add further fixtures below this section.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from config.settings import Settings
from engine.processes import free_ports
from engine.stack import Stack

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
