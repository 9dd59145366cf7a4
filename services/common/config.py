"""Configuration of every service, read from the environment of docs/design.md §3 in one place.

A bad value stops the service with one line that names the variable, never a traceback:
ops people read that line in `docker logs` and must know which `.env` entry to fix.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable, Mapping
from urllib.parse import quote, urlsplit


class ConfigError(ValueError):
    """A variable is missing or malformed. `str()` is the one line to show the user."""

    def __init__(self, variable: str, problem: str):
        self.variable = variable
        self.problem = problem
        super().__init__(f"{variable}: {problem}")


# Variables whose values are secrets: the logging filter redacts them wherever they appear.
SECRET_VARIABLES = (
    "DB_PASSWORD",
    "RABBITMQ_PASSWORD",
    "REDIS_PASSWORD",
    "RASA_X_TOKEN",
    "RASA_TOKEN",
    "JWT_SECRET",
    "PASSWORD_SALT",
    "RASA_X_PASSWORD",
)


def _text(env: Mapping[str, str], name: str, default: str | None) -> str:
    value = env.get(name)
    if value is None or value == "":
        if default is None:
            raise ConfigError(name, "is not set")
        return default
    if any(ch in value for ch in "\r\n\x00"):
        raise ConfigError(name, "must be a single line")
    return value


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        port = int(raw)
    except ValueError:
        raise ConfigError(name, f"must be a port number, got {raw!r}") from None
    if not 0 < port < 65536:
        raise ConfigError(name, f"must be between 1 and 65535, got {port}")
    return port


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(name, f"must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(name, f"must be at least {minimum}, got {value}")
    return value


def _url(env: Mapping[str, str], name: str, default: str) -> str:
    value = _text(env, name, default)
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(name, f"must be an http(s) URL, got {value!r}")
    try:
        parts.port
    except ValueError:
        raise ConfigError(name, f"has a bad port in {value!r}") from None
    return value.rstrip("/")


def _hostname(env: Mapping[str, str], name: str, default: str) -> str:
    value = _text(env, name, default)
    if "/" in value or " " in value or ":" in value.strip("[]"):
        # A URL or host:port pasted where a bare host name belongs is the usual mistake.
        raise ConfigError(name, f"must be a host name without scheme or port, got {value!r}")
    return value


@dataclass(frozen=True)
class DatabaseSettings:
    host: str
    port: int
    user: str
    password: str = field(repr=False)
    database: str
    tracker_database: str

    def url(self, database: str | None = None) -> str:
        """SQLAlchemy URL; the password is quoted so any generated secret works."""
        return (
            f"postgresql+psycopg2://{quote(self.user, safe='')}:{quote(self.password, safe='')}"
            f"@{self.host}:{self.port}/{quote(database or self.database, safe='')}"
        )


@dataclass(frozen=True)
class RabbitSettings:
    host: str
    port: int
    username: str
    password: str = field(repr=False)
    vhost: str
    queue: str
    exchange: str


@dataclass(frozen=True)
class RedisSettings:
    host: str
    port: int
    password: str = field(repr=False)
    db: int
    lock_db: int


@dataclass(frozen=True)
class Settings:
    db: DatabaseSettings
    rabbit: RabbitSettings
    redis: RedisSettings
    rasa_x_token: str = field(repr=False)
    rasa_token: str = field(repr=False)
    jwt_secret: str = field(repr=False)
    password_salt: str = field(repr=False)
    rasa_x_username: str
    rasa_x_password: str = field(repr=False)
    rasa_x_host: str
    rasa_production_host: str
    rasa_worker_host: str
    jwt_private_key_path: str | None
    jwt_public_key_path: str | None
    self_port: int
    model_dir: str

    def secrets(self) -> list[str]:
        """Every secret value, for redaction in logs."""
        values = [
            self.db.password,
            self.rabbit.password,
            self.redis.password,
            self.rasa_x_token,
            self.rasa_token,
            self.jwt_secret,
            self.password_salt,
            self.rasa_x_password,
        ]
        return [v for v in values if v]


def database_settings(env: Mapping[str, str] | None = None) -> DatabaseSettings:
    """Only the database part: what `migrate` and the migrator need."""
    env = os.environ if env is None else env
    return DatabaseSettings(
        host=_hostname(env, "DB_HOST", "db"),
        port=_port(env, "DB_PORT", 5432),
        user=_text(env, "DB_USER", "admin"),
        # No default: an empty password is a default password.
        password=_text(env, "DB_PASSWORD", None),
        database=_text(env, "DB_DATABASE", "rasa"),
        tracker_database=_text(env, "DB_TRACKER_DATABASE", "tracker"),
    )


def rabbit_settings(env: Mapping[str, str] | None = None) -> RabbitSettings:
    env = os.environ if env is None else env
    return RabbitSettings(
        host=_hostname(env, "RABBITMQ_HOST", "rabbit"),
        port=_port(env, "RABBITMQ_PORT", 5672),
        username=_text(env, "RABBITMQ_USERNAME", "user"),
        password=_text(env, "RABBITMQ_PASSWORD", None),
        vhost=_text(env, "RABBITMQ_VHOST", "/"),
        queue=_text(env, "RABBITMQ_QUEUE", "rasa_production_events"),
        exchange=_text(env, "RABBITMQ_EXCHANGE", "rasa-exchange"),
    )


def redis_settings(env: Mapping[str, str] | None = None) -> RedisSettings:
    env = os.environ if env is None else env
    return RedisSettings(
        host=_hostname(env, "REDIS_HOST", "redis"),
        port=_port(env, "REDIS_PORT", 6379),
        password=_text(env, "REDIS_PASSWORD", None),
        db=_int(env, "REDIS_DB", 2),
        lock_db=_int(env, "REDIS_LOCK_DB", 1),
    )


def self_port(default: int, env: Mapping[str, str] | None = None) -> int:
    return _port(os.environ if env is None else env, "SELF_PORT", default)


def event_service_workers(env: Mapping[str, str] | None = None) -> int:
    """EVENT_SERVICE_WORKERS: consumer processes of one event service. By default one per CPU
    it may run on, at most 4: each process is bound by its own interpreter lock, and beyond a
    few the single PostgreSQL is the limit, not the consumers."""
    env = os.environ if env is None else env
    default = min(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1, 4)
    return _int(env, "EVENT_SERVICE_WORKERS", default, minimum=1)


def load_settings(env: Mapping[str, str] | None = None, self_port: int = 0) -> Settings:
    """All of §3. Raises ConfigError naming the first bad variable."""
    env = os.environ if env is None else env
    return Settings(
        db=database_settings(env),
        rabbit=rabbit_settings(env),
        redis=redis_settings(env),
        rasa_x_token=_text(env, "RASA_X_TOKEN", None),
        rasa_token=_text(env, "RASA_TOKEN", None),
        jwt_secret=_text(env, "JWT_SECRET", None),
        password_salt=_text(env, "PASSWORD_SALT", None),
        rasa_x_username=_text(env, "RASA_X_USERNAME", "admin"),
        rasa_x_password=_text(env, "RASA_X_PASSWORD", None),
        rasa_x_host=_url(env, "RASA_X_HOST", "http://rasa-x:5002"),
        rasa_production_host=_url(env, "RASA_PRODUCTION_HOST", "http://rasa-production:5005"),
        rasa_worker_host=_url(env, "RASA_WORKER_HOST", "http://rasa-worker:5005"),
        jwt_private_key_path=env.get("JWT_PRIVATE_KEY_PATH") or None,
        jwt_public_key_path=env.get("JWT_PUBLIC_KEY_PATH") or None,
        self_port=_port(env, "SELF_PORT", self_port),
        model_dir=_text(env, "RASA_MODEL_DIR", "/app/models"),
    )


def load_or_exit(loader: Callable[..., object], *args, **kwargs):
    """Run a settings loader; on ConfigError print its one line to stderr and exit 2."""
    try:
        return loader(*args, **kwargs)
    except ConfigError as exc:
        import sys

        print(f"configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
