"""`upgrade` on a real stack: the installed version comes from rasax-state.json; an upgrade takes a
backup first, keeps every secret and all data and records the new version; a downgrade is
refused before anything is touched; an upgrade whose migrator fails leaves the running rasa-x
serving and names the restore that brings the installation back.

The older installation is this one with an older version recorded: building a real older
version's project image would replace the `rasax/rasa-x:<version>` image the other tests run.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from services import __version__
from tests.e2e.deployment import ROOT, Stack, cli, running_stack

pytestmark = [pytest.mark.docker, pytest.mark.timeout(900)]

OLDER = "0.0.1"


@pytest.fixture(scope="module")
def stack(docker_client, tmp_path_factory, request):
    with running_stack(docker_client, tmp_path_factory.mktemp("upgrade") / "rasa", "rxupgrade", request) as stack:
        response = requests.post(f"{stack.base}/api/users", headers={"Authorization": f"Bearer {stack.login()}"},
                                 json={"username": "kept", "password": "kept-password", "roles": ["tester"]},
                                 timeout=30)
        assert response.status_code == 201, response.text
        yield stack


def record_version(stack: Stack, version: str) -> None:
    state_file = stack.dir / "rasax-state.json"
    state = json.loads(state_file.read_text())
    state_file.write_text(json.dumps(dict(state, version=version)))


def secrets(stack: Stack) -> dict[str, bytes]:
    files = [stack.dir / ".env", *sorted((stack.dir / "credentials").iterdir()), *sorted((stack.dir / "auth").iterdir())]
    return {str(path.relative_to(stack.dir)): path.read_bytes() for path in files}


def backups(stack: Stack) -> set[Path]:
    folder = stack.dir / "backups"
    return set(folder.iterdir()) if folder.exists() else set()


def users(stack: Stack) -> list[str]:
    response = requests.get(f"{stack.base}/api/users", headers={"Authorization": f"Bearer {stack.login()}"}, timeout=30)
    assert response.status_code == 200, response.text
    return sorted(u["username"] for u in response.json())


def test_upgrade_backs_up_first_keeps_secrets_and_data_and_records_the_version(stack):
    record_version(stack, OLDER)
    before = secrets(stack)
    result = cli("upgrade", "--dir", str(stack.dir), "--json", "--timeout", "240")
    final = json.loads(result.stdout.splitlines()[-1])
    assert final["done"] and (final["from"], final["to"]) == (OLDER, __version__)
    archive = Path(final["backup"])
    assert archive in backups(stack) and archive.stat().st_mode & 0o777 == 0o600
    assert json.loads((stack.dir / "rasax-state.json").read_text())["version"] == __version__
    assert secrets(stack) == before
    assert users(stack) == ["admin", "kept"]
    login = requests.post(f"{stack.base}/api/auth", json={"username": "kept", "password": "kept-password"}, timeout=10)
    assert login.status_code == 200


def test_a_downgrade_is_refused_before_anything_changes(stack):
    newer = "99.0.0"
    record_version(stack, newer)
    try:
        made, containers = backups(stack), {c.name: c.id for c in stack.containers()}
        refused = cli("upgrade", "--dir", str(stack.dir), check=False)
        assert refused.returncode == 1
        assert f"runs rasax-deploy {newer}, newer than this one ({__version__}): downgrades are refused" in refused.stderr
        assert backups(stack) == made and {c.name: c.id for c in stack.containers()} == containers
        other = cli("upgrade", "--dir", str(stack.dir), "--to", "98.0.0", check=False)
        assert other.returncode == 1 and "it installs only itself" in other.stderr
    finally:
        record_version(stack, __version__)


def test_a_failed_migration_leaves_rasa_x_serving_and_names_the_restore(stack):
    record_version(stack, OLDER)
    override = stack.dir / "docker-compose.override.yml"
    # The migrator of the "new version" raises: it exits non-zero instead of reaching head.
    override.write_text('services:\n  db-migration:\n    command: ["python", "-c", '
                        '"raise SystemExit(\'migration 0099 raised on purpose\')"]\n')
    try:
        failed = cli("upgrade", "--dir", str(stack.dir), "--timeout", "60", check=False)
        assert failed.returncode == 1
        assert "the upgrade to" in failed.stderr and "db-migration" in failed.stderr
        archive = max(backups(stack), key=lambda p: p.stat().st_mtime)
        assert f"`rasax-deploy restore {archive} --dir {stack.dir} -y`" in failed.stderr
        # rasa-x, after the migrator in the roll, was not replaced: it still serves the data.
        assert requests.get(f"{stack.base}/api/health", timeout=10).status_code == 200
        assert users(stack) == ["admin", "kept"]
        assert json.loads((stack.dir / "rasax-state.json").read_text())["version"] == OLDER
    finally:
        override.unlink()
    # The cause gone, the same command finishes the upgrade.
    cli("upgrade", "--dir", str(stack.dir), "-q", "--timeout", "240")
    assert users(stack) == ["admin", "kept"]


def test_users_through_the_cli_after_the_upgrade(stack):
    """users create|update|delete|list on the upgraded installation, passwords on stdin only."""
    def users_cli(*args: str, password: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "cli", "users", *args, "--dir", str(stack.dir)], cwd=ROOT,
                              input=None if password is None else password + "\n", capture_output=True, text=True,
                              timeout=60)

    assert users_cli("create", "tess", "--role", "tester", "--password-stdin", password="tess-pass-1").returncode == 0
    updated = users_cli("update", "tess", "--role", "annotator", "--password-stdin", "--json", password="tess-pass-2")
    assert updated.returncode == 0 and json.loads(updated.stdout)["state"] == "updated"
    login = requests.post(f"{stack.base}/api/auth", json={"username": "tess", "password": "tess-pass-2"}, timeout=10)
    assert login.status_code == 200
    listed = {u["username"]: u["roles"] for u in json.loads(users_cli("list", "--json").stdout)}
    assert listed["tess"] == ["annotator"] and listed["admin"] == ["admin"]
    short = users_cli("create", "shorty", "--password-stdin", password="short")
    assert short.returncode == 1 and "8 to 1024 characters" in short.stderr
    last_admin = users_cli("delete", "admin", "-y")
    assert last_admin.returncode == 1 and "409 this would leave no admin" in last_admin.stderr
    assert users_cli("delete", "tess", "-y").returncode == 0
    assert "tess" not in {u["username"] for u in json.loads(users_cli("list", "--json").stdout)}
