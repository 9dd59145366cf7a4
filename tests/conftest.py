"""Fixtures shared by every test tier: real PostgreSQL, RabbitMQ and Redis, each test session
in its own database / vhost / Redis db so that parallel runs and leftovers never collide.

Where the servers are comes from TEST_PG_*, TEST_RABBITMQ_*, TEST_REDIS_* (defaults: the local
servers that `.ci/run` starts). A server that is not reachable fails the test that needs it with
a message saying so: these tests are about real servers and are never silently skipped.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import uuid
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

PG_HOST = os.environ.get("TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("TEST_PG_USER", "postgres")
PG_PASSWORD = os.environ.get("TEST_PG_PASSWORD", "unused-with-trust-auth")

RABBIT_HOST = os.environ.get("TEST_RABBITMQ_HOST", "127.0.0.1")
RABBIT_PORT = int(os.environ.get("TEST_RABBITMQ_PORT", "5672"))
RABBIT_USER = os.environ.get("TEST_RABBITMQ_USERNAME", "guest")
RABBIT_PASSWORD = os.environ.get("TEST_RABBITMQ_PASSWORD", "guest")

REDIS_HOST = os.environ.get("TEST_REDIS_HOST", "127.0.0.1")
REDIS_PORT = int(os.environ.get("TEST_REDIS_PORT", "6379"))

# Real Rasa 3.6.21 event captures, kept in the repository (tests/fixtures/README.md says how).
FIXTURES_DIR = os.path.abspath(os.environ.get("RASAX_FIXTURES_DIR", os.path.join(os.path.dirname(__file__), "fixtures")))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(condition, timeout: float, what: str, interval: float = 0.1):
    """Poll `condition` until it returns something truthy (returned), or fail naming `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def _admin_engine() -> sa.engine.Engine:
    url = sa.engine.URL.create(
        "postgresql+psycopg2", username=PG_USER, password=PG_PASSWORD, host=PG_HOST, port=PG_PORT, database="postgres"
    )
    return sa.create_engine(url, isolation_level="AUTOCOMMIT")


def create_database(prefix: str = "rasax_test") -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    engine = _admin_engine()
    try:
        with engine.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        pytest.fail(f"PostgreSQL at {PG_HOST}:{PG_PORT} is not reachable ({exc.orig}); start it or run .ci/run")
    finally:
        engine.dispose()
    return name


def drop_database(name: str) -> None:
    engine = _admin_engine()
    with engine.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


@contextmanager
def migrated_databases(prefix: str):
    """new() → (name, engine) of another new database at the head revision; all dropped on exit."""
    from services.common.config import database_settings
    from services.common.db import create_engine
    from services.db_migration.migrator import COMPLETED, Migrator

    made = []

    def new():
        name = create_database(prefix)
        engine = create_engine(database_settings(db_env(name)))
        made.append((name, engine))
        assert Migrator(engine).run().status == COMPLETED
        return name, engine

    try:
        yield new
    finally:
        for name, engine in made:
            engine.dispose()
            drop_database(name)


def db_env(database: str) -> dict[str, str]:
    """The DB_* variables of docs/design.md §3 pointing at a test database."""
    return {
        "DB_HOST": PG_HOST,
        "DB_PORT": str(PG_PORT),
        "DB_USER": PG_USER,
        "DB_PASSWORD": PG_PASSWORD,
        "DB_DATABASE": database,
    }


@pytest.fixture
def empty_database():
    """A new, empty PostgreSQL database for one test; dropped afterwards. Yields its name."""
    name = create_database()
    yield name
    drop_database(name)


@pytest.fixture
def db_settings(empty_database):
    from services.common.config import database_settings

    return database_settings(db_env(empty_database))


@pytest.fixture
def engine(db_settings):
    from services.common.db import create_engine

    engine = create_engine(db_settings)
    yield engine
    engine.dispose()


@pytest.fixture
def migrated_engine(engine):
    """An engine on a test database already at the head revision."""
    from services.db_migration.migrator import COMPLETED, Migrator

    assert Migrator(engine).run().status == COMPLETED
    return engine


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="session")
def rabbit_vhost():
    """A RabbitMQ vhost of this test session (guest has all rights), deleted afterwards."""
    name = f"rasax_test_{uuid.uuid4().hex[:10]}"
    try:
        _rabbitmqctl("add_vhost", name)
        _rabbitmqctl("set_permissions", "-p", name, RABBIT_USER, ".*", ".*", ".*")
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.fail(f"cannot create a RabbitMQ vhost with rabbitmqctl ({exc}); is RabbitMQ running? see .ci/run")
    yield name
    _rabbitmqctl("delete_vhost", name)


def rabbit_env(vhost: str) -> dict[str, str]:
    """The RABBITMQ_* variables of docs/design.md §3 pointing at a test vhost."""
    return {
        "RABBITMQ_HOST": RABBIT_HOST,
        "RABBITMQ_PORT": str(RABBIT_PORT),
        "RABBITMQ_USERNAME": RABBIT_USER,
        "RABBITMQ_PASSWORD": RABBIT_PASSWORD,
        "RABBITMQ_VHOST": vhost,
    }
