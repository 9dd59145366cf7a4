"""`python -m services.backend` under gunicorn, driven by a real HTTP client as Rasa and ops do."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile

import pytest
import requests
import yaml

from .conftest import ADMIN_PASSWORD
from .serving import serving


def model_archive(seed: str, size: int = 300_000) -> bytes:
    """A gzipped tar shaped like a Rasa 3 model: metadata.json plus component files."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in (
            ("metadata.json", json.dumps({"trained_at": "2026-11-25T01:11:05.123456", "rasa_open_source_version": "3.6.21", "domain": {}}).encode()),
            ("components/train_DIETClassifier0/weights.bin", hashlib.sha256(seed.encode()).digest() * (size // 32)),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture(scope="module")
def server(backend_env, stored_events):
    with serving(backend_env, "rasa-x") as served:
        yield served.url
    # Secrets never reach the log, whatever was logged.
    for secret in (ADMIN_PASSWORD, backend_env["RASA_X_TOKEN"], backend_env["PASSWORD_SALT"], backend_env["REDIS_PASSWORD"]):
        assert secret not in served.output


@pytest.fixture(scope="module")
def session(server):
    http = requests.Session()
    response = http.post(f"{server}/api/auth", json={"username": "admin", "password": ADMIN_PASSWORD}, timeout=10)
    assert response.status_code == 200
    http.headers["Authorization"] = f"Bearer {response.json()['access_token']}"
    return http


def test_rasa_pulls_a_model_through_the_model_server(server, session, backend_env):
    token = backend_env["RASA_X_TOKEN"]
    archive = model_archive("first")
    upload = session.post(f"{server}/api/models", files={"model": ("moodbot-1.tar.gz", archive)}, timeout=30)
    assert upload.status_code == 201, upload.text
    assert upload.json()["version"] == "3.6.21"
    pull = f"{server}/api/models/tags/production"
    # Untagged yet: 404, as Rasa expects while no model is live.
    assert requests.get(pull, params={"token": token}, timeout=10).status_code == 404
    assert session.put(f"{server}/api/models/moodbot-1/tags/production", timeout=10).status_code == 204

    # Rasa's first pull sends a random If-None-Match.
    first = requests.get(pull, params={"token": token}, headers={"If-None-Match": "f00"}, timeout=30, stream=True)
    assert first.status_code == 200
    body = b"".join(first.iter_content(65536))
    assert body == archive
    assert first.headers["ETag"] == hashlib.sha256(archive).hexdigest()
    assert first.headers["filename"] == "moodbot-1.tar.gz"

    again = requests.get(pull, params={"token": token}, headers={"If-None-Match": first.headers["ETag"]}, timeout=10)
    assert again.status_code == 204 and again.content == b""
    legacy = requests.get(f"{server}/api/projects/default/models/tags/production", params={"token": token},
                          headers={"If-None-Match": first.headers["ETag"]}, timeout=10)  # fmt: skip
    assert legacy.status_code == 204

    for params in ({"token": "wrong"}, {}, {"api_token": token}):
        refused = requests.get(pull, params=params, timeout=10)
        assert refused.status_code == 401 and refused.json()["reason"] == "invalid_token"

    # A new model goes live: the old ETag now gets the new file.
    second = model_archive("second")
    assert session.post(f"{server}/api/models", files={"model": ("moodbot-2.tar.gz", second)}, timeout=30).status_code == 201
    assert session.put(f"{server}/api/models/moodbot-2/tags/production", timeout=10).status_code == 204
    moved = requests.get(pull, params={"token": token}, headers={"If-None-Match": first.headers["ETag"]}, timeout=30)
    assert moved.status_code == 200 and moved.content == second
    assert moved.headers["filename"] == "moodbot-2.tar.gz"

    listed = {m["model"]: m for m in session.get(f"{server}/api/models", timeout=10).json()}
    assert listed["moodbot-2"]["tags"] == ["production"] and listed["moodbot-1"]["tags"] == []
    assert session.get(f"{server}/api/models/moodbot-1", timeout=10).content == archive
    assert session.delete(f"{server}/api/models/moodbot-2", timeout=10).status_code == 204
    assert not os.path.exists(os.path.join(backend_env["RASA_MODEL_DIR"], "moodbot-2.tar.gz"))
    assert requests.get(pull, params={"token": token}, timeout=10).status_code == 404


def test_uploads_that_are_not_rasa_models_are_refused(server, session):
    plain = io.BytesIO()
    with tarfile.open(fileobj=plain, mode="w:gz") as archive:
        info = tarfile.TarInfo("readme.txt")
        archive.addfile(info, io.BytesIO(b""))
    for name, data, reason in (
        ("junk.tar.gz", b"not a tar at all", "bad_model"),
        ("plain.tar.gz", plain.getvalue(), "bad_model"),
        ("../../etc/evil.tar.gz", model_archive("x"), None),
        ("bad name!.tar.gz", model_archive("x"), "bad_model_name"),
    ):
        response = session.post(f"{server}/api/models", files={"model": (name, data)}, timeout=30)
        if reason is None:
            # The client's path is dropped: the model is stored under its base name only.
            assert response.status_code == 201 and response.json()["model"] == "evil"
        else:
            assert response.status_code == 400 and response.json()["reason"] == reason, response.text
    assert session.post(f"{server}/api/models", files={"model": ("evil.tar.gz", model_archive("y"))}, timeout=30).status_code == 409
    assert session.post(f"{server}/api/models", data={"x": "y"}, timeout=30).status_code == 400


def test_config_endpoint_gives_rasa_its_endpoints_and_credentials(server, backend_env):
    response = requests.get(f"{server}/api/config", params={"token": backend_env["RASA_X_TOKEN"]}, timeout=10)
    assert response.status_code == 200
    endpoints = yaml.safe_load(response.json()["endpoints"])
    credentials = yaml.safe_load(response.json()["credentials"])
    assert endpoints["models"] == {
        "url": "http://rasa-x:5002/api/projects/default/models/tags/production",
        "token": backend_env["RASA_X_TOKEN"],
        "wait_time_between_pulls": 10,
    }
    broker = endpoints["event_broker"]
    assert broker["type"] == "pika" and broker["queues"] == ["rasa_production_events"]
    assert broker["exchange_name"] == "rasa-exchange" and broker["username"] == backend_env["RABBITMQ_USERNAME"]
    # The test vhost is not "/", so it travels as the path of an amqp:// URL.
    assert broker["url"] == f"amqp://127.0.0.1/{backend_env['RABBITMQ_VHOST']}"
    assert broker["port"] == int(backend_env["RABBITMQ_PORT"])
    tracker = endpoints["tracker_store"]
    assert (tracker["type"], tracker["dialect"], tracker["db"], tracker["login_db"]) == (
        "sql", "postgresql", "tracker", backend_env["DB_DATABASE"],
    )  # fmt: skip
    assert endpoints["lock_store"]["type"] == "redis" and endpoints["lock_store"]["db"] == 1
    assert credentials == {"rest": None, "rasa": {"url": "http://rasa-x:5002/api"}}
    assert endpoints["action_endpoint"] == {"url": "http://app:5055/webhook"}
    assert requests.get(f"{server}/api/config", params={"token": "nope"}, timeout=10).status_code == 401
    # The worker trains and evaluates: actions only, no model server, tracker store nor broker.
    worker = requests.get(f"{server}/api/config", params={"token": backend_env["RASA_X_TOKEN"], "environment": "worker"},
                          timeout=10)
    assert yaml.safe_load(worker.json()["endpoints"]) == {"action_endpoint": {"url": "http://app:5055/webhook"}}
    bad = requests.get(f"{server}/api/config", params={"token": backend_env["RASA_X_TOKEN"], "environment": "x"},
                       timeout=10)
    assert bad.status_code == 400 and bad.json()["reason"] == "bad_environment"


def test_health_version_and_conversations_over_http(server, session):
    health = requests.get(f"{server}/api/health", timeout=10).json()
    assert health["status"] == "ok" and health["database"]["migration"]["status"] == "completed"
    assert health["cache"]["status"] == "ok" and health["event_broker"]["status"] == "ok"
    assert health["rasa"]["production"]["status"] == "unavailable"
    version = requests.get(f"{server}/api/version", timeout=10).json()
    assert version["keys"][0]["key"].startswith("-----BEGIN PUBLIC KEY-----")
    response = session.get(f"{server}/api/conversations", params={"limit": 3}, timeout=10)
    assert response.status_code == 200 and len(response.json()) == 3
    assert int(response.headers["X-Total-Count"]) > 3
    assert requests.get(f"{server}/api/conversations", timeout=10).status_code == 401
