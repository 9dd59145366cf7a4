"""Start and stop of `python -m services.event_service`: it waits for the schema with /health
saying why, and SIGTERM stores and acknowledges exactly what it received before it exits."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pika

from services.common.amqp import connection_parameters, declare_rasa_topology
from services.common.config import database_settings, rabbit_settings
from services.common.db import create_engine
from services.db_migration.migrator import COMPLETED, Migrator
from tests.conftest import create_database, db_env, drop_database
from tests.integration.event_service.harness import (
    ROOT,
    count_events,
    free_port,
    fixture_messages,
    publish,
    replicated_stream,
    wait_for_events,
    wait_until,
)


def queue_depth(env) -> int:
    rabbit = rabbit_settings(env)
    connection = pika.BlockingConnection(connection_parameters(rabbit))
    try:
        return connection.channel().queue_declare(rabbit.queue, durable=True, passive=True).method.message_count
    finally:
        connection.close()


def test_waits_for_migrations_then_consumes(queue_env, services):
    name = create_database("rasax_es")
    engine = create_engine(database_settings(db_env(name)))
    try:
        env = {**db_env(name), **queue_env}
        service = services(env)
        wait_until(lambda: service.health() is not None, 30, "the health endpoint")
        status, body = service.health()
        assert status == 503 and body["state"] == "waiting for database migrations", body
        assert Migrator(engine).run().status == COMPLETED
        service.wait_consuming(timeout=30)
        publish(env, fixture_messages())
        wait_for_events(engine, 123, service=service)
    finally:
        engine.dispose()
        drop_database(name)


def test_sigterm_drains_what_it_received_and_exits_cleanly(migrated_database, service_env, services):
    _, engine = migrated_database
    messages = replicated_stream(163, prefix="t")  # 20,049 events
    # Queued before the service starts: published while it consumes, a fast service could store
    # them all before SIGTERM, and the test would not see a drain with work left in the queue.
    rabbit = rabbit_settings(service_env)
    connection = pika.BlockingConnection(connection_parameters(rabbit))
    try:
        declare_rasa_topology(connection.channel(), rabbit)
    finally:
        connection.close()
    publish(service_env, messages)
    service = services(service_env)
    service.wait_consuming()
    wait_for_events(engine, 3_000, service=service)
    assert service.terminate(timeout=30) == 0, service.log()
    stored = count_events(engine)
    # Everything it took from the queue is stored and acknowledged, nothing else: no event
    # is both stored and still queued (which a restart would have to skip as a duplicate).
    assert stored < len(messages)
    # The broker puts back what a closed channel held asynchronously: give it a moment, and
    # never more than the total (stored and queued at once would be a duplicate).
    wait_until(lambda: stored + queue_depth(service_env) >= len(messages), 10, "the broker to requeue")
    assert stored + queue_depth(service_env) == len(messages)
    assert '"stopped consuming"' in service.log()

    service = services(service_env)
    service.wait_consuming()
    wait_for_events(engine, len(messages), service=service)
    assert service.health()[1]["duplicates_ignored"] == 0


def test_unreachable_broker_is_waited_for_and_reported(service_env, services):
    service = services({**service_env, "RABBITMQ_PORT": str(free_port())})  # nothing listens there
    wait_until(
        lambda: (service.health() or (0, {}))[1].get("state") == "waiting for the broker", 30, "the broker wait"
    )
    status, body = service.health()
    assert status == 503 and body["broker"] is False and body["database"] is True
    assert service.process.poll() is None
    assert "broker connection lost or refused" in service.log()


def test_configuration_error_is_one_line_and_exit_2(service_env):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "RABBITMQ_"))}
    env.update({k: v for k, v in service_env.items() if k != "RABBITMQ_PASSWORD"})
    done = subprocess.run([sys.executable, "-m", "services.event_service"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert done.stderr.strip() == "configuration error: RABBITMQ_PASSWORD: is not set"


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_workers_do_not_outlive_their_service(service_env, services):
    service = services({**service_env, "EVENT_SERVICE_WORKERS": "2"})
    body = service.wait_consuming()
    assert [worker["state"] for worker in body["workers"]] == ["consuming", "consuming"]
    workers = service.worker_pids()
    assert len(set(workers)) == 2 and service.process.pid not in workers
    service.process.send_signal(signal.SIGKILL)  # the supervisor alone, say by the OOM killer
    service.process.wait(10)
    # The kernel tells each orphan (PR_SET_PDEATHSIG); it drains and exits instead of
    # consuming on unsupervised.
    wait_until(lambda: not any(_running(pid) for pid in workers), 30, "the orphaned workers to exit")
    assert service.log().count('"stopped consuming"') == 2
