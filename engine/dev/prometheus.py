"""The local Prometheus: Debian's ``prometheus`` on loopback, scraping the API and every worker.

Its config is generated from the targets it is given (the API's ``/metrics`` and each
worker's, on the worker's web port) into ``state_dir/prometheus/prometheus.yml`` (JSON, which
is YAML), scraped every ``SCRAPE_EVERY_S`` so the demo's charts and the dashboard's queries
have data within seconds. Its time-series database is ``state_dir/prometheus/data`` (kept
``RETENTION``), its output goes to ``state_dir/logs/prometheus.log``, and "ready" means
``/-/ready`` answers 200. It runs detached like the stack's servers (pid file, identity read
from ``/proc``: `engine.dev.servers`), so `stop` only ever signals the process `start` launched.
With ``TAILOR_PROMETHEUS_URL`` set, that server is used and none is started.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from config.settings import Settings
from engine.dev.servers import (
    Server,
    StackError,
    lock,
    our_pid,
    require_free_port,
    spawn,
    terminate,
    wait_ready,
)

__all__ = [
    "PROMETHEUS_READY_TIMEOUT_S",
    "SCRAPE_EVERY_S",
    "LocalPrometheus",
    "require_prometheus",
    "scrape_config",
    "target",
]

PROMETHEUS_READY_TIMEOUT_S = 30.0
SCRAPE_EVERY_S = 2  # short, for the demo and the tests; a production Prometheus uses 15 s
RETENTION = "2d"


def require_prometheus() -> str:
    binary = shutil.which("prometheus")
    if binary is None:
        raise StackError(
            "prometheus was not found on PATH. Install it with 'sudo apt-get install "
            "prometheus' (make setup does, as root), or set TAILOR_PROMETHEUS_URL to an "
            "existing Prometheus (http://host:port) that scrapes the API and the workers."
        )
    return binary


def target(host: str, port: int) -> str:
    """Where to scrape a process listening on `host`: every interface is reached on loopback.

    >>> target("0.0.0.0", 6066), target("10.0.0.5", 8080), target("::1", 8080)
    ('127.0.0.1:6066', '10.0.0.5:8080', '[::1]:8080')
    """
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def scrape_config(
    api: Sequence[str], workers: Sequence[str], every_s: int = SCRAPE_EVERY_S
) -> dict[str, Any]:
    """Prometheus's configuration: the API's and every worker's /metrics, every `every_s`.

    >>> config = scrape_config(["127.0.0.1:8080"], ["127.0.0.1:6066", "127.0.0.1:6067"])
    >>> config["global"]["scrape_interval"]
    '2s'
    >>> [(job["job_name"], job["static_configs"][0]["targets"]) for job in config["scrape_configs"]]
    [('tailor-api', ['127.0.0.1:8080']), ('tailor-worker', ['127.0.0.1:6066', '127.0.0.1:6067'])]
    """
    every = f"{every_s}s"
    jobs = [("tailor-api", api), ("tailor-worker", workers)]
    return {
        "global": {"scrape_interval": every, "scrape_timeout": every, "evaluation_interval": every},
        "scrape_configs": [
            {"job_name": name, "metrics_path": "/metrics", "static_configs": [{"targets": list(t)}]}
            for name, t in jobs
            if t
        ],
    }


class LocalPrometheus:
    """The Prometheus `start` launches from this state dir: its files, its command, its probe."""

    def __init__(self, settings: Settings, state_dir: Path, logs_dir: Path) -> None:
        self.settings = settings
        self.state_dir = state_dir
        self.logs_dir = logs_dir
        self.dir = state_dir / "prometheus"
        self.config = self.dir / "prometheus.yml"
        self.log = logs_dir / "prometheus.log"
        self.server = Server(
            "prometheus",
            self.dir,
            "prometheus",
            state_dir / "prometheus.pid",
            settings.prometheus_port,
            (self.log,),
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.settings.prometheus_port}"

    def start(
        self,
        api: Sequence[str],
        workers: Sequence[str],
        *,
        progress: Callable[[str], None] = print,
    ) -> int:
        """Scrape `api` and `workers` (host:port each) and return once Prometheus is ready.

        A Prometheus this state dir started before (a demo that was killed) is kept, with
        its data, and reloads the new targets (SIGHUP); otherwise one is launched, and
        stopped again if it does not become ready.
        """
        self.dir.mkdir(parents=True, exist_ok=True)
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        with lock(self.state_dir):
            pid = our_pid(self.server)
            if pid is None:
                binary = require_prometheus()
                require_free_port(
                    self.settings.prometheus_port, "TAILOR_PROMETHEUS_PORT", "Prometheus"
                )
            self._write_config(api, workers)
            if pid is not None:
                os.kill(pid, signal.SIGHUP)
                progress(f"Prometheus already running on {self.url} (pid {pid}): reloaded")
                return pid
            progress(f"Starting Prometheus on {self.url} (log: {self.log})")
            pid = spawn(self.server, self._command(binary), self.log)
            try:
                wait_ready(self.server, pid, self.probe, PROMETHEUS_READY_TIMEOUT_S)
            except BaseException:
                terminate(self.server, pid)
                raise
            progress(f"Prometheus ready on {self.url} (pid {pid})")
            return pid

    def stop(self, *, progress: Callable[[str], None] = print) -> None:
        """Stop the Prometheus `start` launched (SIGTERM, then SIGKILL); its data stays."""
        if not self.state_dir.exists():
            return
        with lock(self.state_dir):
            pid = our_pid(self.server)
            if pid is not None:
                progress(f"Stopping prometheus (pid {pid})")
                terminate(self.server, pid)
                progress("Stopped prometheus")

    def running_pid(self) -> int | None:
        return our_pid(self.server)

    def probe(self, timeout: float) -> None:
        with urllib.request.urlopen(f"{self.url}/-/ready", timeout=timeout) as response:
            if response.status != 200:
                raise StackError(f"Prometheus /-/ready answered {response.status}")

    def _write_config(self, api: Sequence[str], workers: Sequence[str]) -> None:
        tmp = self.config.with_suffix(".yml.tmp")
        tmp.write_text(json.dumps(scrape_config(api, workers), indent=2) + "\n")
        tmp.replace(self.config)

    def _command(self, binary: str) -> list[str]:
        return [
            binary,
            f"--config.file={self.config}",
            f"--storage.tsdb.path={self.dir / 'data'}",
            f"--storage.tsdb.retention.time={RETENTION}",
            f"--web.listen-address=127.0.0.1:{self.settings.prometheus_port}",
        ]
