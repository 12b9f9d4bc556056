"""Every setting Tailor reads, in one typed object, read once at start.

Each field is set by the environment variable ``TAILOR_<NAME>`` (for example
``TAILOR_API_PORT=9000``). Bad values fail at start with a message naming the
variable, what it expected and what it got.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from config.api_keys import ApiKey, parse_keys
from models.policy import PolicyConfig

SECRET_SETTINGS = {"api_keys", "token_secret"}  # never echoed in an error
MIN_TOKEN_SECRET = 32  # characters: HS256 wants a key of at least its 256 bits


class SettingsError(RuntimeError):
    """A `TAILOR_*` variable holds a value Tailor cannot use."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TAILOR_", frozen=True, extra="ignore")

    env: Literal["development", "production"] = Field(
        "development",
        description="production: the API refuses to start without API keys, and customer "
        "offers and boards need a key or a customer token",
    )
    app_id: str = Field("tailor", description="Faust app id: consumer group and table prefix")

    # Servers. When a URL/bootstrap is given, Tailor uses that server and starts none.
    kafka_bootstrap: str | None = Field(None, description="host:port of an existing broker")
    redis_url: str | None = Field(None, description="redis://host:port/db of an existing server")
    kafka_port: int = Field(9092, ge=1, le=65535)
    kafka_controller_port: int = Field(9093, ge=1, le=65535)
    redis_port: int = Field(6379, ge=1, le=65535)
    prometheus_url: str | None = Field(
        None, description="http://host:port of an existing Prometheus the API's /ops reads"
    )
    prometheus_port: int = Field(
        9090, ge=1, le=65535, description="the demo's Prometheus (loopback), when no URL is given"
    )
    state_dir: Path = Field(Path(".tailor"), description="pids, logs and data of the local stack")
    kafka_libs: Path = Field(Path(".cache/kafka/libs"), description="Kafka jars from Maven")

    # Topics.
    interactions_partitions: int = Field(8, ge=1, le=1024)
    store_partitions: int = Field(4, ge=1, le=1024)
    replication_factor: int = Field(
        1, ge=1, le=16, description="replicas of every topic Tailor creates (production: 3)"
    )
    min_insync_replicas: int = Field(
        1, ge=1, le=16, description="replicas that must have a write (production: 2)"
    )

    # Processes.
    api_host: str = "127.0.0.1"
    api_port: int = Field(8080, ge=1, le=65535)
    worker_web_port: int = Field(6066, ge=1, le=65535, description="worker /metrics")
    worker_web_bind: str = Field(
        "127.0.0.1",
        description="IP address the worker's /metrics and /ready listen on; 0.0.0.0: every "
        "interface (the container image sets it, so it can be scraped and probed)",
    )
    api_keys: Annotated[tuple[ApiKey, ...], NoDecode] = Field(
        (),
        description="comma-separated bearer keys, each KEY (every scope) or KEY:scope+scope "
        "(ingest, read, admin, store-device:<store_id>); none: keys off",
    )
    token_secret: SecretStr | None = Field(
        None,
        description="secret signing customer tokens (`tailor token customer`), at least "
        f"{MIN_TOKEN_SECRET} characters; none: customer reads in production need a key",
    )
    cors_origins: Annotated[tuple[str, ...], NoDecode] = Field(
        (), description="comma-separated origins web pages may call the API from; * for any"
    )
    max_body_bytes: int = Field(1_048_576, ge=1024, description="largest request body")
    batch_size: int = Field(500, ge=1, le=100_000, description="events per agent batch")
    batch_within_s: float = Field(0.05, gt=0, le=10, description="max wait to fill a batch")
    live_customers: int = Field(
        100_000, ge=0, description="customer models a worker keeps decoded in memory (LRU)"
    )
    produce_timeout_s: float = Field(
        2.0, gt=0, le=120, description="API: longest wait for Kafka before answering 503"
    )

    # Faults. A worker that dies is replaced within about `session_timeout_s`.
    worker_id: str | None = Field(
        None,
        description="stable id of this worker (static group membership): a restart "
        "with the same id takes its partitions back without a rebalance",
    )
    session_timeout_s: float = Field(
        6.0, ge=1, le=300, description="a worker silent this long loses its partitions"
    )
    table_store: Literal["rocksdb", "memory"] = Field(
        "rocksdb", description="worker tables: rocksdb (local disk + changelog) or memory"
    )
    standby_replicas: int = Field(
        0,
        ge=0,
        le=8,
        description="standby copies of each table partition on other workers (0: a "
        "takeover recovers from the changelog; Faust's standbys lost answers in our tests)",
    )
    ready_max_lag: int = Field(
        50_000, ge=1, description="worker /ready: not ready while more records wait unprocessed"
    )
    retry_max_s: float = Field(
        5.0,
        gt=0,
        le=60,
        description="longest pause between retries of a failed Redis or Kafka write",
    )
    max_future_skew_s: float = Field(
        300.0, ge=0, description="events stamped later than arrival + this are refused"
    )
    max_event_age_s: float = Field(
        30 * 86400.0, gt=0, description="events stamped earlier than arrival - this are refused"
    )
    dead_letter_max_bytes: int = Field(
        262_144, ge=1024, le=900_000, description="larger refused payloads are truncated"
    )
    session_ttl_s: float | None = Field(
        30 * 86400.0, gt=0, description="idle anonymous sessions are forgotten after this"
    )
    customer_ttl_s: float | None = Field(
        None, gt=0, description="idle known customers are forgotten after this (default: never)"
    )

    # Decisions.
    catalog: Path | None = Field(None, description="offer catalog TOML; default: drive-thru menu")
    offers_per_decision: int = Field(6, ge=1, le=50)
    explore_rate: float = Field(0.05, ge=0, le=1)
    value: Literal["price", "margin", "yes"] = Field(
        "price", description="what a yes is worth: price (revenue), margin (profit), yes (clicks)"
    )
    holdout_share: float = Field(
        0.1, ge=0, le=1, description="share of customers served the control policy (trending)"
    )
    frequency_cap: int = Field(3, ge=1, description="shown this often without a yes: rest it")
    answer_window_s: float = Field(
        900.0, gt=0, description="an impression with no yes this long after is a no"
    )
    trending_half_life_s: float = Field(3600.0, gt=0)
    offers_ttl_s: int = Field(7 * 86400, ge=1)
    board_ttl_s: int = Field(86400, ge=1)
    lane_personal_s: float = Field(
        90.0,
        gt=0,
        le=3600,
        description="a loyalty scan shows its customer's offers on the lane's board this long",
    )
    seed: int = 42

    @field_validator("api_keys", mode="before")
    @classmethod
    def _api_keys(cls, value: object) -> tuple[ApiKey, ...]:
        return parse_keys(value)

    @field_validator("token_secret")
    @classmethod
    def _long_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_TOKEN_SECRET:
            raise ValueError(
                f"at least {MIN_TOKEN_SECRET} characters (try: python -c 'import secrets; "
                "print(secrets.token_urlsafe(32))')"
            )
        return value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("worker_web_bind")
    @classmethod
    def _ip_address(cls, value: str) -> str:
        """Checked at start, not when the worker's web server first fails to bind."""
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            raise ValueError("an IP address to listen on, like 127.0.0.1 or 0.0.0.0") from None

    @field_validator("prometheus_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("an http:// or https:// URL, like http://prometheus:9090")
        return value

    @model_validator(mode="after")
    def _ports_differ(self) -> Settings:
        if self.kafka_port == self.kafka_controller_port:
            raise ValueError("kafka_port and kafka_controller_port must differ")
        return self

    def as_env(self) -> dict[str, str]:
        """These settings as `TAILOR_*` variables, to hand to a child process."""
        env = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, tuple):
                value = ",".join(v.entry() if isinstance(v, ApiKey) else str(v) for v in value)
            elif isinstance(value, SecretStr):
                value = value.get_secret_value()
            if value is not None:
                env[f"TAILOR_{name.upper()}"] = str(value)
        return env

    @property
    def embedded_kafka(self) -> bool:
        return self.kafka_bootstrap is None

    @property
    def embedded_redis(self) -> bool:
        return self.redis_url is None

    @property
    def kafka(self) -> str:
        return self.kafka_bootstrap or f"127.0.0.1:{self.kafka_port}"

    @property
    def redis(self) -> str:
        return self.redis_url or f"redis://127.0.0.1:{self.redis_port}/0"

    @property
    def embedded_prometheus(self) -> bool:
        return self.prometheus_url is None

    @property
    def prometheus(self) -> str:
        return (self.prometheus_url or f"http://127.0.0.1:{self.prometheus_port}").rstrip("/")

    @property
    def policy(self) -> PolicyConfig:
        """The rules decisions follow, the same in the worker and at request time."""
        return PolicyConfig(
            k=self.offers_per_decision,
            explore_rate=self.explore_rate,
            value=self.value,
            frequency_cap=self.frequency_cap,
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings; raises `SettingsError` naming each bad variable."""
    try:
        return Settings()
    except ValidationError as exc:
        lines = [
            f"  TAILOR_{'_'.join(str(p) for p in err['loc']).upper() or '?'}: {err['msg']}"
            + ("" if set(err["loc"][:1]) & SECRET_SETTINGS else f" (got {err.get('input')!r})")
            for err in exc.errors()
        ]
        raise SettingsError("invalid configuration:\n" + "\n".join(lines)) from None
