import os

import pytest

from services.common.config import (
    GUNICORN,
    SECRET_VARIABLES,
    SERVICE_ENVIRONMENT,
    ConfigError,
    database_settings,
    event_service_workers,
    load_settings,
    rabbit_settings,
    self_port,
)

# The secrets the backend reads: all of the installation's but the Rasa servers' JWT secret.
SECRETS = {
    "RASA_TOKEN": "rasa-token",
    "DB_PASSWORD": "pg-secret",
    "RABBITMQ_PASSWORD": "mq-secret",
    "REDIS_PASSWORD": "redis-secret",
    "RASA_X_TOKEN": "rx-token",
    "PASSWORD_SALT": "salt-secret",
    "RASA_X_PASSWORD": "admin-secret",
}


def test_defaults_follow_the_contract():
    settings = load_settings(SECRETS, self_port=5002)
    assert (settings.db.host, settings.db.port, settings.db.user, settings.db.database) == ("db", 5432, "admin", "rasa")
    assert settings.db.tracker_database == "tracker"
    assert (settings.rabbit.host, settings.rabbit.port, settings.rabbit.username) == ("rabbit", 5672, "user")
    assert (settings.rabbit.queue, settings.rabbit.exchange, settings.rabbit.vhost) == (
        "rasa_production_events", "rasa-exchange", "/",
    )
    assert (settings.redis.db, settings.redis.lock_db) == (2, 1)
    assert settings.rasa_x_host == "http://rasa-x:5002"
    assert settings.rasa_production_host == "http://rasa-production:5005"
    assert settings.rasa_action_url == "http://app:5055/webhook"
    assert settings.self_port == 5002
    assert settings.model_dir == "/app/models"


@pytest.mark.parametrize(
    "variable, value, expected",
    [
        ("DB_PORT", "abc", "DB_PORT: must be a port number, got 'abc'"),
        ("DB_PORT", "70000", "DB_PORT: must be between 1 and 65535, got 70000"),
        ("DB_HOST", "postgresql://db:5432", "DB_HOST: must be a host name without scheme or port"),
        ("REDIS_DB", "two", "REDIS_DB: must be a whole number, got 'two'"),
        ("RASA_X_HOST", "rasa-x:5002", "RASA_X_HOST: must be an http(s) URL"),
        ("RASA_PRODUCTION_HOST", "http://rasa:notaport", "RASA_PRODUCTION_HOST: has a bad port"),
        ("SELF_PORT", "-1", "SELF_PORT: must be between 1 and 65535"),
        ("RASA_X_USERNAME", "ad\nmin", "RASA_X_USERNAME: must be a single line"),
    ],
)
def test_a_malformed_value_names_its_variable(variable, value, expected):
    with pytest.raises(ConfigError) as error:
        load_settings({**SECRETS, variable: value})
    assert error.value.variable == variable
    assert str(error.value).startswith(expected)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("secret", sorted(SECRETS))
def test_no_secret_has_a_default(secret):
    env = {k: v for k, v in SECRETS.items() if k != secret}
    with pytest.raises(ConfigError, match=f"^{secret}: is not set$"):
        load_settings(env)


def test_empty_counts_as_missing():
    with pytest.raises(ConfigError, match="^DB_PASSWORD: is not set$"):
        database_settings({"DB_PASSWORD": ""})


def test_database_url_quotes_any_generated_password():
    db = database_settings({"DB_PASSWORD": "a/b@c:d%e?f#", "DB_HOST": "127.0.0.1"})
    import sqlalchemy as sa

    url = sa.engine.make_url(db.url())
    assert url.password == "a/b@c:d%e?f#"
    assert (url.host, url.port, url.database) == ("127.0.0.1", 5432, "rasa")


def test_repr_never_shows_a_secret():
    text = repr(load_settings(SECRETS)) + repr(rabbit_settings(SECRETS))
    for value in SECRETS.values():
        assert value not in text


def test_event_service_workers_default_to_the_usable_cpus_up_to_four():
    assert event_service_workers({}) == min(len(os.sched_getaffinity(0)), 4)
    assert event_service_workers({"EVENT_SERVICE_WORKERS": "7"}) == 7
    with pytest.raises(ConfigError, match="^EVENT_SERVICE_WORKERS: must be at least 1, got 0$"):
        event_service_workers({"EVENT_SERVICE_WORKERS": "0"})
    with pytest.raises(ConfigError, match="^EVENT_SERVICE_WORKERS: must be a whole number, got 'two'$"):
        event_service_workers({"EVENT_SERVICE_WORKERS": "two"})


class Recording(dict):
    """An environment that notes every variable a loader looks up."""

    def __init__(self, *args):
        super().__init__(*args)
        self.read = set()

    def get(self, name, default=None):
        self.read.add(name)
        return super().get(name, default)

    def __getitem__(self, name):
        self.read.add(name)
        return super().__getitem__(name)


# The loaders each service's __main__ calls.
LOADERS = {
    "db-migration": lambda env: (database_settings(env), self_port(8000, env)),
    "event-service": lambda env: (database_settings(env), rabbit_settings(env), self_port(5673, env),
                                  event_service_workers(env)),
    "rasa-x": lambda env: load_settings(env, self_port=5002),
}


@pytest.mark.parametrize("service", sorted(SERVICE_ENVIRONMENT))
def test_a_service_reads_exactly_its_declared_environment(service):
    env = Recording(SECRETS)
    LOADERS[service](env)
    # GUNICORN_* are read by the backend's entry point itself, not by a loader of this module.
    declared = set(SERVICE_ENVIRONMENT[service]) - set(GUNICORN)
    assert env.read == declared


def test_only_the_backend_holds_the_admin_password_and_the_tokens():
    held = {service: set(names) & set(SECRET_VARIABLES) for service, names in SERVICE_ENVIRONMENT.items()}
    assert held == {
        "db-migration": {"DB_PASSWORD"},
        "event-service": {"DB_PASSWORD", "RABBITMQ_PASSWORD"},
        "rasa-x": {"DB_PASSWORD", "RABBITMQ_PASSWORD", "REDIS_PASSWORD", "RASA_X_TOKEN", "RASA_TOKEN",
                   "PASSWORD_SALT", "RASA_X_PASSWORD"},
    }
