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
class Variable:
    """One variable of docs/design.md §3: its name, how its value is checked, its default."""

    name: str
    parse: Callable[[Mapping[str, str], str, object], object]
    default: object = None  # None: no default, so `_text` and the like refuse an unset variable

    def read(self, env: Mapping[str, str]):
        return self.parse(_with_secret_file(env, self.name), self.name, self.default)


def _with_secret_file(env: Mapping[str, str], name: str) -> Mapping[str, str]:
    """A secret NAME unset while NAME_FILE names a file (a Docker Swarm secret in /run/secrets):
    the file's content is its value, so the secret is never in the container's environment."""
    if name not in SECRET_VARIABLES or env.get(name):
        return env
    path = env.get(f"{name}_FILE")
    if not path:
        return env
    try:
        with open(path, encoding="utf-8") as file:
            value = file.read().rstrip("\n")
    except OSError as exc:
        raise ConfigError(f"{name}_FILE", f"cannot read {path}: {exc.strerror}") from None
    return {**env, name: value}


def _optional(env: Mapping[str, str], name: str, default: None) -> str | None:
    """A variable that may be unset: then None."""
    return env.get(name) or None


# Each group maps the fields of its settings class to the variable they come from. These groups,
# and SERVICE_ENVIRONMENT built from them, are the one list of what each service reads.
DATABASE = {
    "host": Variable("DB_HOST", _hostname, "db"),
    "port": Variable("DB_PORT", _port, 5432),
    "user": Variable("DB_USER", _text, "admin"),
    # No default: an empty password is a default password.
    "password": Variable("DB_PASSWORD", _text),
    "database": Variable("DB_DATABASE", _text, "rasa"),
    "tracker_database": Variable("DB_TRACKER_DATABASE", _text, "tracker"),
}
RABBIT = {
    "host": Variable("RABBITMQ_HOST", _hostname, "rabbit"),
    "port": Variable("RABBITMQ_PORT", _port, 5672),
    "username": Variable("RABBITMQ_USERNAME", _text, "user"),
    "password": Variable("RABBITMQ_PASSWORD", _text),
    "vhost": Variable("RABBITMQ_VHOST", _text, "/"),
    "queue": Variable("RABBITMQ_QUEUE", _text, "rasa_production_events"),
    "exchange": Variable("RABBITMQ_EXCHANGE", _text, "rasa-exchange"),
}
REDIS = {
    "host": Variable("REDIS_HOST", _hostname, "redis"),
    "port": Variable("REDIS_PORT", _port, 6379),
    "password": Variable("REDIS_PASSWORD", _text),
    "db": Variable("REDIS_DB", _int, 2),
    "lock_db": Variable("REDIS_LOCK_DB", _int, 1),
}
# What only the rasa-x backend reads, besides the three groups above.
BACKEND = {
    "rasa_x_token": Variable("RASA_X_TOKEN", _text),
    "password_salt": Variable("PASSWORD_SALT", _text),
    "rasa_x_username": Variable("RASA_X_USERNAME", _text, "admin"),
    "rasa_x_password": Variable("RASA_X_PASSWORD", _text),
    "rasa_x_host": Variable("RASA_X_HOST", _url, "http://rasa-x:5002"),
    "rasa_production_host": Variable("RASA_PRODUCTION_HOST", _url, "http://rasa-production:5005"),
    "rasa_worker_host": Variable("RASA_WORKER_HOST", _url, "http://rasa-worker:5005"),
    # The action server (`app`) as the Rasa servers reach it: their action_endpoint.
    "rasa_action_url": Variable("RASA_ACTION_URL", _url, "http://app:5055/webhook"),
    # rasa-x calls Rasa's HTTP API (status, training, evaluation) with ?token=RASA_TOKEN.
    "rasa_token": Variable("RASA_TOKEN", _text),
    "jwt_private_key_path": Variable("JWT_PRIVATE_KEY_PATH", _optional),
    "jwt_public_key_path": Variable("JWT_PUBLIC_KEY_PATH", _optional),
    "model_dir": Variable("RASA_MODEL_DIR", _text, "/app/models"),
}
# The port a service serves its health (and API) on; each service has its own default.
SELF_PORT = "SELF_PORT"
# EVENT_SERVICE_WORKERS: consumer processes of one event service. By default one per CPU it may
# run on, at most 4: each process is bound by its own interpreter lock, and beyond a few the
# single PostgreSQL is the limit, not the consumers.
EVENT_SERVICE_WORKERS = "EVENT_SERVICE_WORKERS"
# Live-update sockets one rasa-x worker holds, on threads beside GUNICORN_THREADS (backend/live.py).
LIVE_SOCKETS_PER_WORKER = "LIVE_SOCKETS_PER_WORKER"
# Processes and threads of the backend's gunicorn (services/backend/__main__.py reads them).
GUNICORN = ("GUNICORN_WORKERS", "GUNICORN_THREADS", LIVE_SOCKETS_PER_WORKER)
# What the Rasa servers' start script (deploy/images/rasa/start.py) puts on Rasa's command line:
# where rasa-x's runtime config is, with its token, and Rasa's own API token and JWT secret.
# Everything else Rasa reads (database, broker, Redis) comes from /api/config, not the environment.
RASA_SERVER = ("RASA_X_HOST", "RASA_X_TOKEN", "RASA_TOKEN", "JWT_SECRET")


