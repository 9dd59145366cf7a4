"""`upgrade` on a real stack: the installed version comes from rasax-state.json; an upgrade takes a
backup first, keeps every secret and all data and records the new version; a downgrade is
refused before anything is touched; an upgrade whose migration raises leaves the running rasa-x
serving, and the `restore` its failure message prints brings every answer of the API back.

The older installation here is this one with an older version recorded (quick; the upgrade from
a real older rasax-deploy, built from an older commit, is test_upgrade_from_older.py).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from services import __version__
from tests.e2e.day2 import (RABBIT_ON_LOOPBACK, USER_PASSWORD, admin_password, assert_secrets_kept, fill, record_version,
                            secrets, snapshot)
from tests.e2e.deployment import ROOT, Stack, cli, running_stack

pytestmark = [pytest.mark.docker, pytest.mark.timeout(1800)]

OLDER = "0.0.1"
# The migrator of the "new version": while logs/raise-in-migration exists (logs/ is not in a
# backup: the restore cannot bring the flag back), a migration that deletes the conversations'
# tags and then raises, half done, as a non-transactional migration would; else the real one.
FAILING_MIGRATOR = """  db-migration:
    command:
      - python
      - -c
      - |
        import pathlib, runpy
        import sqlalchemy as sa
        from services.common.config import database_settings
        from services.common.db import create_engine
        if pathlib.Path("/app/logs/raise-in-migration").exists():
            with create_engine(database_settings(), pool_size=1).begin() as connection:
                connection.execute(sa.text("DELETE FROM conversation_to_tag_mapping"))
            raise SystemExit("migration 0099 raised on purpose, half done")
        runpy.run_module("services.db_migration", run_name="__main__", alter_sys=True)
"""


@pytest.fixture(scope="module")
def stack(docker_client, tmp_path_factory, request):
    directory = tmp_path_factory.mktemp("upgrade") / "rasa"
    directory.mkdir()
    (directory / "docker-compose.override.yml").write_text(RABBIT_ON_LOOPBACK)
    with running_stack(docker_client, directory, "rxupgrade", request) as stack:
        fill(stack)
        yield stack


def backups(stack: Stack) -> set[Path]:
    folder = stack.dir / "backups"
    return set(folder.iterdir()) if folder.exists() else set()


def test_upgrade_backs_up_first_keeps_secrets_and_data_and_records_the_version(stack):
    record_version(stack, OLDER)
    before, kept = snapshot(stack, admin_password(stack)), secrets(stack)
    result = cli("upgrade", "--dir", str(stack.dir), "--json", "--timeout", "600")
    final = json.loads(result.stdout.splitlines()[-1])
    assert final["done"] and (final["from"], final["to"]) == (OLDER, __version__)
    archive = Path(final["backup"])
    assert archive in backups(stack) and archive.stat().st_mode & 0o777 == 0o600
    assert json.loads((stack.dir / "rasax-state.json").read_text())["version"] == __version__
    assert_secrets_kept(kept, secrets(stack))
    assert snapshot(stack, admin_password(stack)) == before
    login = requests.post(f"{stack.base}/api/auth", json={"username": "ann", "password": USER_PASSWORD}, timeout=10)
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


def test_a_failed_migration_leaves_rasa_x_serving_and_the_printed_restore_brings_everything_back(stack):
    password = admin_password(stack)
    before, kept = snapshot(stack, password), secrets(stack)
    assert before["conversation_tags"]
    record_version(stack, OLDER)
    override, flag = stack.dir / "docker-compose.override.yml", stack.dir / "logs" / "raise-in-migration"
    override.write_text(RABBIT_ON_LOOPBACK + FAILING_MIGRATOR)
    flag.write_text("")
    try:
        failed = cli("upgrade", "--dir", str(stack.dir), "--timeout", "60", check=False)
        assert failed.returncode == 1
        assert "the upgrade to" in failed.stderr and "db-migration" in failed.stderr
        printed = re.search(r"`rasax-deploy (restore (\S+) --dir (\S+) -y)`", failed.stderr)
        assert printed, failed.stderr
        assert Path(printed[2]) == max(backups(stack), key=lambda p: p.stat().st_mtime)
        assert Path(printed[3]) == stack.dir
        # rasa-x, after the migrator in the roll, was not replaced: it still serves, but the half
        # done migration took the conversations' tags.
        assert requests.get(f"{stack.base}/api/health", timeout=10).status_code == 200
        assert json.loads((stack.dir / "rasax-state.json").read_text())["version"] == OLDER
        damaged = snapshot(stack, password)
        assert damaged["users"] == before["users"] and damaged != before
    finally:
        flag.unlink()  # the cause gone (the fixed release), the override stays: it is the user's
    # The way back, exactly as printed.
    cli(*printed[1].split(), "--timeout", "600")
    assert snapshot(stack, password) == before
    assert_secrets_kept(kept, secrets(stack))
    override.write_text(RABBIT_ON_LOOPBACK)


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
