"""Training jobs against real PostgreSQL and a stand-in Rasa worker (tests/integration/backend/
rasa_stand_in.py) for what real Rasa does not do on demand: refuse, crash, hang, be slow, be down.
The happy path with real Rasa is tests/e2e/test_closing_the_loop.py.

The module has a database of its own, so its training data and models do not meet other modules'.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import threading
import uuid

import pytest
import sqlalchemy as sa
import yaml

from services.backend import training_jobs
from services.common.config import database_settings, load_settings
from services.common.db import create_engine
from services.db_migration.migrator import COMPLETED, Migrator
from tests.conftest import create_database, db_env, drop_database, free_port, wait_until

from .conftest import ADMIN_PASSWORD, ROOT, bearer
from .rasa_stand_in import StandIn
from .training_data_helpers import import_fixture

JOBS = "/api/projects/default/models/jobs"


@pytest.fixture(scope="module")
def database():
    name = create_database("rasax_jobs")
    engine = create_engine(database_settings(db_env(name)))
    assert Migrator(engine).run().status == COMPLETED
    yield name, engine
    engine.dispose()
    drop_database(name)


@pytest.fixture(scope="module")
def env(backend_env, database, tmp_path_factory):
    return {**backend_env, **db_env(database[0]), "RASA_MODEL_DIR": str(tmp_path_factory.mktemp("job-models"))}


@pytest.fixture(scope="module")
def stand_in(env):
    server = StandIn(env["RASA_TOKEN"])
    yield server
    server.close()


def make_app(env, worker_url: str):
    from services.backend import create_app

    settings = dataclasses.replace(load_settings(env), rasa_worker_host=worker_url)
    return create_app(settings, cache_prefix=f"rasax-jobs-{uuid.uuid4().hex[:8]}")


@pytest.fixture(scope="module")
def app(env, stand_in):
    return make_app(env, stand_in.url)


@pytest.fixture(scope="module")
def admin(app):
    response = app.test_client().post("/api/auth", json={"username": "admin", "password": ADMIN_PASSWORD})
    return bearer(response.json["access_token"])


@pytest.fixture(scope="module")
def trained_data(app, admin):
    return import_fixture(app.test_client(), admin)


@pytest.fixture
def client(app, stand_in, database):
    stand_in.mode, stand_in.delay = "train", 0.0
    stand_in.requests.clear()
    stand_in.most_active = 0
    stand_in.release.clear()
    yield app.test_client()
    stand_in.release.set()
    training_jobs.runner(app).wait(60)
    with database[1].begin() as connection:
        # Nothing left running for the next test: this module's jobs all end or are failed here.
        connection.execute(sa.text("UPDATE training_job SET status = 'failed' WHERE status IN ('queued', 'running')"))


def wait_for_job(client, admin, job_id: int, statuses=("finished", "failed"), timeout: float = 60) -> dict:
    def done():
        job = client.get(f"{JOBS}/{job_id}", headers=admin).json
        return job if job["status"] in statuses else None

    return wait_until(done, timeout, f"job {job_id} in {statuses}", 0.1)


def test_a_job_trains_the_current_data_on_the_worker_and_stores_the_model(client, admin, stand_in, trained_data, app):
    response = client.post(JOBS, json={"tag": "production"}, headers=admin)
    assert response.status_code == 202, response.json
    job = response.json
    assert job["status"] in ("queued", "running") and job["data_version"] == trained_data["version"]
    job = wait_for_job(client, admin, job["id"])
    assert job["status"] == "finished", job
    assert job["attempts"] == 1 and job["error"] is None and job["requested_by"] == "admin"

    # What Rasa got: one YAML document with config, domain and data, with the token, as YAML.
    (sent,) = stand_in.trainings()
    assert sent["query"]["token"] == [app.extensions["rasax"].settings.rasa_token]
    assert sent["content_type"] == "application/x-yaml"
    assert sent["query"]["save_to_default_model_directory"] == ["false"]
    payload = yaml.safe_load(sent["body"])
    assert {"pipeline", "policies", "intents", "responses", "nlu", "stories", "rules"} <= set(payload)
    exported_intents = {block["intent"] for block in payload["nlu"] if "intent" in block}
    assert exported_intents == {i["intent"] for i in client.get("/api/projects/default/intents", headers=admin).json}

    # The model is stored like an upload, with the data version, and tagged as asked.
    models = {m["model"]: m for m in client.get("/api/models", headers=admin).json}
    model = models[job["model"]]
    assert model["data_version"] == trained_data["version"] and model["tags"] == ["production"]
    assert model["version"] == "3.6.21"
    assert client.get(f"/api/models/{job['model']}", headers=admin).status_code == 200
    assert [j["id"] for j in client.get(JOBS, headers=admin).json][0] == job["id"]


def test_a_model_rasa_refuses_to_train_fails_the_job_with_rasas_message(client, admin, stand_in, trained_data, database):
    stand_in.mode = "refuse"
    models_before = client.get("/api/models", headers=admin).json
    job = wait_for_job(client, admin, client.post(JOBS, json={}, headers=admin).json["id"])
    assert job["status"] == "failed" and not job["retryable"]
    assert "does not contain valid YAML. Error: intents missing" in job["error"]
    assert client.get("/api/models", headers=admin).json == models_before
    assert client.post(f"{JOBS}/{job['id']}/retry", headers=admin).status_code == 409


def test_a_crashing_worker_fails_the_job_as_retryable_and_a_retry_trains(client, admin, stand_in, trained_data):
    stand_in.mode = "crash"
    job = wait_for_job(client, admin, client.post(JOBS, json={"model_name": "after-crash"}, headers=admin).json["id"])
    assert job["status"] == "failed" and job["retryable"] and "out of memory" in job["error"]
    assert "after-crash" not in {m["model"] for m in client.get("/api/models", headers=admin).json}
    assert not [f for f in os.listdir(client.application.extensions["rasax"].settings.model_dir) if f.startswith(".")]

    stand_in.mode = "train"
    response = client.post(f"{JOBS}/{job['id']}/retry", headers=admin)
    assert response.status_code == 202 and response.json["status"] in ("queued", "running")
    job = wait_for_job(client, admin, job["id"])
    assert job["status"] == "finished" and job["attempts"] == 2 and job["error"] is None
    assert "after-crash" in {m["model"] for m in client.get("/api/models", headers=admin).json}


def test_an_unreachable_worker_is_a_503_naming_it_and_nothing_is_stored(env, admin, trained_data, database):
    down = make_app(env, f"http://127.0.0.1:{free_port()}")
    client = down.test_client()
    before = client.get(JOBS, headers=admin).headers["X-Total-Count"]
    response = client.post(JOBS, json={"tag": "production"}, headers=admin)
    assert response.status_code == 503, response.json
    assert response.json["reason"] == "rasa_unavailable" and "rasa-worker" in response.json["message"]
    assert env["RASA_TOKEN"] not in response.json["message"]
    assert client.get(JOBS, headers=admin).headers["X-Total-Count"] == before


def test_bad_requests_are_400_and_a_taken_name_409(client, admin, trained_data):
    client.post(JOBS, json={"model_name": "taken"}, headers=admin)
    wait_for_job(client, admin, client.get(JOBS, headers=admin).json[0]["id"])
    for body in ({"tag": "no spaces allowed"}, {"model_name": ""}, {"other": 1}, ["a"]):
        response = client.post(JOBS, json=body, headers=admin)
        assert response.status_code == 400 and response.json["reason"] == "bad_body", body
    assert client.post(JOBS, json={"model_name": "taken"}, headers=admin).status_code == 409
    assert client.get(f"{JOBS}/999999", headers=admin).status_code == 404


def test_two_requests_at_once_through_two_rasa_x_processes_run_one_training_at_a_time(
        client, admin, stand_in, trained_data, env, app):
    stand_in.delay = 1.5
    other = make_app(env, stand_in.url).test_client()
    answers = []
    threads = [threading.Thread(target=lambda c=c: answers.append(c.post(JOBS, json={}, headers=admin)))
               for c in (client, other)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [a.status_code for a in answers] == [202, 202]
    jobs = [wait_for_job(client, admin, a.json["id"], timeout=30) for a in answers]
    assert [j["status"] for j in jobs] == ["finished", "finished"]
    assert len(stand_in.trainings()) == 2 and stand_in.most_active == 1
    first, second = sorted(jobs, key=lambda j: j["started_at"])
    assert second["started_at"] >= first["finished_at"]


RASA_X_PROCESS = """
import dataclasses, sys
from services.backend import create_app, training_jobs
from services.common.config import load_settings
training_jobs.HEARTBEAT_SECONDS = 0.5
settings = dataclasses.replace(load_settings(), rasa_worker_host=sys.argv[2])
create_app(settings).run("127.0.0.1", int(sys.argv[1]), threaded=True)
"""


def test_a_job_running_when_rasa_x_is_killed_shows_as_failed_and_retryable(
        client, admin, stand_in, trained_data, env, monkeypatch, tmp_path):
    import requests

    stand_in.mode = "hang"
    port = free_port()
    log = open(tmp_path / "rasa-x.log", "w")
    process = subprocess.Popen([sys.executable, "-c", RASA_X_PROCESS, str(port), stand_in.url], cwd=ROOT,
                               env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: _answers(f"{base}/api/health"), 60, "the rasa-x process")
        job = requests.post(f"{base}{JOBS}", json={"model_name": "killed-midway"}, headers=admin, timeout=10).json()
        wait_until(lambda: stand_in.trainings(), 30, "the training request at the worker")
        # Alive: its heartbeat keeps the job running for anyone who looks.
        monkeypatch.setattr(training_jobs, "STALE_SECONDS", 3.0)
        wait_until(lambda: client.get(f"{JOBS}/{job['id']}", headers=admin).json["status"] == "running", 10, "running")
        process.kill()
        process.wait(10)
    finally:
        if process.poll() is None:
            process.kill()
        log.close()
    # Killed (SIGKILL: nothing of it could say goodbye): failed and retryable, with the reason.
    failed = wait_for_job(client, admin, job["id"], ("failed",), timeout=15)
    assert failed["retryable"] and "rasa-x stopped while this job was running" in failed["error"]
    assert "killed-midway" not in {m["model"] for m in client.get("/api/models", headers=admin).json}
    stand_in.release.set()
    stand_in.mode = "train"
    assert client.post(f"{JOBS}/{job['id']}/retry", headers=admin).status_code == 202
    assert wait_for_job(client, admin, job["id"])["status"] == "finished"
    assert "killed-midway" in {m["model"] for m in client.get("/api/models", headers=admin).json}


def _answers(url: str) -> bool:
    import requests

    try:
        return requests.get(url, timeout=1).status_code in (200, 503)
    except requests.RequestException:
        return False


def test_only_admins_may_train_and_viewers_may_list(client, admin, app, database):
    from services.backend.users import create_user

    settings = app.extensions["rasax"].settings
    with database[1].begin() as connection:
        create_user(connection, "jobs-annotator", "annotator-pw-123456", ["annotator"], settings.password_salt,
                    if_absent=True)
    token = client.post("/api/auth", json={"username": "jobs-annotator", "password": "annotator-pw-123456"}).json
    annotator = bearer(token["access_token"])
    assert client.post(JOBS, json={}, headers=annotator).status_code == 403
    assert client.get(JOBS, headers=annotator).status_code == 200


@pytest.fixture
def installation(tmp_path, app):
    """An installation folder as `init` leaves it, whose nginx port is this module's app served over HTTP."""
    import json

    from werkzeug.serving import make_server

    port = free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    folder = tmp_path / "rasa"
    (folder / "credentials").mkdir(parents=True)
    (folder / ".env").write_text("COMPOSE_PROJECT_NAME=rasax-train-cli\nRASA_X_USERNAME=admin\n")
    (folder / "credentials" / "RASA_X_PASSWORD").write_text(ADMIN_PASSWORD + "\n")
    (folder / "rasax-state.json").write_text(json.dumps({"render": {"http_port": f"127.0.0.1:{port}"}}))
    yield folder
    server.shutdown()
    thread.join(10)


