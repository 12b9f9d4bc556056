"""The local stack launcher: real Kafka and Redis processes, started and stopped for real."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from config.settings import Settings
from engine.dev.processes import free_ports
from engine.dev.prometheus import LocalPrometheus
from engine.dev.servers import StackError, process_alive
from engine.dev.stack import ComponentStatus, Stack
from tests.conftest import KAFKA_LIBS


def by_name(statuses: list[ComponentStatus]) -> dict[str, ComponentStatus]:
    return {s.name: s for s in statuses}


def expected_state(embedded: bool) -> str:
    return "running" if embedded else "external"


# ---------------------------------------------------------------------- e2e


@pytest.mark.e2e
def test_stack_comes_up(stack_settings: Settings) -> None:
    status = by_name(Stack(stack_settings).status())
    assert set(status) == {"kafka", "redis"}
    assert status["kafka"].state == expected_state(stack_settings.embedded_kafka)
    assert status["redis"].state == expected_state(stack_settings.embedded_redis)
    assert status["kafka"].address == stack_settings.kafka
    for name, embedded in (
        ("kafka", stack_settings.embedded_kafka),
        ("redis", stack_settings.embedded_redis),
    ):
        pid = status[name].pid
        if embedded:
            assert pid is not None
            assert process_alive(pid)
            assert (stack_settings.state_dir / f"{name}.pid").read_text().strip() == str(pid)
        else:
            assert pid is None


@pytest.mark.e2e
async def test_kafka_produce_then_consume(stack_settings: Settings) -> None:
    topic = f"stack-test-{uuid.uuid4().hex[:12]}"  # new topic: exercises auto-create
    producer = AIOKafkaProducer(bootstrap_servers=stack_settings.kafka)
    await producer.start()
    try:
        meta = await producer.send_and_wait(topic, b"hello", key=b"k1")
    finally:
        await producer.stop()
    assert meta.topic == topic

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=stack_settings.kafka,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        msg = await asyncio.wait_for(consumer.getone(), timeout=30)
    finally:
        await consumer.stop()
    assert (msg.key, msg.value) == (b"k1", b"hello")


@pytest.mark.e2e
def test_redis_set_get(stack_settings: Settings) -> None:
    key = f"stack-test:{uuid.uuid4().hex}"
    client = redis.Redis.from_url(stack_settings.redis)
    try:
        assert client.set(key, "v", ex=60)
        assert client.get(key) == b"v"
        client.delete(key)
    finally:
        client.close()


@pytest.mark.e2e
def test_second_up_is_idempotent(stack_settings: Settings) -> None:
    before = by_name(Stack(stack_settings).status())
    messages: list[str] = []
    after = by_name(Stack(stack_settings).up(progress=messages.append))  # like a 2nd CLI call
    assert {n: s.pid for n, s in after.items()} == {n: s.pid for n, s in before.items()}
    assert {n: s.state for n, s in after.items()} == {n: s.state for n, s in before.items()}
    assert not any(m.startswith("Starting") for m in messages), messages
    if stack_settings.embedded_kafka:
        assert any("Kafka already running" in m for m in messages), messages


@pytest.mark.e2e
def test_down_stops_both(make_stack_settings: Callable[[], Settings]) -> None:
    settings = make_stack_settings()
    if not (settings.embedded_kafka and settings.embedded_redis):
        pytest.skip("TAILOR_KAFKA_BOOTSTRAP/TAILOR_REDIS_URL set: no local processes to stop")
    stack = Stack(settings)
    try:
        up = by_name(stack.up())
        pids = {name: s.pid for name, s in up.items()}
        assert all(pid is not None and process_alive(pid) for pid in pids.values()), up

        down = by_name(stack.down())
        assert {s.state for s in down.values()} == {"stopped"}
        assert all(s.pid is None for s in down.values())
        for name, pid in pids.items():
            assert pid is not None
            assert not process_alive(pid), f"{name} (pid {pid}) still running after down()"
            assert not (settings.state_dir / f"{name}.pid").exists()
        assert {s.state for s in stack.status()} == {"stopped"}
        # The ports are free again, so the next `up` can bind them.
        for port in (settings.kafka_port, settings.kafka_controller_port, settings.redis_port):
            with socket.socket() as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind(("127.0.0.1", port))
    finally:
        stack.down()


@pytest.mark.e2e
def test_down_stops_the_prometheus_a_killed_demo_left(tmp_path: Path) -> None:
    """A demo killed with SIGKILL never stops its Prometheus; `stack down` does."""
    if shutil.which("prometheus") is None:
        pytest.fail("prometheus is missing: `make setup` installs Debian's prometheus")
    (port,) = free_ports(1)
    settings = local_settings(tmp_path, prometheus_port=port)
    prometheus = LocalPrometheus(settings, settings.state_dir, settings.state_dir / "logs")
    pid = prometheus.start([], [], progress=lambda _: None)
    try:
        assert process_alive(pid)
        messages: list[str] = []
        Stack(settings).down(progress=messages.append)  # no Kafka or Redis ran here
        assert not process_alive(pid), "prometheus still running after stack down"
        assert f"Stopping prometheus (pid {pid})" in messages
    finally:
        prometheus.stop(progress=lambda _: None)


# ---------------------------------------------------------------------- no servers needed


def local_settings(tmp_path: Path, **overrides: object) -> Settings:
    kafka_port, controller_port, redis_port = free_ports(3)
    values: dict[str, object] = {
        "kafka_bootstrap": None,
        "redis_url": None,
        "kafka_port": kafka_port,
        "kafka_controller_port": controller_port,
        "redis_port": redis_port,
        "state_dir": tmp_path / "state",
        "kafka_libs": KAFKA_LIBS,
    }
    values.update(overrides)
    return Settings.model_validate(values)


def test_down_never_kills_a_foreign_pid(tmp_path: Path) -> None:
    """A pid file pointing at some other process (stale file, reused pid) is dropped, and
    the process is left alone."""
    settings = local_settings(tmp_path)
    settings.state_dir.mkdir(parents=True)
    foreign = subprocess.Popen(["sleep", "60"])
    try:
        for name in ("kafka", "redis"):
            (settings.state_dir / f"{name}.pid").write_text(f"{foreign.pid}\n")
        statuses = Stack(settings).down(progress=lambda _: None)
        assert {s.state for s in statuses} == {"stopped"}
        assert foreign.poll() is None, "down() killed a process it did not start"
        assert not list(settings.state_dir.glob("*.pid"))
    finally:
        foreign.kill()
        foreign.wait()


def test_port_taken_by_someone_else_names_the_setting(tmp_path: Path) -> None:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server not installed")
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        settings = local_settings(tmp_path, redis_port=port)
        with pytest.raises(StackError, match=rf"port {port}.*TAILOR_REDIS_PORT"):
            Stack(settings).up(progress=lambda _: None)
    assert not list(settings.state_dir.glob("*.pid")), "nothing may start when a port is taken"


@pytest.mark.parametrize(
    ("missing", "present", "hint"),
    [
        ("java", "redis-server", "apt-get install openjdk"),
        ("redis-server", "java", "apt-get install redis-server"),
    ],
    ids=["java", "redis-server"],
)
def test_missing_binary_says_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, missing: str, present: str, hint: str
) -> None:
    """Only `present` is on PATH: `up` must name the fix for `missing` and start nothing."""
    real = shutil.which(present)
    if real is None:
        pytest.skip(f"{present} not installed")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / present).symlink_to(real)
    monkeypatch.setenv("PATH", str(bin_dir))
    settings = local_settings(tmp_path)
    with pytest.raises(StackError, match=hint):
        Stack(settings).up(progress=lambda _: None)
    assert not list(settings.state_dir.glob("*.pid"))
