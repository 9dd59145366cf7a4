"""`python -m services.db_migration` and the `rasax-deploy migrate` commands as a user runs them."""

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from services.db_migration.migrator import head_revision
from tests.conftest import db_env, free_port

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def _get(port, path):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "RASAX_"))}
    env.update(extra)
    return env


def test_service_migrates_and_serves_its_status(empty_database):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "services.db_migration"],
        env=_env(**db_env(empty_database), SELF_PORT=str(port)),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        seen = []
        while time.monotonic() < deadline:
            try:
                status, body = _get(port, "/")
            except (ConnectionError, urllib.error.URLError):
                time.sleep(0.05)
                continue
            seen.append(body["status"])
            if body["status"] == "completed":
                break
            time.sleep(0.05)
        assert body == {
            "status": "completed",
            "current_revision": head_revision(),
            "target_revision": head_revision(),
            "progress_in_percent": 100.0,
            "reason": None,
        }
        assert set(seen) <= {"pending", "in_progress", "completed"}
        assert _get(port, "/health") == (200, {"status": "completed", "reason": ""})
    finally:
        process.terminate()
        output = process.communicate(timeout=20)[0].decode()
    assert process.returncode == 0, output
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    assert any(line["message"].startswith("schema is at") for line in lines)
    assert all(line["service"] == "db-migration" for line in lines)


def _cli(*args, env):
    return subprocess.run(
        [sys.executable, os.path.join(ROOT, "cli.py"), *args], env=env, capture_output=True, text=True, timeout=120
    )


def test_cli_migrate_then_status(empty_database):
    env = _env(**db_env(empty_database))
    behind = _cli("migration-status", "--json", env=env)
    assert behind.returncode == 3
    assert json.loads(behind.stdout)["status"] == "pending"

    first = _cli("migrate", env=env)
    assert first.returncode == 0, first.stderr
    assert "in_progress" in first.stdout and "completed" in first.stdout

    again = _cli("migrate", "--json", env=env)
    assert again.returncode == 0
    states = [json.loads(line)["status"] for line in again.stdout.splitlines()]
    assert "in_progress" not in states and states[-1] == "completed"

    current = _cli("migration-status", "--json", env=env)
    assert current.returncode == 0
    assert json.loads(current.stdout)["current_revision"] == head_revision()


@pytest.mark.parametrize(
    "override, variable",
    [
        ({"DB_PORT": "not-a-port"}, "DB_PORT"),
        ({"DB_HOST": "postgresql://127.0.0.1:5432/rasa"}, "DB_HOST"),
        ({"DB_PASSWORD": ""}, "DB_PASSWORD"),
    ],
)
def test_broken_database_settings_give_one_line_naming_the_variable(empty_database, override, variable):
    result = _cli("migrate", env=_env(**{**db_env(empty_database), **override}))
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert variable in lines[0]
    assert "Traceback" not in result.stderr


def test_unreachable_database_gives_one_line_naming_the_variables(empty_database):
    closed = free_port()
    result = _cli("migrate", env=_env(**{**db_env(empty_database), "DB_PORT": str(closed)}))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"127.0.0.1:{closed}" in lines[0] and "DB_HOST" in lines[0] and "DB_PORT" in lines[0]


def test_service_exits_with_the_variable_on_bad_config(empty_database):
    result = subprocess.run(
        [sys.executable, "-m", "services.db_migration"],
        env=_env(**{**db_env(empty_database), "SELF_PORT": "eighty"}),
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == "configuration error: SELF_PORT: must be a port number, got 'eighty'"


def test_version_and_help():
    from services import __version__

    result = subprocess.run([sys.executable, os.path.join(ROOT, "cli.py"), "--version"], capture_output=True, text=True)
    assert result.stdout.strip() == f"rasax-deploy, version {__version__}"
    help_text = subprocess.run([sys.executable, os.path.join(ROOT, "cli.py"), "--help"], capture_output=True, text=True).stdout
    assert "migrate" in help_text and "migration-status" in help_text
