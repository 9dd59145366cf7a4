"""`rasax-deploy migrate` / `migration-status` on an installation by its folder.

The stack's PostgreSQL is not published on the host, so the CLI runs the migrator inside the
stack. Run here with no DB_* (nor RASAX_*) in the environment: only --dir says where to work.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from services.db_migration.migrator import head_revision
from tests.conftest import free_port

pytestmark = [pytest.mark.docker, pytest.mark.timeout(1500)]

ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "RASAX_"))}
    result = subprocess.run([sys.executable, "-m", "cli", *args], capture_output=True, text=True,
                            timeout=timeout, cwd=ROOT, env=env)
    print(f"$ rasax-deploy {' '.join(args)} → {result.returncode}\n{result.stdout}{result.stderr}")
    return result


def psql(docker_client, project: str, directory: Path, sql: str) -> str:
    from deploy.layout import parse_env

    env = parse_env((directory / ".env").read_text())
    db = docker_client.containers.get(f"{project}_db_1")
    code, output = db.exec_run(["psql", "-h", "127.0.0.1", "-U", env["DB_USER"], "-d", env["DB_DATABASE"],
                                "-tAc", sql], environment={"PGPASSWORD": env["DB_PASSWORD"]})
    assert code == 0, output.decode()
    return output.decode().strip()


def test_migrate_and_migration_status_work_on_an_installation_by_its_folder(docker_client, tmp_path):
    project = f"rxmig{uuid.uuid4().hex[:8]}"
    directory = tmp_path / "rasa"
    where = ["--dir", str(directory)]
    try:
        up = cli("up", *where, "--project-name", project, "--http-port", f"127.0.0.1:{free_port()}", "--no-rasa", "-q")
        assert up.returncode == 0, up.stderr
        head = head_revision()

        current = cli("migration-status", *where, "--json")
        assert current.returncode == 0, current.stderr
        assert json.loads(current.stdout) == {"status": "completed", "current_revision": head,
                                              "target_revision": head, "progress_in_percent": 100.0,
                                              "reason": None}
        again = cli("migrate", *where, "--json")
        assert again.returncode == 0, again.stderr
        states = [json.loads(line) for line in again.stdout.splitlines()]
        assert states[-1]["status"] == "completed" and "in_progress" not in [s["status"] for s in states]

        # A database that forgot its revision: status says behind (exit 3), and a migrate that then
        # fails (its tables exist) ends with the migrator's own one line, relayed from the stack.
        psql(docker_client, project, directory, "DELETE FROM alembic_version")
        behind = cli("migration-status", *where)
        assert behind.returncode == 3, behind.stderr
        assert behind.stdout.splitlines()[0] == "status:   pending"
        assert "current:  (empty database)" in behind.stdout
        failed = cli("migrate", *where)
        assert failed.returncode == 1
        assert failed.stderr.startswith("error: migration failed, the database was left at None"), failed.stderr
        assert len(failed.stderr.strip().splitlines()) == 1
        psql(docker_client, project, directory, f"INSERT INTO alembic_version VALUES ('{head}')")
        assert cli("migration-status", *where).returncode == 0

        # Each run's one-off container is gone afterwards; the stack is as it was.
        names = [c.name for c in docker_client.containers.list(
            all=True, filters={"label": f"com.docker.compose.project={project}"})]
        assert not [n for n in names if "_run_" in n], names
        assert cli("status", *where).returncode == 0
    finally:
        cli("down", *where, "--volumes", "-y")
