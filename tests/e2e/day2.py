"""Data in every place a backup, a restore or an upgrade must carry, and what the API says of it:
the day-2 tests fill a stack with `fill` and compare `snapshot`s taken before and after."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import requests

from tests.conftest import FIXTURES_DIR
from tests.e2e.deployment import ROOT, Stack, fake_model, publish_fixtures, read_env

MOODBOT = Path(FIXTURES_DIR) / "moodbot"
USER_PASSWORD = "annotator-pass-1"
TRACKER_ROWS = [("alice", "user", 1700000000.5, '{"text": "hi"}'), ("alice", "bot", 1700000001.0, '{"text": "hey"}'),
                ("bob", "action", 1700000002.25, '{"name": "action_listen"}')]
# The installation's own override: RabbitMQ published on a loopback port, to send Rasa's captures.
RABBIT_ON_LOOPBACK = "services:\n  rabbit:\n    ports:\n      - \"127.0.0.1::5672\"\n"


def psql(stack: Stack, sql: str, database: str = "postgres") -> str:
    container = stack.docker_client.containers.get(f"{stack.project}_db_1")
    code, output = container.exec_run(["psql", "-U", "admin", "-d", database, "-v", "ON_ERROR_STOP=1", "-tAc", sql])
    assert code == 0, output.decode()
    return output.decode().strip()


def api(stack: Stack, token: str, method: str, path: str, expect: int = 200, **kwargs):
    response = requests.request(method, f"{stack.base}{path}", headers={"Authorization": f"Bearer {token}"},
                                timeout=30, **kwargs)
    assert response.status_code == expect, f"{method} {path}: {response.status_code} {response.text}"
    return response


def admin_password(stack: Stack) -> str:
    return (stack.dir / "credentials" / "RASA_X_PASSWORD").read_text().strip()


def snapshot(stack: Stack, password: str) -> dict:
    """Everything the API says about the data a backup must carry."""
    token = requests.post(f"{stack.base}/api/auth", json={"username": "admin", "password": password},
                          timeout=10).json()["access_token"]
    conversations = api(stack, token, "GET", "/api/conversations", params={"limit": 100}).json()
    return {
        "users": api(stack, token, "GET", "/api/users").json(),
        "conversations": conversations,
        "events": {c["sender_id"]: api(stack, token, "GET", f"/api/conversations/{c['sender_id']}").json()
                   for c in conversations},
        "conversation_tags": api(stack, token, "GET", "/api/conversations/tags").json(),
        "models": api(stack, token, "GET", "/api/models").json(),
        # As Rasa pulls it: with RASA_X_TOKEN, which must have come back with the other secrets.
        "production_model": requests.get(f"{stack.base}/api/models/tags/production", timeout=30, params={
            "token": read_env(stack.dir)["RASA_X_TOKEN"]}).content,
        "training_examples": api(stack, token, "GET", "/api/projects/default/training_examples",
                                 params={"limit": 1000}).json(),
        "domain": api(stack, token, "GET", "/api/domain").json(),
    }


def secrets(stack: Stack) -> dict[str, bytes]:
    """.env, credentials/ and auth/ (the key pair), byte for byte."""
    files = [stack.dir / ".env", *sorted((stack.dir / "credentials").iterdir()), *sorted((stack.dir / "auth").iterdir())]
    return {str(path.relative_to(stack.dir)): path.read_bytes() for path in files}


def assert_secrets_kept(before: dict[str, bytes], after: dict[str, bytes]) -> None:
    """Every secret file byte for byte; .env as it was, plus only what a newer version appends
    (a variable it knows that the installation's .env lacks)."""
    assert {k: v for k, v in after.items() if k != ".env"} == {k: v for k, v in before.items() if k != ".env"}
    assert after[".env"].startswith(before[".env"]), (before[".env"], after[".env"])


def tracker_rows(stack: Stack) -> str:
    return psql(stack, "SELECT sender_id, type_name, timestamp, data FROM events ORDER BY id", "tracker")


def fill(stack: Stack) -> None:
    """A user made with `users create`, Rasa's captured conversations through the broker, a
    conversation tag, moodbot's training data, a model tagged production and rows in a
    tracker database the way Rasa's SQL tracker store keeps them. The stack's override must be
    RABBIT_ON_LOOPBACK."""
    created = subprocess.run([sys.executable, "-m", "cli", "users", "create", "ann", "--role", "annotator",
                              "--name", "Ann", "--password-stdin", "--dir", str(stack.dir)],
                             input=USER_PASSWORD + "\n", capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert created.returncode == 0, created.stderr
    senders = publish_fixtures(stack)
    assert senders <= stack.wait_for_senders(senders)
    token = stack.login()
    api(stack, token, "POST", "/api/conversations/alice/tags", expect=201, json=[{"value": "reviewed", "color": "#ff0000"}])
    files = [("files", (path.name, path.read_bytes())) for path in
             (MOODBOT / "domain.yml", MOODBOT / "config.yml", *sorted((MOODBOT / "data").glob("*.yml")))]
    api(stack, token, "POST", "/api/projects/default/import", files=files)
    api(stack, token, "POST", "/api/models", expect=201, files={"model": ("moodbot.tar.gz", fake_model())})
    api(stack, token, "PUT", "/api/models/moodbot/tags/production", expect=204)
    # Rasa's SQL tracker store: its own database on the same server, created by Rasa on first start.
    psql(stack, "CREATE DATABASE tracker")
    psql(stack, "CREATE TABLE events (id serial PRIMARY KEY, sender_id varchar(255) NOT NULL, "
                "type_name varchar(255) NOT NULL, timestamp float, data text)", "tracker")
    values = ", ".join(f"('{s}', '{t}', {ts}, '{d}')" for s, t, ts, d in TRACKER_ROWS)
    psql(stack, f"INSERT INTO events (sender_id, type_name, timestamp, data) VALUES {values}", "tracker")


def record_version(stack: Stack, version: str) -> None:
    """As if rasax-deploy `version` had made the installation (the state file's `version`)."""
    state_file = stack.dir / "rasax-state.json"
    state = json.loads(state_file.read_text())
    state_file.write_text(json.dumps(dict(state, version=version)))


def json_lines(result: subprocess.CompletedProcess) -> list[dict]:
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
