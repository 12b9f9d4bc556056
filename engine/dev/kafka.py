"""The local Kafka: one KRaft node (broker and controller in one JVM, no ZooKeeper).

It runs from the Maven jars in ``settings.kafka_libs`` (fetched with `make setup`'s mvn
command when missing), with its config, cluster id and data in ``state_dir/kafka`` and its
output in ``state_dir/logs``. "Ready" means a real metadata round trip succeeded.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import shlex
import shutil
import subprocess
import uuid
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from aiokafka.admin import AIOKafkaAdminClient

import config
from config.settings import Settings
from engine.dev.servers import (
    EXTERNAL_CHECK_TIMEOUT_S,
    Server,
    StackError,
    describe,
    port_accepts,
    spawn,
    tail_text,
)

__all__ = ["KAFKA_JVM_OPTS", "KAFKA_READY_TIMEOUT_S", "LocalKafka", "require_java"]

KAFKA_READY_TIMEOUT_S = 90.0
MVN_TIMEOUT_S = 900.0
FORMAT_TIMEOUT_S = 120.0
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


def require_java() -> str:
    java = shutil.which("java")
    if java is None:
        raise StackError(
            "java was not found on PATH; Kafka needs Java 17+. Install it with "
            "'sudo apt-get install openjdk-17-jre-headless', or set TAILOR_KAFKA_BOOTSTRAP "
            "to an existing broker (host:port)."
        )
    return java


class LocalKafka:
    """The broker `up` starts from this state dir: its files, its commands, its probe."""

    def __init__(self, settings: Settings, state_dir: Path, libs: Path, logs_dir: Path) -> None:
        self.settings = settings
        self.libs = libs
        self.logs_dir = logs_dir
        self.dir = state_dir / "kafka"
        self.props = self.dir / "server.properties"
        self.log4j = self.dir / "log4j.properties"
        self.data = self.dir / "data"
        self.log = logs_dir / "kafka.log"  # log4j output
        self.out = logs_dir / "kafka.out"  # JVM stdout/stderr (crashes, GC warnings)
        self.server = Server(
            "kafka",
            self.dir,
            "kafka.Kafka",
            state_dir / "kafka.pid",
            settings.kafka_port,
            (self.log, self.out),
        )

    def ensure_jars(self, progress: Callable[[str], None]) -> None:
        """Fetch the broker jars with the same mvn command `make setup` runs, if missing."""
        if any(self.libs.glob("kafka_2.13-*.jar")):
            return
        mvn = shutil.which("mvn")
        if mvn is None:
            raise StackError(
                f"the Kafka jars are missing from {self.libs} and Maven is not installed "
                "to fetch them: run 'make setup', or 'sudo apt-get install maven' and retry."
            )
        pom = Path(config.__file__).resolve().parent / "kafka" / "pom.xml"
        self.libs.mkdir(parents=True, exist_ok=True)
        cmd = [
            mvn,
            "--batch-mode",
            "--quiet",
            "-f",
            str(pom),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={self.libs}",
            "-DincludeScope=runtime",
        ]
        progress(f"Kafka jars missing; fetching them from Maven Central:\n  {shlex.join(cmd)}")
        try:
            done = subprocess.run(
                cmd, capture_output=True, text=True, timeout=MVN_TIMEOUT_S, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise StackError(f"mvn did not finish within {MVN_TIMEOUT_S:.0f}s") from exc
        if done.returncode != 0 or not any(self.libs.glob("kafka_2.13-*.jar")):
            raise StackError(
                f"mvn failed (exit {done.returncode}) fetching the Kafka jars:\n"
                + tail_text(done.stdout + done.stderr)
            )

    def _classpath(self) -> str:
        return f"{self.libs}/*"

    def _java_cmd(self, java: str, main: str, *args: str) -> list[str]:
        return [
            java,
            *KAFKA_JVM_OPTS,
            f"-Dlog4j.configuration=file:{self.log4j}",
            f"-Dkafka.logs.dir={self.logs_dir}",
            "-cp",
            self._classpath(),
            main,
            *args,
        ]

    def prepare(self, java: str, progress: Callable[[str], None]) -> None:
        """Write the broker's config (every start, so port changes apply) and format once."""
        s = self.settings
        self.dir.mkdir(parents=True, exist_ok=True)
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        self.props.write_text(
            _SERVER_PROPERTIES.format(
                port=s.kafka_port,
                controller_port=s.kafka_controller_port,
                log_dirs=_prop_escape(str(self.data)),
            )
        )
        self.log4j.write_text(_LOG4J_PROPERTIES.format(log=_prop_escape(str(self.log))))
        if (self.data / "meta.properties").exists():
            return
        id_file = self.dir / "cluster.id"
        if not id_file.exists():
            id_file.write_text(_new_cluster_id() + "\n")
        cluster_id = id_file.read_text().strip()
        progress(f"Formatting Kafka storage in {self.data} (cluster id {cluster_id})")
        cmd = self._java_cmd(
            java, "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(self.props)
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
                + tail_text(done.stdout + done.stderr)
            )

    def spawn(self, java: str) -> int:
        cmd = self._java_cmd(java, "kafka.Kafka", str(self.props))
        return spawn(self.server, cmd, self.out)

    def probe(self, timeout: float) -> None:
        """A real metadata round trip, so "ready" means clients can use the broker."""
        _kafka_round_trip([self.settings.kafka], timeout)

    def check_external(self) -> None:
        servers = [h.strip() for h in self.settings.kafka.split(",") if h.strip()]
        where = f"the external Kafka at {self.settings.kafka} (TAILOR_KAFKA_BOOTSTRAP)"
        if not any(port_accepts(*_host_port(server)) for server in servers):
            raise StackError(f"{where} does not accept connections")
        try:
            _kafka_round_trip(servers, EXTERNAL_CHECK_TIMEOUT_S)
        except Exception as exc:
            raise StackError(f"{where} does not answer: {describe(exc)}") from exc


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
