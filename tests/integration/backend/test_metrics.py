"""rasa-x's /metrics as deployed: `python -m services.backend` under gunicorn with two workers,
real PostgreSQL and Redis, a Rasa stand-in as the training worker. Whichever worker answers a
scrape, it counts the requests of both (prometheus_client's multi-process mode), and what a
worker counted outlives the worker."""

from __future__ import annotations

import os
import re
import signal
import uuid

import pytest
import requests

from services.backend.__main__ import fallback_metrics_directory
from tests.conftest import db_env, migrated_databases, wait_until
from tests.integration.metrics_scrape import missing_from_dashboard_view, scrape, value

from .conftest import ADMIN_PASSWORD
from .rasa_stand_in import StandIn
from .serving import serving
from .training_data_helpers import API, PROJECT_FILES, project_file

JOBS = f"{API}/models/jobs"
TAGS = "/api/conversations/<path:sender_id>/tags"  # the URL rule, as Flask has it


@pytest.fixture(scope="module")
def stand_in(backend_env):
    server = StandIn(backend_env["RASA_TOKEN"])
    yield server
    server.close()


@pytest.fixture(scope="module")
def served(backend_env, stand_in, tmp_path_factory):
    with migrated_databases("rasax_metrics") as new:
        name, _ = new()
        env = {
            **backend_env, **db_env(name),
            # A Redis database of its own: no cache entry of another module can be a hit here.
            "REDIS_DB": "7",
            "RASA_WORKER_HOST": stand_in.url,
            "RASA_MODEL_DIR": str(tmp_path_factory.mktemp("metrics-models")),
        }  # fmt: skip
        with serving(env, "rasa-x-metrics") as served:
            yield served.url


@pytest.fixture(scope="module")
def admin(served):
    response = requests.post(f"{served}/api/auth", json={"username": "admin", "password": ADMIN_PASSWORD}, timeout=10)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def requests_of(samples, route: str, status: int, method: str = "GET") -> float:
    return value(samples, "rasax_http_requests_total", method=method, route=route, status=str(status))


def worker_pids(url: str) -> set[int]:
    """The gunicorn workers that wrote metrics: their pids are in the files' names."""
    port = int(url.rsplit(":", 1)[1])
    names = os.listdir(fallback_metrics_directory(port))
    return {int(m.group(1)) for m in map(re.compile(r"counter_(\d+)\.db").fullmatch, names) if m}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def test_requests_by_route_and_status_summed_over_the_workers(served, admin):
    url = f"{served}/metrics"
    before = scrape(url)
    for _ in range(30):  # a new connection each: the kernel spreads them over both workers
        assert requests.get(f"{served}/api/health", timeout=10).status_code == 200
    for password in ("wrong", ADMIN_PASSWORD):
        requests.post(f"{served}/api/auth", json={"username": "admin", "password": password}, timeout=10)
    for sender in ("alice", "bob"):  # no such conversations in this database: 404 from the view
        assert requests.get(f"{served}/api/conversations/{sender}/tags", headers=admin, timeout=10).status_code == 404
    assert requests.get(f"{served}/api/no-such-route", timeout=10).status_code == 404

    # Several scrapes, answered by either worker, all see every request.
    for _ in range(6):
        after = scrape(url)
        assert requests_of(after, "/api/health", 200) - requests_of(before, "/api/health", 200) == 30
        assert requests_of(after, "/api/auth", 401, "POST") - requests_of(before, "/api/auth", 401, "POST") == 1
        assert requests_of(after, "/api/auth", 200, "POST") - requests_of(before, "/api/auth", 200, "POST") == 1
        # By the URL rule, not the raw path: two conversations, one series.
        assert requests_of(after, TAGS, 404) - requests_of(before, TAGS, 404) == 2
        assert requests_of(after, "unmatched", 404) - requests_of(before, "unmatched", 404) == 1
        assert not any("alice" in dict(labels)["route"] for labels in after["rasax_http_requests_total"])
        latency = "rasax_http_request_duration_seconds_count"
        assert value(after, latency, method="GET", route="/api/health") - value(
            before, latency, method="GET", route="/api/health") == 30
        # The scrape itself is the one request in progress.
        assert value(after, "rasax_http_requests_in_progress", method="GET") == 1
    assert len(worker_pids(served)) >= 2, "the requests should have reached both workers"


def test_cache_lookups(served, admin):
    url = f"{served}/metrics"
    before = scrape(url)
    for _ in range(2):  # the first computes and stores the statistics, the second reads them
        assert requests.get(f"{served}/api/statistics", headers=admin, timeout=10).status_code == 200
    after = scrape(url)
    for result in ("miss", "hit"):
        assert value(after, "rasax_cache_lookups_total", entry="statistics", result=result) - value(
            before, "rasax_cache_lookups_total", entry="statistics", result=result) == 1


def test_training_jobs_by_outcome(served, admin, stand_in):
    files = [("files", (path, project_file(path))) for path in PROJECT_FILES]
    assert requests.post(f"{served}{API}/import?mode=replace", files=files, headers=admin, timeout=30).status_code == 200
    url = f"{served}/metrics"

    def run_job() -> dict:
        response = requests.post(f"{served}{JOBS}", json={"model_name": f"m-{uuid.uuid4().hex[:6]}"},
                                 headers=admin, timeout=30)
        assert response.status_code == 202, response.text

        def ended():
            job = requests.get(f"{served}{JOBS}/{response.json()['id']}", headers=admin, timeout=10).json()
            return job if job["status"] in ("finished", "failed") else None

        return wait_until(ended, 60, "the training job to end", 0.2)

    def outcome(samples, name: str) -> float:
        return value(samples, "rasax_training_jobs_total", outcome=name)

    before = scrape(url)
    stand_in.mode = "train"
    assert run_job()["status"] == "finished"
    stand_in.mode = "refuse"
    assert run_job()["status"] == "failed"
    stand_in.mode = "train"
    after = scrape(url)
    assert {name: outcome(after, name) - outcome(before, name) for name in ("finished", "failed", "failed_retryable")} \
        == {"finished": 1, "failed": 1, "failed_retryable": 0}
    # After requests, cache lookups and training jobs, every series the dashboard asks rasa-x for is there.
    assert missing_from_dashboard_view("rasa-x", after) == set()


def test_what_a_worker_counted_outlives_it(served):
    url = f"{served}/metrics"
    before = scrape(url)
    victim = next(pid for pid in worker_pids(served) if alive(pid))
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: not alive(victim), 10, "the worker to die")
    # gunicorn starts a new worker; the dead one's counts stay in the sum.
    wait_until(lambda: requests.get(f"{served}/api/health", timeout=10).status_code == 200, 30, "rasa-x again")
    after = scrape(url)
    assert requests_of(after, "/api/health", 200) >= requests_of(before, "/api/health", 200) + 1
    assert requests_of(after, "/api/auth", 401, "POST") == requests_of(before, "/api/auth", 401, "POST")
    assert value(after, "rasax_http_requests_in_progress", method="GET") == 1
