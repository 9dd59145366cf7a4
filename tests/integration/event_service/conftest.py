"""Fixtures of the event-service tests: a migrated database, a queue of the test's own, and a
factory of service processes that are all stopped afterwards."""

from __future__ import annotations

import uuid

import pytest

from tests.conftest import db_env, migrated_databases, rabbit_env

from tests.integration.event_service.harness import Service


@pytest.fixture
def new_database():
    """new_database() → (name, engine) of another new database at the head revision."""
    with migrated_databases("rasax_es") as new:
        yield new


@pytest.fixture
def migrated_database(new_database):
    """(name, engine) of a new database at the head revision."""
    return new_database()


def own_queue(vhost: str) -> dict[str, str]:
    suffix = uuid.uuid4().hex[:8]
    return {**rabbit_env(vhost), "RABBITMQ_QUEUE": f"events_{suffix}", "RABBITMQ_EXCHANGE": f"rasa-exchange-{suffix}"}


@pytest.fixture
def queue_env(rabbit_vhost):
    """RABBITMQ_* of the session vhost with a queue and exchange of this test alone."""
    return own_queue(rabbit_vhost)


@pytest.fixture
def service_env(migrated_database, queue_env):
    name, _ = migrated_database
    return {**db_env(name), **queue_env}


@pytest.fixture
def services(tmp_path):
    """services(env) starts one more `python -m services.event_service`; all are stopped at the end."""
    started: list[Service] = []

    def start(env: dict[str, str]) -> Service:
        service = Service(env, str(tmp_path / f"event-service-{len(started)}.log")).start()
        started.append(service)
        return service

    yield start
    for service in started:
        service.stop()