def _cli(*args):
    from click.testing import CliRunner

    from cli import main

    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_cli_train_follows_the_job_to_the_tagged_model(client, admin, installation, trained_data, stand_in):
    import json

    stand_in.delay = 2.5  # long enough to see the job queued or running before it finishes
    result = _cli("train", "--dir", installation, "--tag", "cli-tag", "--name", "from-the-cli", "--json")
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    states = [line["state"] for line in lines if line.get("kind") == "job"]
    assert states[-1] == "finished" and len(states) >= 2
    assert lines[-1]["done"] and lines[-1]["job"]["model"] == "from-the-cli"
    models = {m["model"]: m for m in client.get("/api/models", headers=admin).json}
    assert models["from-the-cli"]["tags"] == ["cli-tag"]


def test_cli_train_says_why_rasa_refused_and_exits_1(installation, trained_data, stand_in):
    stand_in.mode = "refuse"
    result = _cli("train", "--dir", installation)
    assert result.exit_code == 1
    assert "failed: Rasa refused the training data" in result.output and "intents missing" in result.output


EVALUATIONS = "/api/projects/default/evaluations"


@pytest.fixture
def model(client, admin):
    import io

    from .rasa_stand_in import model_archive

    name = f"uploaded-{uuid.uuid4().hex[:6]}"
    response = client.post("/api/models", data={"model": (io.BytesIO(model_archive()), f"{name}.tar.gz")}, headers=admin)
    assert response.status_code == 201
    return name


def test_an_evaluation_with_the_worker_down_is_a_503_and_stores_nothing(env, admin, client, trained_data, model):
    down = make_app(env, f"http://127.0.0.1:{free_port()}").test_client()
    response = down.put(f"{EVALUATIONS}/{model}", headers=admin)
    assert response.status_code == 503 and "rasa-worker" in response.json["message"]
    assert down.get(f"{EVALUATIONS}/{model}", headers=admin).status_code == 404
    assert client.put(f"{EVALUATIONS}/no-such-model", headers=admin).status_code == 404


def test_a_model_the_worker_cannot_load_is_a_502_with_rasas_message(client, admin, stand_in, trained_data, model):
    stand_in.mode = "refuse"
    response = client.put(f"{EVALUATIONS}/{model}", headers=admin)
    assert response.status_code == 502 and "could not be loaded" in response.json["message"]
    assert response.json["reason"] == "rasa_refused"
    assert client.get(EVALUATIONS, headers=admin).json == []
