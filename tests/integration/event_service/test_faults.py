"""Faults during a stream of 50k real-shaped events: SIGKILL of the consumer, a PostgreSQL
restart, a cut broker connection. Afterwards stored == published, nothing twice, and every
derived table is what the events imply.

PostgreSQL here is a private, throw-away server (initdb in a temp dir, own port) so that it can
be restarted without touching the machine's shared one; the broker connection is cut with
`rabbitmqctl close_connection` on the consumer's own (named) connection only.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import threading
import time

import pytest
import sqlalchemy as sa

from services.common.config import database_settings
from services.common.db import create_engine
from services.db_migration.migrator import COMPLETED, Migrator
from tests.integration.event_service.harness import (
    assert_matches_oracle,
    count_events,
    free_port,
    publish,
    replicated_stream,
    wait_for_events,
    wait_until,
)

STREAM_COPIES = 407  # × 123 captured events = 50,061 events in 2,849 conversations


def _as_postgres(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    if os.geteuid() == 0:  # initdb and postgres refuse to run as root
        args = ["runuser", "-u", "postgres", "--", *args]
    return subprocess.run(args, check=True, capture_output=True, timeout=120, **kwargs)


class PrivatePostgres:
    def __init__(self):
        candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))
        if not candidates:
            pytest.fail("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin (apt-get install postgresql)")
        self.bin = candidates[-1]
        self.dir = tempfile.mkdtemp(prefix="rasax-es-pg-")
        if os.geteuid() == 0:
            postgres = pwd.getpwnam("postgres")
            os.chown(self.dir, postgres.pw_uid, postgres.pw_gid)
        self.data = os.path.join(self.dir, "data")
        self.port = free_port()
        _as_postgres([f"{self.bin}/initdb", "-D", self.data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"])

    def pg_ctl(self, *args: str) -> None:
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
        )
        _as_postgres([f"{self.bin}/pg_ctl", "-D", self.data, "-o", options, "-l", os.path.join(self.dir, "log"), "-w", *args])

    def env(self, database: str) -> dict[str, str]:
        return {"DB_HOST": "127.0.0.1", "DB_PORT": str(self.port), "DB_USER": "postgres",
                "DB_PASSWORD": "unused-with-trust-auth", "DB_DATABASE": database}


@pytest.fixture(scope="module")
def private_postgres():
    server = PrivatePostgres()
    server.pg_ctl("start")
    yield server
    try:
        server.pg_ctl("-m", "immediate", "stop")
    finally:
        shutil.rmtree(server.dir, ignore_errors=True)


@pytest.fixture
def stream_setup(private_postgres, queue_env, request):
    """(env, engine) of a migrated database on the private server and the test's own queue."""
    database = f"faults_{request.node.name[-20:].lower()}_{os.getpid()}"
    admin = sa.create_engine(
        f"postgresql+psycopg2://postgres@127.0.0.1:{private_postgres.port}/postgres",
        isolation_level="AUTOCOMMIT",
        poolclass=sa.pool.NullPool,  # the server restarts under it
    )
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{database}"'))
    env = {**private_postgres.env(database), **queue_env}
    engine = create_engine(database_settings(env))
    assert Migrator(engine).run().status == COMPLETED
    yield env, engine
    engine.dispose()
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
    admin.dispose()


def start_stream(env, services, prefix: str):
    """A consuming service and a publisher of 50k events in the background."""
    messages = replicated_stream(STREAM_COPIES, prefix=prefix)
    service = services(env)
    service.wait_consuming()
    publisher = threading.Thread(target=publish, args=(env, messages), daemon=True)
    publisher.start()
    return messages, service, publisher


def wait_stored(engine, at_least: int, timeout: float = 120) -> int:
    wait_for_events(engine, at_least, timeout)
    return count_events(engine)


def test_sigkill_at_any_moment_loses_and_duplicates_nothing(stream_setup, services):
    env, engine = stream_setup
    messages, service, publisher = start_stream(env, services, "k")
    for threshold in (8_000, 20_000, 32_000):
        wait_stored(engine, threshold)
        service.kill()
        service = services(env)
        service.wait_consuming()
    publisher.join(120)
    wait_for_events(engine, len(messages), service=service)
    assert_matches_oracle(engine, messages)


def test_a_killed_worker_process_is_replaced_and_loses_nothing(stream_setup, services):
    env, engine = stream_setup
    messages, service, publisher = start_stream({**env, "EVENT_SERVICE_WORKERS": "2"}, services, "w")
    for threshold in (10_000, 25_000):
        wait_stored(engine, threshold)
        victim = service.worker_pids()[0]
        os.kill(victim, signal.SIGKILL)
        wait_until(lambda: victim not in service.worker_pids() and service.health()[0] == 200, 60,
                   "the supervisor to start a new worker")
    publisher.join(120)
    wait_for_events(engine, len(messages), service=service)
    assert [worker["restarts"] for worker in service.health()[1]["workers"]] == [2, 0]
    assert "worker 0 exited (killed by SIGKILL)" in service.log()
    assert_matches_oracle(engine, messages)


def test_postgresql_restart_during_the_stream(stream_setup, private_postgres, services):
    env, engine = stream_setup
    messages, service, publisher = start_stream(env, services, "p")
    wait_stored(engine, 10_000)
    private_postgres.pg_ctl("-m", "immediate", "restart")
    engine.dispose()  # the pool's connections died with the server
    wait_stored(engine, 25_000)
    # And once more while it is down for a while: the service waits, then carries on.
    private_postgres.pg_ctl("-m", "fast", "stop")
    wait_until(lambda: service.health()[0] == 503 and service.health()[1]["database"] is False, 30, "health to report the database down")
    time.sleep(2)
    private_postgres.pg_ctl("start")
    engine.dispose()
    publisher.join(120)
    wait_for_events(engine, len(messages), service=service)
    assert service.process.poll() is None, "the service died instead of waiting for PostgreSQL"
    assert '"database unavailable' in service.log()
    assert_matches_oracle(engine, messages)


def consumer_connections(vhost: str, pid: int) -> list[str]:
    """Broker-side pids of a worker's connections (each names its connection after its pid)."""
    out = subprocess.run(
        ["rabbitmqctl", "-s", "list_connections", "pid", "vhost", "client_properties"],
        check=True, capture_output=True, text=True, timeout=60,
    ).stdout
    found = []
    for line in out.splitlines():
        parts = line.split("\t")
        if len(parts) == 3 and parts[1] == vhost and f' pid {pid}"' in parts[2] and "rasax-event-service" in parts[2]:
            found.append(parts[0])
    return found


def test_cut_broker_connection_during_the_stream(stream_setup, services):
    env, engine = stream_setup
    messages, service, publisher = start_stream(env, services, "b")
    for threshold in (10_000, 30_000):
        wait_stored(engine, threshold)
        worker = service.worker_pids()[0]  # one worker's connection; the others go on meanwhile
        connections = consumer_connections(env["RABBITMQ_VHOST"], worker)
        assert len(connections) == 1, connections
        subprocess.run(["rabbitmqctl", "-q", "close_connection", connections[0], "test: cut the consumer"],
                       check=True, capture_output=True, timeout=60)
        wait_until(lambda: consumer_connections(env["RABBITMQ_VHOST"], worker) not in ([], connections),
                   60, "the consumer to reconnect")
    publisher.join(120)
    wait_for_events(engine, len(messages), service=service)
    assert service.process.poll() is None
    assert worker in service.worker_pids(), "the worker should reconnect, not be replaced"
    assert "broker connection lost" in service.log()
    assert_matches_oracle(engine, messages)
