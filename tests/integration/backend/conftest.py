"""The backend against real servers, with conversations stored by the real event service.

One session: a migrated database, a private password-protected Redis (so tests can stop it and
never touch anyone else's keys), `python -m services.event_service` consuming a test vhost, and
the fixture events of tests/fixtures published to it as Rasa would. Every filter test
derives its expected answer from those same published events (see `model.py`), never from the
database the backend reads.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import urllib.request
import uuid

import pika
import pytest
import sqlalchemy as sa

from services.common.amqp import rasa_properties
from services.common.config import database_settings, load_settings
from services.common.db import create_engine
from services.db_migration.migrator import COMPLETED, Migrator
from tests.conftest import create_database, db_env, drop_database, free_port, rabbit_env, wait_until

from .model import published_messages

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
ADMIN_PASSWORD = "admin-" + secrets.token_hex(8)
USER_PASSWORD = "user-" + secrets.token_hex(8)


class PrivateRedis:
    """A redis-server of our own on a free port, with a password like production's."""

    def __init__(self):
        self.port = free_port()
        self.password = secrets.token_hex(12)
        self.dir = tempfile.mkdtemp(prefix="rasax-redis-")
        self.process = None

    def start(self) -> "PrivateRedis":
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--requirepass", self.password,
             "--save", "", "--appendonly", "no", "--dir", self.dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_until(lambda: _port_open(self.port), 10, "redis-server")
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def private_redis():
    redis = PrivateRedis().start()
    yield redis
    redis.close()


@pytest.fixture(scope="session")
def backend_database():
    name = create_database("rasax_backend")
    engine = create_engine(database_settings(db_env(name)))
    assert Migrator(engine).run().status == COMPLETED
    engine.dispose()
    yield name
    drop_database(name)


@pytest.fixture(scope="session")
def db_engine(backend_database):
    engine = create_engine(database_settings(db_env(backend_database)))
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def backend_env(backend_database, rabbit_vhost, private_redis, tmp_path_factory) -> dict:
    return {
        **db_env(backend_database),
        **rabbit_env(rabbit_vhost),
        "RABBITMQ_QUEUE": "rasa_production_events",
        "REDIS_HOST": "127.0.0.1",
        "REDIS_PORT": str(private_redis.port),
        "REDIS_PASSWORD": private_redis.password,
        "REDIS_DB": "0",
        "RASA_X_TOKEN": "rxt-" + secrets.token_hex(12),
        "RASA_TOKEN": secrets.token_hex(12),
        "JWT_SECRET": secrets.token_hex(12),
        "PASSWORD_SALT": secrets.token_hex(12),
        "RASA_X_USERNAME": "admin",
        "RASA_X_PASSWORD": ADMIN_PASSWORD,
        "RASA_X_HOST": "http://rasa-x:5002",
        # Nothing listens there: the backend must cope without Rasa.
        "RASA_PRODUCTION_HOST": f"http://127.0.0.1:{free_port()}",
        "RASA_WORKER_HOST": f"http://127.0.0.1:{free_port()}",
        "RASA_MODEL_DIR": str(tmp_path_factory.mktemp("models")),
    }


class EventService:
    """`python -m services.event_service` as a subprocess, plus a publisher acting as Rasa."""

    def __init__(self, env: dict, engine):
        self.env = env
        self.engine = engine
        self.port = free_port()
        self.log = tempfile.NamedTemporaryFile(prefix="event-service-", suffix=".log", delete=False)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "services.event_service"],
            cwd=ROOT,
            env={**os.environ, **env, "SELF_PORT": str(self.port)},
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until(self._healthy, 60, f"the event service to be healthy (log: {self.log.name})", 0.2)
        except BaseException:
            self.process.kill()  # the log stays for reading
            self.process.wait(10)
            raise

    def _healthy(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"the event service exited; log: {open(self.log.name).read()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=1) as response:
                return response.status == 200
        except OSError:
            return False

    def publish(self, messages: list[tuple[str, str | None]]) -> None:
        from services.common.amqp import connection_parameters
        from services.common.config import rabbit_settings

        rabbit = rabbit_settings(self.env)
        connection = pika.BlockingConnection(connection_parameters(rabbit))
        try:
            channel = connection.channel()
            for body, app_id in messages:
                channel.basic_publish(rabbit.exchange, "", body.encode(), rasa_properties(app_id))
        finally:
            connection.close()

    def event_count(self) -> int:
        with self.engine.connect() as connection:
            return connection.execute(sa.text("SELECT count(*) FROM conversation_event")).scalar()

    def publish_and_wait(self, messages: list[tuple[str, str | None]], timeout: float = 60) -> None:
        expected = self.event_count() + len({body for body, _ in messages})
        self.publish(messages)
        wait_until(lambda: self.event_count() >= expected, timeout, f"{expected} stored events (log: {self.log.name})")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
        os.unlink(self.log.name)


@pytest.fixture(scope="session")
def event_service(backend_env, db_engine):
    service = EventService(backend_env, db_engine)
    yield service
    service.stop()


@pytest.fixture(scope="session")
def stored_events(event_service):
    """The published fixture events, once the event service has stored every one of them."""
    messages = published_messages()
    event_service.publish_and_wait(messages)
    return messages


@pytest.fixture(scope="session")
def settings(backend_env):
    return load_settings(backend_env)


@pytest.fixture(scope="session")
def app(settings, stored_events):
    from services.backend import create_app

    return create_app(settings, cache_prefix=f"rasax-test-{uuid.uuid4().hex[:8]}")


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(scope="session")
def tokens(app, db_engine, settings) -> dict[str, str]:
    """A JWT per role, each obtained through POST /api/auth like a browser would."""
    from services.backend.users import create_user

    with db_engine.begin() as connection:
        for role in ("annotator", "tester", "guest"):
            create_user(connection, f"{role}-user", USER_PASSWORD, [role], settings.password_salt, if_absent=True)
    client = app.test_client()
    result = {}
    for role, (username, password) in {
        "admin": ("admin", ADMIN_PASSWORD),
        "annotator": ("annotator-user", USER_PASSWORD),
        "tester": ("tester-user", USER_PASSWORD),
        "guest": ("guest-user", USER_PASSWORD),
    }.items():
        response = client.post("/api/auth", json={"username": username, "password": password})
        assert response.status_code == 200, response.json
        result[role] = response.json["access_token"]
    return result


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def admin(tokens):
    return bearer(tokens["admin"])


def json_lines(path: str) -> list[dict]:
    with open(path) as handle:
        return [json.loads(line) for line in handle if line.strip()]
