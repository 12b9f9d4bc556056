"""The local stack behind `tailor stack up|down|status`: one Kafka broker and one Redis.

Kafka runs from the Maven jars in ``settings.kafka_libs`` as a single KRaft node
(broker and controller in one JVM, no ZooKeeper); Redis is Debian's ``redis-server``.
Both run detached from the caller (own session, output to ``state_dir/logs``) so the
stack outlives the CLI call that started it; their pids live in ``state_dir/<name>.pid``.
`down` only signals a pid whose command line and working directory show it is the very
process `up` started, so a reused pid or somebody else's server is never touched.
When ``TAILOR_KAFKA_BOOTSTRAP`` / ``TAILOR_REDIS_URL`` name existing servers, nothing is
started for them: they are only checked and reported as ``external``.

Linux only: process identity is read from ``/proc``.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import fcntl
import logging
import os
import shlex
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit, urlunsplit

import redis
from aiokafka.admin import AIOKafkaAdminClient

import config
from config.settings import Settings

__all__ = ["ComponentStatus", "Stack", "StackError", "State"]

log = logging.getLogger(__name__)

State = Literal["running", "stopped", "external", "unreachable"]

KAFKA_READY_TIMEOUT_S = 90.0
REDIS_READY_TIMEOUT_S = 15.0
EXTERNAL_CHECK_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 30.0
MVN_TIMEOUT_S = 900.0
FORMAT_TIMEOUT_S = 120.0
LOG_TAIL_LINES = 30
# Small heap: the demo machines have 2 cores and also run a worker, the API and the simulator.
KAFKA_JVM_OPTS = (
    "-Xms256m",
    "-Xmx1g",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-Djava.awt.headless=true",
)

_T = TypeVar("_T")
# Popen objects of the servers this process started. Holding them keeps Popen.__del__ from
# warning that the (deliberately detached) child is still running, and lets us reap it.
_children: dict[int, subprocess.Popen[bytes]] = {}


class StackError(RuntimeError):
    """The stack cannot be brought up (or checked) as asked; the message says what to do."""


@dataclass(frozen=True)
class ComponentStatus:
    """One server of the stack as `status`, `up` and `down` see it."""

    name: str  # "kafka" or "redis"
    address: str  # bootstrap host:port, or redis URL with any password masked
    state: State
    pid: int | None = None  # only for a server this stack started
    detail: str = ""  # why it is unreachable / stopped, when that is known


@dataclass(frozen=True)
class _Server:
    """What tells one of our processes apart from every other process on the machine."""

    name: str
    workdir: Path  # its cwd; unique to this state dir
    marker: str  # must occur in its /proc/<pid>/cmdline
    pid_file: Path


class Stack:
    """Starts, checks and stops the local Kafka and Redis described by `settings`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # Resolved once, so a later chdir by the caller cannot split the state in two.
        self.state_dir = settings.state_dir.expanduser().resolve()
        self.kafka_libs = settings.kafka_libs.expanduser().resolve()
        self.logs_dir = self.state_dir / "logs"
        self.kafka_dir = self.state_dir / "kafka"
        self.kafka_props = self.kafka_dir / "server.properties"
        self.kafka_log4j = self.kafka_dir / "log4j.properties"
        self.kafka_data = self.kafka_dir / "data"
        self.kafka_log = self.logs_dir / "kafka.log"  # log4j output
        self.kafka_out = self.logs_dir / "kafka.out"  # JVM stdout/stderr (crashes, GC warnings)
        self.redis_dir = self.state_dir / "redis"
        self.redis_log = self.logs_dir / "redis.log"
        self._kafka = _Server("kafka", self.kafka_dir, "kafka.Kafka", self.state_dir / "kafka.pid")
        self._redis = _Server("redis", self.redis_dir, "redis-server", self.state_dir / "redis.pid")

    # ------------------------------------------------------------------ public API

    def up(self, *, progress: Callable[[str], None] = print) -> list[ComponentStatus]:
        """Start whatever is not running yet and return once every server answers.

        Idempotent: servers already running from this state dir are left alone. Whatever
        can fail before a server starts (binaries, jars, free ports, external servers,
        formatting Kafka's storage) is done first for both; if `up` still fails or is
        interrupted, it stops what it started, so it never leaves half a stack behind.
        """
        s = self.settings
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with self._lock():
            kafka_pid = self._our_pid(self._kafka) if s.embedded_kafka else None
            redis_pid = self._our_pid(self._redis) if s.embedded_redis else None
            start_kafka = s.embedded_kafka and kafka_pid is None
            start_redis = s.embedded_redis and redis_pid is None

            java = redis_server = ""
            if not s.embedded_redis:
                self._check_external_redis()
                progress(f"Redis: using external server {_mask_url(s.redis)}")
            elif start_redis:
                redis_server = self._require_redis_server()
                self._require_free_port(s.redis_port, "TAILOR_REDIS_PORT", "Redis")
            else:
                progress(f"Redis already running on {s.redis} (pid {redis_pid})")
            if not s.embedded_kafka:
                self._check_external_kafka()
                progress(f"Kafka: using external broker {s.kafka}")
            elif start_kafka:
                java = self._require_java()
                self._ensure_kafka_jars(progress)
                self._require_free_port(s.kafka_port, "TAILOR_KAFKA_PORT", "Kafka")
                self._require_free_port(
                    s.kafka_controller_port, "TAILOR_KAFKA_CONTROLLER_PORT", "Kafka controller"
                )
                self._prepare_kafka(java, progress)
            else:
                progress(f"Kafka already running on {s.kafka} (pid {kafka_pid})")

            started: list[tuple[_Server, int]] = []
            try:
                # Launch both, then wait: Redis is ready long before the JVM has warmed up.
                if start_redis:
                    progress(f"Starting Redis on {s.redis} (log: {self.redis_log})")
                    redis_pid = self._spawn_redis(redis_server)
                    started.append((self._redis, redis_pid))
                kafka_t0 = time.monotonic()
                if start_kafka:
                    progress(f"Starting Kafka on {s.kafka} (log: {self.kafka_log})")
                    kafka_pid = self._spawn_kafka(java)
                    started.append((self._kafka, kafka_pid))
                if start_redis and redis_pid is not None:
                    self._wait_ready(
                        self._redis, redis_pid, self._redis_ping, REDIS_READY_TIMEOUT_S
                    )
                    progress(f"Redis ready on {s.redis} (pid {redis_pid})")
                if start_kafka and kafka_pid is not None:
                    self._wait_ready(
                        self._kafka, kafka_pid, self._kafka_probe, KAFKA_READY_TIMEOUT_S
                    )
                    took = time.monotonic() - kafka_t0
                    progress(f"Kafka ready on {s.kafka} (pid {kafka_pid}, {took:.1f}s)")
            except BaseException:
                for server, pid in reversed(started):
                    progress(f"Stopping {server.name} (pid {pid}): `up` did not complete")
                    self._terminate(server, pid)
                raise
            return self.status()

    def down(self, *, progress: Callable[[str], None] = print) -> list[ComponentStatus]:
        """Stop exactly the servers `up` started from this state dir; never anything else.

        SIGTERM first (Kafka needs a few seconds for a clean shutdown, which keeps the next
        start fast), SIGKILL after ``STOP_TIMEOUT_S``. Stale pid files are just removed.
        """
        if not self.state_dir.exists():
            return self.status()
        with self._lock():
            targets: list[tuple[_Server, int]] = []
            for server in (self._kafka, self._redis):
                pid = self._our_pid(server)
                if pid is None:
                    continue
                progress(f"Stopping {server.name} (pid {pid})")
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
                targets.append((server, pid))
            deadline = time.monotonic() + STOP_TIMEOUT_S
            for server, pid in targets:
                while process_alive(pid) and time.monotonic() < deadline:
                    time.sleep(0.1)
                if process_alive(pid) and self._is_ours(server, pid):
                    progress(f"{server.name} (pid {pid}) ignored SIGTERM; sending SIGKILL")
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                    while process_alive(pid):
                        time.sleep(0.05)
                server.pid_file.unlink(missing_ok=True)
                _forget(pid)
                progress(f"Stopped {server.name}")
            return self.status()

    def status(self) -> list[ComponentStatus]:
        """Where each server is and whether it answers, without starting or stopping anything."""
        return [self._kafka_status(), self._redis_status()]

    # ------------------------------------------------------------------ status

    def _kafka_status(self) -> ComponentStatus:
        s = self.settings
        if not s.embedded_kafka:
            err = _probe_error(self._check_external_kafka)
            state: State = "unreachable" if err else "external"
            return ComponentStatus("kafka", s.kafka, state, None, err)
        pid = self._our_pid(self._kafka)
        if pid is None:
            return ComponentStatus("kafka", s.kafka, "stopped", None, self._port_note(s.kafka_port))
        if not _port_accepts("127.0.0.1", s.kafka_port):
            return ComponentStatus(
                "kafka", s.kafka, "unreachable", pid, "not accepting connections"
            )
        err = _probe_error(lambda: self._kafka_probe(5.0))
        return ComponentStatus("kafka", s.kafka, "unreachable" if err else "running", pid, err)

    def _redis_status(self) -> ComponentStatus:
        s = self.settings
        address = _mask_url(s.redis)
        if not s.embedded_redis:
            err = _probe_error(self._check_external_redis)
            state: State = "unreachable" if err else "external"
            return ComponentStatus("redis", address, state, None, err)
        pid = self._our_pid(self._redis)
        if pid is None:
            return ComponentStatus("redis", address, "stopped", None, self._port_note(s.redis_port))
        err = _probe_error(lambda: self._redis_ping(2.0))
        return ComponentStatus("redis", address, "unreachable" if err else "running", pid, err)

    @staticmethod
    def _port_note(port: int) -> str:
        return f"port {port} is in use by another process" if _port_in_use(port) else ""

    # ------------------------------------------------------------------ prerequisites

    @staticmethod
    def _require_java() -> str:
        java = shutil.which("java")
        if java is None:
            raise StackError(
                "java was not found on PATH; Kafka needs Java 17+. Install it with "
                "'sudo apt-get install openjdk-17-jre-headless', or set TAILOR_KAFKA_BOOTSTRAP "
                "to an existing broker (host:port)."
            )
        return java

    @staticmethod
    def _require_redis_server() -> str:
        binary = shutil.which("redis-server")
        if binary is None:
            raise StackError(
                "redis-server was not found on PATH. Install it with "
                "'sudo apt-get install redis-server', or set TAILOR_REDIS_URL to an existing "
                "server (redis://host:port/0)."
            )
        return binary

    @staticmethod
    def _require_free_port(port: int, setting: str, what: str) -> None:
        if _port_in_use(port):
            raise StackError(
                f"port {port} on 127.0.0.1 is already in use by a process that is not this "
                f"stack's {what}; stop it, or choose another port with {setting}=<port>."
            )

    def _ensure_kafka_jars(self, progress: Callable[[str], None]) -> None:
        """Fetch the broker jars with the same mvn command `make setup` runs, if missing."""
        if any(self.kafka_libs.glob("kafka_2.13-*.jar")):
            return
        mvn = shutil.which("mvn")
        if mvn is None:
            raise StackError(
                f"the Kafka jars are missing from {self.kafka_libs} and Maven is not installed "
                "to fetch them: run 'make setup', or 'sudo apt-get install maven' and retry."
            )
        pom = Path(config.__file__).resolve().parent / "kafka" / "pom.xml"
        self.kafka_libs.mkdir(parents=True, exist_ok=True)
        cmd = [
            mvn,
            "--batch-mode",
            "--quiet",
            "-f",
            str(pom),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={self.kafka_libs}",
            "-DincludeScope=runtime",
        ]
        progress(f"Kafka jars missing; fetching them from Maven Central:\n  {shlex.join(cmd)}")
        try:
            done = subprocess.run(
                cmd, capture_output=True, text=True, timeout=MVN_TIMEOUT_S, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise StackError(f"mvn did not finish within {MVN_TIMEOUT_S:.0f}s") from exc
        if done.returncode != 0 or not any(self.kafka_libs.glob("kafka_2.13-*.jar")):
            raise StackError(
                f"mvn failed (exit {done.returncode}) fetching the Kafka jars:\n"
                + _tail_text(done.stdout + done.stderr)
            )

    # ------------------------------------------------------------------ Kafka

    def _classpath(self) -> str:
        return f"{self.kafka_libs}/*"

    def _java_cmd(self, java: str, main: str, *args: str) -> list[str]:
        return [
            java,
            *KAFKA_JVM_OPTS,
            f"-Dlog4j.configuration=file:{self.kafka_log4j}",
            f"-Dkafka.logs.dir={self.logs_dir}",
            "-cp",
            self._classpath(),
            main,
            *args,
        ]

    def _prepare_kafka(self, java: str, progress: Callable[[str], None]) -> None:
        """Write the broker's config (every start, so port changes apply) and format once."""
        s = self.settings
        self.kafka_dir.mkdir(parents=True, exist_ok=True)
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        self.kafka_props.write_text(
            _SERVER_PROPERTIES.format(
                port=s.kafka_port,
                controller_port=s.kafka_controller_port,
                log_dirs=_prop_escape(str(self.kafka_data)),
            )
        )
        self.kafka_log4j.write_text(_LOG4J_PROPERTIES.format(log=_prop_escape(str(self.kafka_log))))
        if (self.kafka_data / "meta.properties").exists():
            return
        id_file = self.kafka_dir / "cluster.id"
        if not id_file.exists():
            id_file.write_text(_new_cluster_id() + "\n")
        cluster_id = id_file.read_text().strip()
        progress(f"Formatting Kafka storage in {self.kafka_data} (cluster id {cluster_id})")
        cmd = self._java_cmd(
            java, "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(self.kafka_props)
        )
        try:
            done = subprocess.run(
                cmd, capture_output=True, text=True, timeout=FORMAT_TIMEOUT_S, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise StackError(f"Kafka storage format did not finish in {FORMAT_TIMEOUT_S}s") from exc
        if done.returncode != 0:
            raise StackError(
                f"formatting Kafka storage failed (exit {done.returncode}):\n"
                + _tail_text(done.stdout + done.stderr)
            )

    def _spawn_kafka(self, java: str) -> int:
        cmd = self._java_cmd(java, "kafka.Kafka", str(self.kafka_props))
        return self._spawn(self._kafka, cmd, self.kafka_out)

    def _kafka_probe(self, timeout: float) -> None:
        """A real metadata round trip, so "ready" means clients can use the broker."""
        _kafka_round_trip([self.settings.kafka], timeout)

    def _check_external_kafka(self) -> None:
        servers = [h.strip() for h in self.settings.kafka.split(",") if h.strip()]
        where = f"the external Kafka at {self.settings.kafka} (TAILOR_KAFKA_BOOTSTRAP)"
        if not any(_port_accepts(*_host_port(server)) for server in servers):
            raise StackError(f"{where} does not accept connections")
        try:
            _kafka_round_trip(servers, EXTERNAL_CHECK_TIMEOUT_S)
        except Exception as exc:
            raise StackError(f"{where} does not answer: {_describe(exc)}") from exc

    # ------------------------------------------------------------------ Redis

    def _spawn_redis(self, binary: str) -> int:
        self.redis_dir.mkdir(parents=True, exist_ok=True)
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        cmd = [
            binary,
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.settings.redis_port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.redis_dir),
            "--daemonize",
            "no",
            "--logfile",
            "",
        ]
        return self._spawn(self._redis, cmd, self.redis_log)

    def _redis_ping(self, timeout: float) -> None:
        client = redis.Redis.from_url(
            self.settings.redis, socket_connect_timeout=timeout, socket_timeout=timeout
        )
        try:
            client.ping()
        finally:
            client.close()

    def _check_external_redis(self) -> None:
        try:
            self._redis_ping(EXTERNAL_CHECK_TIMEOUT_S)
        except Exception as exc:
            raise StackError(
                f"the external Redis at {_mask_url(self.settings.redis)} (TAILOR_REDIS_URL) does "
                f"not answer: {_describe(exc)}"
            ) from exc

    # ------------------------------------------------------------------ processes

    def _spawn(self, server: _Server, cmd: list[str], out: Path) -> int:
        """Start `cmd` in its own session so it survives the caller; record its pid."""
        server.workdir.mkdir(parents=True, exist_ok=True)
        log.debug("spawning %s: %s", server.name, shlex.join(cmd))
        with out.open("ab") as sink:
            sink.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} {shlex.join(cmd)}\n".encode())
            sink.flush()
            proc = subprocess.Popen(
                cmd,
                cwd=server.workdir,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _children[proc.pid] = proc
        tmp = server.pid_file.with_suffix(".pid.tmp")
        tmp.write_text(f"{proc.pid}\n")
        tmp.replace(server.pid_file)
        return proc.pid

    def _wait_ready(
        self, server: _Server, pid: int, probe: Callable[[float], None], timeout: float
    ) -> None:
        """Poll `probe` until it passes; raise with the tail of the log if the process dies
        or `timeout` runs out (the tail is taken now, before any shutdown noise)."""
        deadline = time.monotonic() + timeout
        last: BaseException | None = None
        port = self.settings.kafka_port if server is self._kafka else self.settings.redis_port
        while True:
            if not process_alive(pid):
                raise StackError(f"{server.name} exited during startup.\n{self._log_tail(server)}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            # TCP first: the client libraries log an error for every refused connection.
            if _port_accepts("127.0.0.1", port):
                try:
                    probe(min(5.0, max(remaining, 0.5)))
                    return
                except Exception as exc:
                    last = exc
            time.sleep(0.25)
        why = f" Last error: {_describe(last)}." if last else ""
        raise StackError(
            f"{server.name} did not become ready within {timeout:.0f}s.{why}\n"
            f"{self._log_tail(server)}"
        )

    def _terminate(self, server: _Server, pid: int) -> None:
        if self._is_ours(server, pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + STOP_TIMEOUT_S
            while process_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if process_alive(pid) and self._is_ours(server, pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                while process_alive(pid):
                    time.sleep(0.05)
        server.pid_file.unlink(missing_ok=True)
        _forget(pid)

    def _log_tail(self, server: _Server) -> str:
        files = [self.kafka_log, self.kafka_out] if server is self._kafka else [self.redis_log]
        parts = []
        for f in files:
            if f.exists() and f.stat().st_size:
                parts.append(f"--- last lines of {f}:\n{_tail_file(f)}")
        return "\n".join(parts) or "(no log output)"

    def _our_pid(self, server: _Server) -> int | None:
        """The pid in the pid file if that process is still ours; drops a stale pid file."""
        try:
            pid = int(server.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        if process_alive(pid) and self._is_ours(server, pid):
            return pid
        log.debug("removing stale pid file %s (pid %s)", server.pid_file, pid)
        server.pid_file.unlink(missing_ok=True)
        return None

    @staticmethod
    def _is_ours(server: _Server, pid: int) -> bool:
        """Same command and same working directory as we started it with."""
        try:
            cmdline_bytes = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
            cmdline = cmdline_bytes.decode(errors="replace")
            cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
        except OSError:
            return False
        return server.marker in cmdline and cwd == server.workdir

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        """Serialize up/down on one state dir (two terminals, or parallel test runs)."""
        with (self.state_dir / "stack.lock").open("a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)


# ---------------------------------------------------------------------- helpers


def _kafka_round_trip(servers: list[str], timeout: float) -> None:
    """Fetch cluster metadata from `servers` within `timeout` seconds, or raise."""

    async def round_trip() -> None:
        client = AIOKafkaAdminClient(
            bootstrap_servers=servers,
            request_timeout_ms=max(int(timeout * 1000), 1000),
            client_id="tailor-stack",
        )
        try:
            async with asyncio.timeout(timeout):
                await client.start()
                cluster = await client.describe_cluster()
            if not cluster.get("brokers"):
                raise StackError("the broker answered, but its metadata lists no brokers yet")
        finally:
            await client.close()

    _run_async(round_trip())


def _run_async(coro: Coroutine[Any, Any, _T]) -> _T:
    """asyncio.run, also when the caller is already inside an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _probe_error(check: Callable[[], None]) -> str:
    """'' if `check` passes, else a one-line reason."""
    try:
        check()
    except Exception as exc:
        return _describe(exc)
    return ""


def _forget(pid: int) -> None:
    """Drop our Popen for a stopped server, reaping it first."""
    child = _children.pop(pid, None)
    if child is not None:
        child.poll()


def process_alive(pid: int) -> bool:
    """True while any thread of `pid` runs.

    Our own children are asked through Popen (which also reaps them). For others, a zombie
    counts as dead, but only once every thread is: the JVM's main thread exits, leaving the
    process 'Z' in /proc/<pid>/stat, while its other threads are still shutting down and
    still hold the ports.
    """
    child = _children.get(pid)
    if child is not None:
        if child.poll() is None:
            return True
        del _children[pid]
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return False
    for task in tasks:
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue  # that thread just ended
        if stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X"):
            return True
    return False


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def _port_accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def _host_port(server: str) -> tuple[str, int]:
    """'host:port' or '[v6]:port' -> (host, port); Kafka's default port if none is given."""
    host, sep, port = server.rpartition(":")
    if not sep or not port.isdigit() or (host.count(":") and not host.startswith("[")):
        return server.strip("[]"), 9092
    return host.strip("[]"), int(port)


def _new_cluster_id() -> str:
    """Like Kafka's Uuid.randomUuid: 22 chars of base64url; never starting with '-', which
    the storage tool's argument parser would take for an option."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cid.startswith("-"):
            return cid


def _mask_url(url: str) -> str:
    """The URL without its password, for printing."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _describe(exc: BaseException | None) -> str:
    if exc is None:
        return ""
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return "timed out"
    if isinstance(exc, StackError):
        return str(exc).splitlines()[0]
    text = str(exc) or repr(exc)
    name = type(exc).__name__
    return (text if text.startswith(name) else f"{name}: {text}").splitlines()[0]


def _tail_text(text: str, lines: int = LOG_TAIL_LINES) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _tail_file(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    with path.open("rb") as fh:
        fh.seek(0, os.SEEK_END)
        fh.seek(max(fh.tell() - 64 * 1024, 0))
        return _tail_text(fh.read().decode(errors="replace"), lines)


def _prop_escape(value: str) -> str:
    """Escape for a Java .properties value (backslashes would start escapes)."""
    return value.replace("\\", "\\\\")


_SERVER_PROPERTIES = """\
# Written by `tailor stack up` on every start; edits are overwritten.
# Single-node KRaft: this JVM is both the broker and the (only) controller.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{controller_port}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs={log_dirs}

# One broker: every replication factor is 1.
num.partitions=1
default.replication.factor=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
min.insync.replicas=1
auto.create.topics.enable=true
# No other members will ever join: do not make the first consumer group wait 3 s.
group.initial.rebalance.delay.ms=0

# Sized for a 2-core development machine.
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
"""

_LOG4J_PROPERTIES = """\
# Written by `tailor stack up`. Kafka 3.9 logs through log4j 1.x (reload4j).
# INFO for lifecycle, elections, topics and consumer groups; WARN for the chatty parts.
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.RollingFileAppender
log4j.appender.file.File={log}
log4j.appender.file.MaxFileSize=10MB
log4j.appender.file.MaxBackupIndex=2
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n

# Config dumps, thread start-up chatter and per-partition log housekeeping.
log4j.logger.kafka.server.KafkaConfig=WARN
log4j.logger.org.apache.kafka.common.config.AbstractConfig=WARN
log4j.logger.org.apache.kafka.common.utils.AppInfoParser=WARN
log4j.logger.org.apache.zookeeper=WARN
log4j.logger.kafka.utils.Log4jControllerRegistration$=WARN
log4j.logger.kafka.server.ClientQuotaManager$ThrottledChannelReaper=WARN
log4j.logger.kafka.server.DelayedOperationPurgatory$ExpiredOperationReaper=WARN
log4j.logger.kafka.server.NodeToControllerRequestThread=WARN
log4j.logger.org.apache.kafka.image.loader.MetadataLoader=WARN
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
log4j.logger.kafka.log=WARN
log4j.logger.org.apache.kafka.storage.internals.log=WARN
"""
