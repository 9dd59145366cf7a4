"""Backup and restore on a real stack: what an operator moving to a new VM relies on.

One stack (own project, ports, folder; without the Rasa servers, whose start costs minutes and
adds nothing here) gets data through its API and broker: a user made with `users create`,
conversations from the real Rasa captures, a conversation tag, training data, a model tagged
production, and rows in a tracker database the way Rasa's SQL tracker store keeps them. Then
`backup` → `down --volumes` → `restore` into a new folder must give identical API answers, the
old admin password and the user's password must still log in, and the tracker rows must be
back; restoring again over that installation backs it up first. A damaged archive is refused
before anything is created.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
import requests

from tests.e2e.day2 import RABBIT_ON_LOOPBACK, TRACKER_ROWS, USER_PASSWORD, admin_password, fill, json_lines, snapshot, tracker_rows
from tests.e2e.deployment import ROOT, cli, running_stack

pytestmark = [pytest.mark.docker, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def stack(docker_client, tmp_path_factory, request):
    """A running stack with data in every place a backup must cover."""
    directory = tmp_path_factory.mktemp("backup") / "rasa"
    directory.mkdir()
    # Yours, and so in the backup: publishes RabbitMQ on a loopback port to send the captures.
    (directory / "docker-compose.override.yml").write_text(RABBIT_ON_LOOPBACK)
    with running_stack(docker_client, directory, "rxbackup", request) as stack:
        fill(stack)
        yield stack


def test_backup_down_volumes_restore_elsewhere_gives_the_same_answers(stack, tmp_path):
    password = admin_password(stack)
    before, tracker_before = snapshot(stack, password), tracker_rows(stack)
    assert {u["username"] for u in before["users"]} == {"admin", "ann"}
    assert before["conversation_tags"] and before["models"][0]["tags"] == ["production"]
    assert before["training_examples"] and len(tracker_before.splitlines()) == len(TRACKER_ROWS)

    started = time.monotonic()
    result = cli("backup", "--dir", str(stack.dir), "--json", "--keep", "3")
    backup_seconds = time.monotonic() - started
    final = json_lines(result)[-1]
    archive = Path(final["path"])
    assert final["done"] and archive.parent == stack.dir / "backups"
    assert final["databases"]["tracker"]["name"] == "tracker" and final["databases"]["rasa"]["name"] == "rasa"
    assert archive.stat().st_mode & 0o777 == 0o600
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        manifest = json.loads(tar.extractfile("manifest.json").read())
    assert names[-1] == "manifest.json" and set(names[:-1]) == set(manifest["members"])
    assert {"databases/rasa.dump", "databases/tracker.dump", ".env", "credentials/RASA_X_PASSWORD",
            "auth/jwt_private_key.pem", "docker-compose.override.yml", "models/moodbot.tar.gz"} <= set(names)
    assert manifest["postgres_major"] == 15 and manifest["project"] == stack.project
    assert not [p for p in archive.parent.iterdir() if p.name.startswith(".")]  # no partial file left

    # A damaged copy (one byte of the model flipped) is refused before anything is made.
    damaged = tmp_path / "damaged.tar"
    data = bytearray(archive.read_bytes())
    with tarfile.open(archive) as tar:
        member = tar.getmember("models/moodbot.tar.gz")
    data[member.offset_data + 10] ^= 0xFF
    damaged.write_bytes(bytes(data))
    refused = cli("restore", str(damaged), "--dir", str(tmp_path / "nowhere"), check=False)
    assert refused.returncode == 1 and "is corrupt: the checksum of models/moodbot.tar.gz differs" in refused.stderr
    assert not (tmp_path / "nowhere").exists()

    cli("down", "--dir", str(stack.dir), "--volumes", "-y")
    # The new machine: another folder, the archive only.
    stack.dir = tmp_path / "restored"
    started = time.monotonic()
    cli("restore", str(archive), "--dir", str(stack.dir), "--timeout", "240")
    restore_seconds = time.monotonic() - started
    print(f"backup {backup_seconds:.1f} s, restore {restore_seconds:.1f} s, archive {archive.stat().st_size} bytes")

    assert snapshot(stack, password) == before  # the old admin password, the same answers
    assert tracker_rows(stack) == tracker_before
    login = requests.post(f"{stack.base}/api/auth", json={"username": "ann", "password": USER_PASSWORD}, timeout=10)
    assert login.status_code == 200, login.text
    assert (stack.dir / "credentials" / "RASA_X_PASSWORD").stat().st_mode & 0o777 == 0o600

    # Over that installation: refused without -y, then backed up first (stopped: the database is
    # started alone for it) and restored.
    refused = subprocess.run([sys.executable, "-m", "cli", "restore", str(archive), "--dir", str(stack.dir)],
                             input="n\n", capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert refused.returncode != 0 and "Aborted" in refused.stderr
    # Stopped first: the backup taken before the restore starts the database alone.
    cli("down", "--dir", str(stack.dir))
    result = cli("restore", str(archive), "--dir", str(stack.dir), "-y", "--json", "--timeout", "240")
    previous = Path(json_lines(result)[-1]["previous"])
    assert previous.parent == stack.dir / "backups" and previous.stat().st_mode & 0o777 == 0o600
    with tarfile.open(previous) as tar:
        assert {"databases/rasa.dump", "databases/tracker.dump"} <= set(tar.getnames())
    assert snapshot(stack, password) == before
    assert tracker_rows(stack) == tracker_before
    assert os.path.exists(stack.dir / "models" / "moodbot.tar.gz")