def _names(*groups: dict[str, Variable]) -> tuple[str, ...]:
    return tuple(variable.name for group in groups for variable in group.values())


# The environment of each service of the project image, by its compose name: `render` gives each
# container exactly these variables, so no service holds a secret it does not use (the event
# service and the migrator never see the admin password or the tokens).
SERVICE_ENVIRONMENT: dict[str, tuple[str, ...]] = {
    "db-migration": _names(DATABASE) + (SELF_PORT,),
    "event-service": _names(DATABASE, RABBIT) + (SELF_PORT, EVENT_SERVICE_WORKERS),
    "rasa-x": _names(DATABASE, RABBIT, REDIS, BACKEND) + (SELF_PORT, *GUNICORN),
}


def _read(group: dict[str, Variable], env: Mapping[str, str]) -> dict[str, object]:
    return {field_name: variable.read(env) for field_name, variable in group.items()}


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
    """What the rasa-x backend reads. Not JWT_SECRET: that is the Rasa servers' own."""

    db: DatabaseSettings
    rabbit: RabbitSettings
    redis: RedisSettings
    rasa_x_token: str = field(repr=False)
    password_salt: str = field(repr=False)
    rasa_x_username: str
    rasa_x_password: str = field(repr=False)
    rasa_x_host: str
    rasa_production_host: str
    rasa_worker_host: str
    rasa_action_url: str
    rasa_token: str = field(repr=False)
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
            self.password_salt,
            self.rasa_x_password,
        ]
        return [v for v in values if v]


def database_settings(env: Mapping[str, str] | None = None) -> DatabaseSettings:
    """Only the database part: what `migrate` and the migrator need."""
    return DatabaseSettings(**_read(DATABASE, os.environ if env is None else env))


def rabbit_settings(env: Mapping[str, str] | None = None) -> RabbitSettings:
    return RabbitSettings(**_read(RABBIT, os.environ if env is None else env))


def redis_settings(env: Mapping[str, str] | None = None) -> RedisSettings:
    return RedisSettings(**_read(REDIS, os.environ if env is None else env))


def self_port(default: int, env: Mapping[str, str] | None = None) -> int:
    return _port(os.environ if env is None else env, SELF_PORT, default)


def event_service_workers(env: Mapping[str, str] | None = None) -> int:
    """EVENT_SERVICE_WORKERS, by default the usable CPUs up to 4 (see its declaration above)."""
    env = os.environ if env is None else env
    default = min(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1, 4)
    return _int(env, EVENT_SERVICE_WORKERS, default, minimum=1)


def load_settings(env: Mapping[str, str] | None = None, self_port: int = 0) -> Settings:
    """Everything the backend reads. Raises ConfigError naming the first bad variable."""
    env = os.environ if env is None else env
    return Settings(
        db=database_settings(env),
        rabbit=rabbit_settings(env),
        redis=redis_settings(env),
        **_read(BACKEND, env),
        self_port=_port(env, SELF_PORT, self_port),
    )


def load_or_exit(loader: Callable[..., object], *args, **kwargs):
    """Run a settings loader; on ConfigError print its one line to stderr and exit 2."""
    try:
        return loader(*args, **kwargs)
    except ConfigError as exc:
        import sys

        print(f"configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
