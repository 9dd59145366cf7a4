"""One training at a time on the worker even across a rasa-x restart: a rasa-x process killed
during training leaves its training running on the worker (Rasa trains in a thread of its own);
neither a retry nor a new job may start a second one while the worker's /status counts it.

Real PostgreSQL and a real rasa-x process (killed with SIGKILL); the worker is the stand-in
(tests/integration/backend/rasa_stand_in.py), which counts the /model/train requests it serves at
once and answers /status as Rasa 3.6 does (409 until a model is loaded).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import requests

from services.backend import training_jobs
from tests.conftest import free_port, wait_until

from .conftest import ROOT
from .test_training_jobs import (  # noqa: F401  (fixtures)
    JOBS, RASA_X_PROCESS, _answers, admin, app, client, database, env, stand_in, trained_data, wait_for_job,
)


@pytest.fixture
def killed_mid_training(client, admin, stand_in, trained_data, env, monkeypatch, tmp_path):
    """A job whose rasa-x process was killed while the worker trains it; the worker still busy."""
    stand_in.mode = "hang"
    stand_in.loaded = True  # as after an evaluation: the worker can tell what it runs
    monkeypatch.setattr(training_jobs, "BUSY_POLL_SECONDS", 0.2)
    port = free_port()
    with open(tmp_path / "rasa-x.log", "w") as log:
        process = subprocess.Popen([sys.executable, "-c", RASA_X_PROCESS, str(port), stand_in.url], cwd=ROOT,
                                   env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT)
        try:
            base = f"http://127.0.0.1:{port}"
            wait_until(lambda: _answers(f"{base}/api/health"), 60, "the rasa-x process")
            job = requests.post(f"{base}{JOBS}", json={}, headers=admin, timeout=10).json()
            wait_until(lambda: stand_in.active == 1, 30, "the training at the worker")
            monkeypatch.setattr(training_jobs, "STALE_SECONDS", 2.0)
        finally:
            process.kill()
            process.wait(10)
    failed = wait_for_job(client, admin, job["id"], ("failed",), timeout=15)
    assert failed["retryable"] and "rasa-x stopped" in failed["error"]
    yield failed
    stand_in.loaded = False


def test_a_retry_is_refused_while_the_worker_still_trains_the_killed_rasa_xs_job(
        client, admin, stand_in, killed_mid_training):
    job = killed_mid_training
    refused = client.post(f"{JOBS}/{job['id']}/retry", headers=admin)
    assert refused.status_code == 409 and refused.json["reason"] == "worker_busy"
    assert "1 training" in refused.json["message"] and refused.headers["Retry-After"]
    # Refused means untouched: still failed and retryable, nothing sent to the worker.
    assert client.get(f"{JOBS}/{job['id']}", headers=admin).json["status"] == "failed"
    assert len(stand_in.trainings()) == 1

    stand_in.mode = "train"
    stand_in.release.set()  # the orphaned training ends on the worker
    wait_until(lambda: stand_in.active == 0, 10, "the worker idle")
    assert client.post(f"{JOBS}/{job['id']}/retry", headers=admin).status_code == 202
    assert wait_for_job(client, admin, job["id"])["status"] == "finished"
    assert stand_in.most_active == 1


def test_a_new_job_waits_queued_until_the_worker_has_finished_the_killed_rasa_xs_training(
        client, admin, stand_in, killed_mid_training):
    queued = client.post(JOBS, json={}, headers=admin)
    assert queued.status_code == 202
    time.sleep(1.5)  # several polls of the busy worker
    assert client.get(f"{JOBS}/{queued.json['id']}", headers=admin).json["status"] == "queued"
    assert len(stand_in.trainings()) == 1

    stand_in.mode = "train"
    stand_in.release.set()
    assert wait_for_job(client, admin, queued.json["id"], timeout=30)["status"] == "finished"
    assert len(stand_in.trainings()) == 2 and stand_in.most_active == 1
