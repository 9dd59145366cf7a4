"""Metrics on the real stack (`up --no-rasa`): each service's /metrics read from inside the stack's
network after real traffic, none of them reachable from outside, nginx's stub status on its
internal port only."""

from __future__ import annotations

import json

import pytest
import requests

from deploy.render import NGINX_STATUS_PORT
from services.db_migration.migrator import head_revision
from tests.conftest import wait_until
from tests.e2e.day2 import RABBIT_ON_LOOPBACK
from tests.e2e.deployment import publish_fixtures, running_stack
from tests.integration.event_service.harness import fixture_messages
from tests.integration.metrics_scrape import parse, value

pytestmark = [pytest.mark.docker, pytest.mark.timeout(1200)]


@pytest.fixture(scope="module")
def stack(docker_client, tmp_path_factory, request):
    directory = tmp_path_factory.mktemp("metrics-stack") / "rasa"
    directory.mkdir()
    (directory / "docker-compose.override.yml").write_text(RABBIT_ON_LOOPBACK)  # to publish as Rasa does
    with running_stack(docker_client, directory, "rxmet", request) as stack:
        yield stack


def fetch(stack, container: str, url: str) -> str:
    """GET `url` from inside a container of the stack (its network is not the host's)."""
    code, output = stack.docker_client.containers.get(f"{stack.project}_{container}_1").exec_run(
        ["python", "-c", f"import urllib.request as r; print(r.urlopen({url!r}, timeout=10).read().decode())"])
    assert code == 0, output.decode(errors="replace")
    return output.decode()


def test_each_service_counts_the_real_traffic_and_keeps_its_metrics_inside(stack):
    senders = publish_fixtures(stack)
    assert stack.wait_for_senders(senders) >= senders  # through nginx, rasa-x and the event service

    published = len(fixture_messages())

    def event_metrics():
        return parse(fetch(stack, "event-service", "http://localhost:5673/metrics"))

    # A conversation shows with its first event stored: the rest may still be on its way.
    wait_until(lambda: value(event_metrics(), "rasax_events_consumed_total") == published, 60, "every event consumed")
    events = event_metrics()
    assert value(events, "rasax_events_stored_total") == published
    assert value(events, "rasax_events_deduplicated_total") == 0
    assert "rasax_events_dead_lettered_total" not in events  # by reason: no series until one is
    workers = json.loads(fetch(stack, "event-service", "http://localhost:5673/health"))["workers"]
    assert value(events, "rasax_event_workers_consuming") == len(workers) > 0

    migration = parse(fetch(stack, "db-migration", "http://localhost:8000/metrics"))
    assert value(migration, "rasax_migration_completed") == 1
    assert value(migration, "rasax_migration_info", current_revision=head_revision(), target_revision=head_revision(),
                 status="completed") == 1
    assert value(migration, "rasax_migrations_applied_total") > 0  # a new database: every revision

    # rasa-x counted the log-in and the conversation lists the wait above asked nginx for.
    backend = parse(fetch(stack, "rasa-x", "http://localhost:5002/metrics"))
    assert value(backend, "rasax_http_requests_total", method="POST", route="/api/auth", status="200") >= 1
    assert value(backend, "rasax_http_requests_total", method="GET", route="/api/conversations", status="200") >= 1
    assert value(backend, "rasax_cache_lookups_total", entry="conversations", result="miss") >= 1

    # None of it from outside: nginx refuses /metrics, only its own port is published, and the
    # stub status answers on the stack's network.
    assert requests.get(f"{stack.base}/metrics", timeout=10).status_code == 404
    nginx = stack.docker_client.containers.get(f"{stack.project}_nginx_1")
    assert {port for port, bindings in nginx.ports.items() if bindings} == {"8080/tcp"}
    status = fetch(stack, "rasa-x", f"http://nginx:{NGINX_STATUS_PORT}/stub_status")
    assert status.startswith("Active connections:") and "server accepts handled requests" in status
