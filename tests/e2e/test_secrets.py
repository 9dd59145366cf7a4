"""Secrets and least privilege on a real stack: after a session that used every credential of the
installation the way users and Rasa do (log-in with the admin password, ?api_token=, a model pull
with ?token=RASA_X_TOKEN, Rasa's runtime config, a call to Rasa with ?token=RASA_TOKEN, a referrer
that carries a token), no container's log holds any of them; each container holds only the
secrets its service reads; nginx does not announce its version.

One bring-up with its own project name and a free port; everything is removed at the end.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import uuid

import pytest
import requests

from tests.conftest import free_port

pytestmark = [pytest.mark.docker, pytest.mark.timeout(1200)]

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "cli", *args], capture_output=True, text=True, timeout=900, cwd=ROOT)
    if check and result.returncode != 0:
        pytest.fail(f"rasax-deploy {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


def model_archive() -> bytes:
    """A gzipped tar shaped like a Rasa 3 model: what rasa-x accepts and serves."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in (("metadata.json", json.dumps({"trained_at": "2026-11-25T01:11:05", "domain": {}}).encode()),
                           ("components/weights.bin", os.urandom(4096))):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def use_every_secret(base: str, secrets: dict[str, str]) -> dict[str, str]:
    """A session through nginx; returns the secrets it was given on the way (the api_token, the JWT)."""
    password, rasa_x_token = secrets["RASA_X_PASSWORD"], secrets["RASA_X_TOKEN"]
    # A client that puts the password in the query string as well as in the body.
    login = requests.post(f"{base}/api/auth", params={"password": password},
                          json={"username": "admin", "password": password}, timeout=10)
    assert login.status_code == 200, login.text
    jwt = login.json()["access_token"]
    bearer = {"Authorization": f"Bearer {jwt}"}
    api_token = requests.get(f"{base}/api/user", headers=bearer, timeout=10).json()["api_token"]
    assert api_token

    # The API with ?api_token=, once from a page whose address carries it (the browser's referrer).
    page = f"{base}/conversations?api_token={api_token}&view=all"
    assert requests.get(f"{base}/api/conversations", params={"api_token": api_token, "limit": 5},
                        headers={"Referer": page}, timeout=10).status_code == 200

    # A model uploaded and tagged, then pulled as Rasa pulls it: ?token=RASA_X_TOKEN.
    upload = requests.post(f"{base}/api/models", headers=bearer, data={"name": "secrets-e2e"},
                           files={"model": ("secrets-e2e.tar.gz", model_archive())}, timeout=30)
    assert upload.status_code in (200, 201), upload.text
    tag = requests.put(f"{base}/api/models/secrets-e2e/tags/production", headers=bearer, timeout=10)
    assert tag.status_code in (200, 204), tag.text
    pull = requests.get(f"{base}/api/projects/default/models/tags/production", params={"token": rasa_x_token},
                        timeout=30)
    assert pull.status_code == 200 and pull.content[:2] == b"\x1f\x8b"
    again = requests.get(f"{base}/api/projects/default/models/tags/production", params={"token": rasa_x_token},
                         headers={"If-None-Match": pull.headers["ETag"]}, timeout=10)
    assert again.status_code == 204
    # The runtime config Rasa reads (it holds the broker and database passwords: for Rasa only).
    config = requests.get(f"{base}/api/config", params={"token": rasa_x_token}, timeout=10)
    assert config.status_code == 200 and secrets["DB_PASSWORD"] in config.text

    # Rasa's own token on /core/, as rasa-x and operators call Rasa's HTTP API: rasa-production
    # answers (409 while the model above, which is no real assistant, cannot be loaded).
    core = requests.get(f"{base}/core/status", params={"token": secrets["RASA_TOKEN"]},
                        headers={"Referer": f"{base}/?token={secrets['RASA_TOKEN']}"}, timeout=15)
    assert core.status_code in (200, 409), core.text
    missing = requests.get(f"{base}/nope", timeout=15)
    assert "nginx/" not in missing.text  # an error page does not show the version either
    return {"api_token": api_token, "jwt": jwt}


def test_no_log_holds_a_secret_and_no_container_one_it_does_not_read(docker_client, tmp_path):
    folder = tmp_path / "rasa"
    project = f"rxsecrets{uuid.uuid4().hex[:8]}"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    try:
        cli("up", "--dir", str(folder), "-p", project, "--http-port", f"127.0.0.1:{port}", "-q", "--timeout", "600")
        secrets = {path.name: path.read_text().strip() for path in (folder / "credentials").iterdir()}
        assert len(secrets) == 8

        # nginx names itself without its version.
        assert requests.get(f"{base}/robots.txt", timeout=5).headers["Server"] == "nginx"

        secrets.update(use_every_secret(base, secrets))

        containers = docker_client.containers.list(all=True, filters={"label": f"com.docker.compose.project={project}"})
        names = {c.labels["com.docker.compose.service"]: c for c in containers}
        assert set(names) == {"db", "rabbit", "redis", "db-migration", "event-service", "rasa-x", "nginx",
                              "rasa-production", "rasa-worker", "app"}
        logs = {name: c.logs(stdout=True, stderr=True).decode(errors="replace") for name, c in names.items()}
        for path in (folder / "logs").rglob("*"):
            if path.is_file():
                logs[f"logs/{path.relative_to(folder / 'logs')}"] = path.read_text(errors="replace")
        leaks = [f"{secret} in the log of {where}" for where, text in logs.items()
                 for secret, value in secrets.items() if value in text]
        assert leaks == []
        # The requests were logged, with their credentials redacted: the test saw the lines it checks.
        assert "/api/conversations?api_token=***&limit=5" in logs["nginx"]
        assert "/api/projects/default/models/tags/production?token=*** " in logs["nginx"]
        assert f'"{base}/conversations?api_token=***&view=all"' in logs["nginx"]

        # Least privilege: a container's environment holds only the secrets its service reads.
        held = {}
        for name, container in names.items():
            env = dict(item.split("=", 1) for item in container.attrs["Config"]["Env"])
            held[name] = sorted(secret for secret, value in secrets.items() if value in env.values())
        assert held["db-migration"] == ["DB_PASSWORD"]
        assert held["event-service"] == ["DB_PASSWORD", "RABBITMQ_PASSWORD"]
        assert held["rasa-x"] == sorted(["DB_PASSWORD", "RABBITMQ_PASSWORD", "REDIS_PASSWORD", "RASA_X_TOKEN",
                                         "RASA_TOKEN", "PASSWORD_SALT", "RASA_X_PASSWORD"])
        # The Rasa servers: their command line's tokens only; the rest comes from /api/config.
        assert held["rasa-production"] == held["rasa-worker"] == ["JWT_SECRET", "RASA_TOKEN", "RASA_X_TOKEN"]
        assert (held["db"], held["rabbit"], held["redis"], held["nginx"], held["app"]) == (
            ["DB_PASSWORD"], ["RABBITMQ_PASSWORD"], ["REDIS_PASSWORD"], [], [])
    finally:
        cli("down", "--dir", str(folder), "-p", project, "--volumes", "-y", check=False)
        for volume in docker_client.volumes.list(filters={"label": f"com.docker.compose.project={project}"}):
            volume.remove(force=True)
