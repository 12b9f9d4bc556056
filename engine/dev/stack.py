"""The local stack behind `tailor stack up|down|status`: one Kafka broker and one Redis.

Kafka runs from the Maven jars in ``settings.kafka_libs`` as a single KRaft node
(broker and controller in one JVM, no ZooKeeper; see `engine.dev.kafka`); Redis is
Debian's ``redis-server`` (`engine.dev.redis`). Both run detached from the caller (own
session, output to ``state_dir/logs``) so the stack outlives the CLI call that started it;
their pids live in ``state_dir/<name>.pid``. `down` only signals a pid whose command line
and working directory show it is the very process `up` started (`engine.dev.servers`), so
a reused pid or somebody else's server is never touched.
`stop_component` / `start_component` take one server down and bring it back on the same
port and the same data (Redis's AOF, Kafka's KRaft log dir: topics, records, committed
offsets), for fault tests and operators; the other server keeps running.
When ``TAILOR_KAFKA_BOOTSTRAP`` / ``TAILOR_REDIS_URL`` name existing servers, nothing is
started for them: they are only checked and reported as ``external``.

Linux only: process identity is read from ``/proc``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from config.settings import Settings
from engine.dev.kafka import KAFKA_READY_TIMEOUT_S, LocalKafka, require_java
from engine.dev.prometheus import LocalPrometheus
from engine.dev.redis import REDIS_READY_TIMEOUT_S, LocalRedis, mask_url, require_redis_server
from engine.dev.servers import (
    STOP_TIMEOUT_S,
    Server,
    StackError,
    lock,
    our_pid,
    port_accepts,
    port_in_use,
    probe_error,
    process_alive,
    reap,
    require_free_port,
    terminate,
    wait_ready,
)

__all__ = [
    "COMPONENTS",
    "Component",
    "ComponentStatus",
    "Stack",
    "StackError",
    "State",
    "process_alive",
]

State = Literal["running", "stopped", "external", "unreachable"]
Component = Literal["kafka", "redis"]
COMPONENTS: tuple[Component, ...] = ("kafka", "redis")


@dataclass(frozen=True)
class ComponentStatus:
    """One server of the stack as `status`, `up` and `down` see it."""

    name: str  # "kafka" or "redis"
    address: str  # bootstrap host:port, or redis URL with any password masked
    state: State
    pid: int | None = None  # only for a server this stack started
    detail: str = ""  # why it is unreachable / stopped, when that is known


class Stack:
    """Starts, checks and stops the local Kafka and Redis described by `settings`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # Resolved once, so a later chdir by the caller cannot split the state in two.
        self.state_dir = settings.state_dir.expanduser().resolve()
        self.kafka_libs = settings.kafka_libs.expanduser().resolve()
        self.logs_dir = self.state_dir / "logs"
        self.kafka = LocalKafka(settings, self.state_dir, self.kafka_libs, self.logs_dir)
        self.redis = LocalRedis(settings, self.state_dir, self.logs_dir)

    # ------------------------------------------------------------------ public API

    def up(self, *, progress: Callable[[str], None] = print) -> list[ComponentStatus]:
        """Start whatever is not running yet and return once every server answers.

        Idempotent: servers already running from this state dir are left alone. Whatever
        can fail before a server starts (binaries, jars, free ports, external servers,
        formatting Kafka's storage) is done first for both; if `up` still fails or is
        interrupted, it stops what it started, so it never leaves half a stack behind.
        """
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with lock(self.state_dir):
            self._start(COMPONENTS, progress)
            return self.status()

    def down(self, *, progress: Callable[[str], None] = print) -> list[ComponentStatus]:
        """Stop exactly the servers `up` started from this state dir; never anything else.

        SIGTERM first (Kafka needs a few seconds for a clean shutdown, which keeps the next
        start fast), SIGKILL after ``STOP_TIMEOUT_S``. Stale pid files are just removed.
        """
        if not self.state_dir.exists():
            return self.status()
        with lock(self.state_dir):
            self._stop(COMPONENTS, progress, kill=False)
        # The Prometheus a demo started here too: a demo killed with SIGKILL leaves it.
        LocalPrometheus(self.settings, self.state_dir, self.logs_dir).stop(progress=progress)
        return self.status()

    def start_component(
        self, name: Component, *, progress: Callable[[str], None] = print
    ) -> ComponentStatus:
        """Start one server of the stack (same port, same data dir) and wait until it answers.

        The other one is left as it is, so a test or an operator can bring back a server
        stopped with `stop_component`: Redis reloads its AOF, Kafka its KRaft log dir
        (topics, records and committed offsets). Idempotent; refuses an external server.
        """
        self._require_embedded(name)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with lock(self.state_dir):
            self._start((name,), progress)
        return self.component_status(name)

    def stop_component(
        self, name: Component, *, kill: bool = False, progress: Callable[[str], None] = print
    ) -> ComponentStatus:
        """Stop one server of the stack, keeping its data; the other keeps running.

        A clean stop (SIGTERM, then SIGKILL after ``STOP_TIMEOUT_S``) by default; with
        `kill`, SIGKILL at once: a crash, not a shutdown. Idempotent; refuses an external
        server (this stack never stops what it did not start).
        """
        self._require_embedded(name)
        if self.state_dir.exists():
            with lock(self.state_dir):
                self._stop((name,), progress, kill=kill)
        return self.component_status(name)

    def restart_component(
        self, name: Component, *, kill: bool = False, progress: Callable[[str], None] = print
    ) -> ComponentStatus:
        """`stop_component` then `start_component`: the same server back on its data."""
        self.stop_component(name, kill=kill, progress=progress)
        return self.start_component(name, progress=progress)

    def component_status(self, name: Component) -> ComponentStatus:
        """`status` of one server."""
        return self._kafka_status() if self._check_name(name) == "kafka" else self._redis_status()

    # ------------------------------------------------------------------ start and stop

    def _start(self, names: tuple[Component, ...], progress: Callable[[str], None]) -> None:
        """Start those of `names` that are embedded and not running; the caller holds the lock.

        Every check that can fail comes before any launch; then Redis is launched before
        Kafka and both are waited for (Redis is ready long before the JVM has warmed up).
        If anything fails or is interrupted, what this call started is stopped again.
        """
        s = self.settings
        start_kafka = start_redis = False
        java = redis_server = ""
        if "redis" in names:
            redis_pid = our_pid(self.redis.server) if s.embedded_redis else None
            if not s.embedded_redis:
                self.redis.check_external()
                progress(f"Redis: using external server {mask_url(s.redis)}")
            elif redis_pid is None:
                redis_server = require_redis_server()
                require_free_port(s.redis_port, "TAILOR_REDIS_PORT", "Redis")
                start_redis = True
            else:
                progress(f"Redis already running on {s.redis} (pid {redis_pid})")
        if "kafka" in names:
            kafka_pid = our_pid(self.kafka.server) if s.embedded_kafka else None
            if not s.embedded_kafka:
                self.kafka.check_external()
                progress(f"Kafka: using external broker {s.kafka}")
            elif kafka_pid is None:
                java = require_java()
                self.kafka.ensure_jars(progress)
                require_free_port(s.kafka_port, "TAILOR_KAFKA_PORT", "Kafka")
                require_free_port(
                    s.kafka_controller_port, "TAILOR_KAFKA_CONTROLLER_PORT", "Kafka controller"
                )
                self.kafka.prepare(java, progress)
                start_kafka = True
            else:
                progress(f"Kafka already running on {s.kafka} (pid {kafka_pid})")

        started: list[tuple[Server, int]] = []
        try:
            if start_redis:
                progress(f"Starting Redis on {s.redis} (log: {self.redis.log})")
                started.append((self.redis.server, self.redis.spawn(redis_server)))
            kafka_t0 = time.monotonic()
            if start_kafka:
                progress(f"Starting Kafka on {s.kafka} (log: {self.kafka.log})")
                started.append((self.kafka.server, self.kafka.spawn(java)))
            for server, pid in started:
                if server is self.redis.server:
                    wait_ready(server, pid, self.redis.ping, REDIS_READY_TIMEOUT_S)
                    progress(f"Redis ready on {s.redis} (pid {pid})")
                else:
                    wait_ready(server, pid, self.kafka.probe, KAFKA_READY_TIMEOUT_S)
                    took = time.monotonic() - kafka_t0
                    progress(f"Kafka ready on {s.kafka} (pid {pid}, {took:.1f}s)")
        except BaseException:
            for server, pid in reversed(started):
                progress(f"Stopping {server.name} (pid {pid}): start did not complete")
                terminate(server, pid)
            raise

    def _stop(
        self, names: tuple[Component, ...], progress: Callable[[str], None], *, kill: bool
    ) -> None:
        """Signal each of `names` that is ours, then wait for all; the caller holds the lock."""
        targets: list[tuple[Server, int]] = []
        for server in (self.kafka.server, self.redis.server):
            pid = our_pid(server) if server.name in names else None
            if pid is None:
                continue
            progress(f"{'Killing' if kill else 'Stopping'} {server.name} (pid {pid})")
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL if kill else signal.SIGTERM)
            targets.append((server, pid))
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for server, pid in targets:
            reap(server, pid, deadline, progress)
            progress(f"Stopped {server.name}")

    @staticmethod
    def _check_name(name: str) -> Component:
        if name not in COMPONENTS:
            raise StackError(f"no component {name!r} in the stack; choose one of {COMPONENTS}")
        return name

    def _require_embedded(self, name: str) -> None:
        s = self.settings
        if not (s.embedded_kafka if self._check_name(name) == "kafka" else s.embedded_redis):
            setting = "TAILOR_KAFKA_BOOTSTRAP" if name == "kafka" else "TAILOR_REDIS_URL"
            raise StackError(
                f"{name} is an external server ({setting}): this stack did not start it and "
                "never starts or stops it"
            )

    def status(self) -> list[ComponentStatus]:
        """Where each server is and whether it answers, without starting or stopping anything."""
        return [self._kafka_status(), self._redis_status()]

    # ------------------------------------------------------------------ status

    def _kafka_status(self) -> ComponentStatus:
        s = self.settings
        if not s.embedded_kafka:
            err = probe_error(self.kafka.check_external)
            state: State = "unreachable" if err else "external"
            return ComponentStatus("kafka", s.kafka, state, None, err)
        pid = our_pid(self.kafka.server)
        if pid is None:
            return ComponentStatus("kafka", s.kafka, "stopped", None, self._port_note(s.kafka_port))
        if not port_accepts("127.0.0.1", s.kafka_port):
            return ComponentStatus(
                "kafka", s.kafka, "unreachable", pid, "not accepting connections"
            )
        err = probe_error(lambda: self.kafka.probe(5.0))
        return ComponentStatus("kafka", s.kafka, "unreachable" if err else "running", pid, err)

    def _redis_status(self) -> ComponentStatus:
        s = self.settings
        address = mask_url(s.redis)
        if not s.embedded_redis:
            err = probe_error(self.redis.check_external)
            state: State = "unreachable" if err else "external"
            return ComponentStatus("redis", address, state, None, err)
        pid = our_pid(self.redis.server)
        if pid is None:
            return ComponentStatus("redis", address, "stopped", None, self._port_note(s.redis_port))
        err = probe_error(lambda: self.redis.ping(2.0))
        return ComponentStatus("redis", address, "unreachable" if err else "running", pid, err)

    @staticmethod
    def _port_note(port: int) -> str:
        return f"port {port} is in use by another process" if port_in_use(port) else ""
