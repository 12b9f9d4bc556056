"""The local Redis: Debian's ``redis-server`` on loopback, with AOF persistence.

Its working directory and data (the append-only file, fsynced every second, in
``state_dir/redis/appendonlydir``) are ``state_dir/redis``, so decisions survive a restart
of Redis (an acknowledged write survives even a SIGKILL; at most the last second is lost
only if the machine itself goes down). Output goes to ``state_dir/logs``; "ready" means
it answers PING, which Redis only does once the AOF is loaded.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import redis

from config.settings import Settings
from engine.dev.servers import EXTERNAL_CHECK_TIMEOUT_S, Server, StackError, describe, spawn

__all__ = ["REDIS_READY_TIMEOUT_S", "LocalRedis", "mask_url", "require_redis_server"]

REDIS_READY_TIMEOUT_S = 15.0


def require_redis_server() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        raise StackError(
            "redis-server was not found on PATH. Install it with "
            "'sudo apt-get install redis-server', or set TAILOR_REDIS_URL to an existing "
            "server (redis://host:port/0)."
        )
    return binary


class LocalRedis:
    """The Redis `up` starts from this state dir: its files, its command, its probe."""

    def __init__(self, settings: Settings, state_dir: Path, logs_dir: Path) -> None:
        self.settings = settings
        self.logs_dir = logs_dir
        self.dir = state_dir / "redis"
        self.log = logs_dir / "redis.log"
        self.server = Server(
            "redis",
            self.dir,
            "redis-server",
            state_dir / "redis.pid",
            settings.redis_port,
            (self.log,),
        )

    def spawn(self, binary: str) -> int:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        cmd = [
            binary,
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.settings.redis_port),
            "--save",
            "",  # no RDB snapshots: the AOF is the one copy on disk
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--dir",
            str(self.dir),
            "--daemonize",
            "no",
            "--logfile",
            "",
        ]
        return spawn(self.server, cmd, self.log)

    def ping(self, timeout: float) -> None:
        client = redis.Redis.from_url(
            self.settings.redis, socket_connect_timeout=timeout, socket_timeout=timeout
        )
        try:
            client.ping()
        finally:
            client.close()

    def check_external(self) -> None:
        try:
            self.ping(EXTERNAL_CHECK_TIMEOUT_S)
        except Exception as exc:
            raise StackError(
                f"the external Redis at {mask_url(self.settings.redis)} (TAILOR_REDIS_URL) does "
                f"not answer: {describe(exc)}"
            ) from exc


def mask_url(url: str) -> str:
    """The URL without its password, for printing.

    >>> mask_url("redis://:s3cret@cache:6380/0")
    'redis://:***@cache:6380/0'
    >>> mask_url("redis://127.0.0.1:6379/0")
    'redis://127.0.0.1:6379/0'
    """
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))
