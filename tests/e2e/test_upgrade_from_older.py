"""`upgrade` from a real older rasax-deploy: the code of an older commit of this repository.

The older version is OLDER_COMMIT's tree (`git archive`), installed into a venv of its own
outside the checkout; it installs a stack (`up --no-rasa`) with its own code in its own project
image, and data goes in through its API and its broker. Then this checkout's `upgrade` must keep
every secret (.env, credentials/, auth/ byte for byte) and every answer the older API gave, run
this version's project image and record this version.

Two edits to the older tree keep it off what the other tests run: its services/__init__.py says
0.1.0 like today's (the version was never bumped), so it is labelled OLDER_VERSION, and its
project image becomes rasax/rasa-x:OLDER_VERSION instead of replacing rasax/rasa-x:<current>;
its PostgreSQL image (another Dockerfile than today's, under the same tag) gets a tag of its own.
Both images are removed afterwards.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import tarfile
import uuid
from pathlib import Path

import pytest
import requests

from services import __version__
from tests.conftest import free_port
from tests.e2e.day2 import (RABBIT_ON_LOOPBACK, USER_PASSWORD, admin_password, assert_secrets_kept, fill, secrets,
                            snapshot, tracker_rows)
from tests.e2e.deployment import ROOT, Stack, cli

pytestmark = [pytest.mark.docker, pytest.mark.timeout(2400)]

# `rasax-deploy train` (14:59): users, conversations, tags, training data, models; before the
# web UI, so its project image builds without an npm build.
OLDER_COMMIT = "4bb1d19fff7cbbd5736bcdeaa04c4be81809959d"
OLDER_VERSION = "0.0.9"
OLDER_POSTGRES = f"rasax/postgres:15-rasax-deploy-{OLDER_VERSION}"


def older_tree(base: Path) -> Path:
    tree = base / "src"
    tree.mkdir()
    archive = subprocess.run(["git", "-C", ROOT, "archive", "--format=tar", OLDER_COMMIT], capture_output=True)
    assert archive.returncode == 0, f"the test needs this repository's history: {archive.stderr.decode()}"
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(tree, filter="data")
    init = tree / "services" / "__init__.py"
    init.write_text(re.sub(r'__version__ = "[^"]+"', f'__version__ = "{OLDER_VERSION}"', init.read_text()))
    images = tree / "deploy" / "images.py"
    text = images.read_text()
    assert '"postgres": "rasax/postgres:15"' in text
    images.write_text(text.replace('"postgres": "rasax/postgres:15"', f'"postgres": "{OLDER_POSTGRES}"'))
    return tree


@pytest.fixture(scope="module")
def older(tmp_path_factory) -> Path:
    """The older rasax-deploy command, installed into a venv outside the checkout."""
    base = tmp_path_factory.mktemp("older")
    tree = older_tree(base)
    venv = base / "venv"
    # Its dependencies from this Python's site-packages (the pins have not changed since); the
    # package itself editable: its project image is built from its source tree.
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    installed = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-deps",
                                "--disable-pip-version-check", "-e", str(tree)],
                               capture_output=True, text=True)
    assert installed.returncode == 0, installed.stderr
    found = subprocess.run([str(venv / "bin" / "python"), "-c", "import deploy, services; "
                            "print(services.__version__, deploy.__file__)"],
                           cwd=base, capture_output=True, text=True, check=True).stdout.split()
    assert found == [OLDER_VERSION, str(tree / "deploy" / "__init__.py")]
    return venv / "bin" / "rasax-deploy"


def run_older(command: Path, *args: str) -> None:
    result = subprocess.run([str(command), *args], capture_output=True, text=True, timeout=1800,
                            cwd=command.parent)
    print(f"$ rasax-deploy {OLDER_VERSION} {' '.join(args)}\n{result.stdout}{result.stderr}")
    assert result.returncode == 0, result.stderr


# What a newer version's migration computes again by design: 0007 made a conversation's
# in_training_data cover its bot turns too, not only its user messages.
RECOMPUTED = {"in_training_data"}


def differences(before, after, path: str = "") -> list[str]:
    """Where `after` does not say what `before` said (a newer API may add fields, never drop or
    change one): the paths, each with both values."""
    if isinstance(before, dict) and isinstance(after, dict):
        return [d for k, v in before.items() for d in differences(v, after.get(k, "<missing>"), f"{path}.{k}")]
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        return [d for i, (b, a) in enumerate(zip(before, after)) for d in differences(b, a, f"{path}[{i}]")]
    return [] if before == after else [f"{path}: {before!r} → {after!r}"]


def test_an_installation_of_an_older_commit_upgrades_keeping_secrets_and_data(older, docker_client, tmp_path, request):
    directory = tmp_path / "rasa"
    directory.mkdir()
    (directory / "docker-compose.override.yml").write_text(RABBIT_ON_LOOPBACK)
    stack = Stack(docker_client, directory, f"rxolder{uuid.uuid4().hex[:8]}", free_port())
    try:
        run_older(older, "up", "--dir", str(directory), "-p", stack.project, "--http-port",
                  f"127.0.0.1:{stack.http_port}", "--no-rasa", "-q", "--timeout", "600")
        state = json.loads((directory / "rasax-state.json").read_text())
        assert state["version"] == OLDER_VERSION
        assert {c.image.tags[0] for c in stack.containers() if c.status == "running"} >= {
            f"rasax/rasa-x:{OLDER_VERSION}", OLDER_POSTGRES}
        fill(stack)
        password = admin_password(stack)
        before, kept, tracker = snapshot(stack, password), secrets(stack), tracker_rows(stack)
        assert {u["username"] for u in before["users"]} == {"admin", "ann"} and before["conversation_tags"]

        result = cli("upgrade", "--dir", str(directory), "--json", "--timeout", "600")
        final = json.loads(result.stdout.splitlines()[-1])
        assert final["done"] and (final["from"], final["to"]) == (OLDER_VERSION, __version__)
        assert json.loads((directory / "rasax-state.json").read_text())["version"] == __version__
        running = {c.labels["com.docker.compose.service"]: c.image.tags[0] for c in stack.containers()
                   if c.status == "running"}
        assert running["rasa-x"] == f"rasax/rasa-x:{__version__}" and running["db"] == "rasax/postgres:15"
        assert_secrets_kept(kept, secrets(stack))
        after = snapshot(stack, password)  # the old admin password still logs in
        changed = differences(before, after)
        print("\n".join(["changed by the upgrade:", *changed]))
        assert [c for c in changed if c.split(":")[0].rsplit(".", 1)[-1] not in RECOMPUTED] == []
        assert tracker_rows(stack) == tracker
        login = requests.post(f"{stack.base}/api/auth", json={"username": "ann", "password": USER_PASSWORD}, timeout=10)
        assert login.status_code == 200, login.text
        assert Path(final["backup"]).is_file()  # of the older installation, taken first
    finally:
        if request.session.testsfailed:
            stack.dump_logs()
        stack.cleanup()
        for tag in (f"rasax/rasa-x:{OLDER_VERSION}", OLDER_POSTGRES):
            try:
                docker_client.images.remove(tag)
            except Exception as exc:  # docker.errors.ImageNotFound, or a container of another run
                print(f"{tag} not removed: {exc}")
