"""`upgrade` across a PostgreSQL major version: the dump-and-restore step, for real.

The installation runs PostgreSQL 13 (rasax/postgres:13, built from Debian bullseye, which ships
13, where the stack's image comes from bookworm's 15): the state an installation made by an
older rasax-deploy is in. Here its db runs 13 through the operator's override, removed before the
upgrade, as the newer rasax-deploy's compose file names 15. A 15 server refuses the 13 data
folder, so `upgrade` must back up from the 13 server still running (not replace it first), then
restore the dumps into a new 15 cluster: every API answer, Rasa's tracker rows and every secret
the same after, the 13 backup kept as the way back.
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from deploy import images
from services import __version__
from tests.e2e.day2 import (RABBIT_ON_LOOPBACK, admin_password, assert_secrets_kept, fill, json_lines, psql,
                            record_version, secrets, snapshot, tracker_rows)
from tests.e2e.deployment import Stack, cli, running_stack

pytestmark = [pytest.mark.docker, pytest.mark.timeout(2400)]

OLDER_MAJOR = 13
OLDER_IMAGE = f"rasax/postgres:{OLDER_MAJOR}"


@pytest.fixture(scope="module")
def older_postgres(docker_client):
    images.build_postgres(docker_client, OLDER_MAJOR, print)  # kept when up to date
    yield OLDER_IMAGE
    try:
        docker_client.images.remove(OLDER_IMAGE)
    except Exception as exc:  # a container of another run still uses it
        print(f"{OLDER_IMAGE} not removed: {exc}")


def db(stack: Stack) -> tuple[str, int]:
    """The db container's image and the server's major version."""
    container = stack.docker_client.containers.get(f"{stack.project}_db_1")
    return container.image.tags[0], int(psql(stack, "SHOW server_version_num")) // 10000


def test_upgrade_dumps_postgres_13_and_restores_into_15(older_postgres, docker_client, tmp_path, request):
    directory = tmp_path / "rasa"
    directory.mkdir()
    override = directory / "docker-compose.override.yml"
    override.write_text(RABBIT_ON_LOOPBACK + f"  db:\n    image: {older_postgres}\n")
    with running_stack(docker_client, directory, "rxpgmajor", request) as stack:
        assert db(stack) == (older_postgres, OLDER_MAJOR)
        fill(stack)
        password = admin_password(stack)
        before, tracker, kept = snapshot(stack, password), tracker_rows(stack), secrets(stack)
        override.write_text(RABBIT_ON_LOOPBACK)  # the newer rasax-deploy's compose names 15
        record_version(stack, "0.0.1")

        result = cli("upgrade", "--dir", str(directory), "--json", "--timeout", "600")
        lines = json_lines(result)
        assert any(f"PostgreSQL {OLDER_MAJOR} → 15: dump and restore" in json.dumps(line, ensure_ascii=False)
                   for line in lines), result.stdout
        final = lines[-1]
        assert final["done"] and final["to"] == __version__
        assert db(stack) == (images.STACK_IMAGES["postgres"], 15)
        assert snapshot(stack, password) == before
        assert tracker_rows(stack) == tracker
        assert_secrets_kept(kept, secrets(stack))
        # The way back: the backup taken first holds the 13 server's dumps.
        with tarfile.open(Path(final["backup"])) as tar:
            manifest = json.loads(tar.extractfile("manifest.json").read())
        assert manifest["postgres_major"] == OLDER_MAJOR
        assert {"databases/rasa.dump", "databases/tracker.dump"} <= set(manifest["members"])
