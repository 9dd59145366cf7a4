"""`up` must never take a working site down, and `down` stops dependents first.

One stack is brought up for the whole module (own project name, free port) and every check
runs against it: a taken or impossible port, .env disagreeing with credentials/, the data
volumes found by a new folder of the same project are each refused before anything changes,
while the first stack's nginx keeps answering; then the database is replaced and `down` still
stops nginx and rasa-x before it. Everything of the project is removed at the end.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import requests

from deploy import compose, preflight, render
from deploy.install import initialize
from deploy.layout import Layout
from tests.conftest import free_port

pytestmark = [pytest.mark.docker, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "cli", *args], capture_output=True, text=True,
                            timeout=timeout, cwd=ROOT)
    print(f"$ rasax-deploy {' '.join(args)} → {result.returncode}\n{result.stdout}{result.stderr}")
    return result


class Stack:
    def __init__(self, docker_client, directory: Path, project: str, port: int):
        self.docker_client, self.dir, self.project, self.port = docker_client, directory, project, port

    def containers(self) -> dict[str, str]:
        """container name → id, of every container of the project."""
        found = self.docker_client.containers.list(
            all=True, filters={"label": f"com.docker.compose.project={self.project}"})
        return {c.name: c.id for c in found}

    def serves(self) -> bool:
        response = requests.get(f"http://127.0.0.1:{self.port}/api/health", timeout=10)
        return response.status_code == 200

    def files(self) -> dict[str, bytes]:
        names = ("rasax-state.json", "docker-compose.yml", ".env", "nginx-config/rasax.conf")
        return {name: (self.dir / name).read_bytes() for name in names}

    def up(self, *args: str, directory: Path | None = None) -> subprocess.CompletedProcess:
        # Without the Rasa servers: what is checked here is the installer's, and each `up` would
        # otherwise wait for Rasa to load TensorFlow.
        return cli("up", "--dir", str(directory or self.dir), "-p", self.project, "--no-rasa", *args)


@pytest.fixture(scope="module")
def stack(docker_client, tmp_path_factory):
    directory = tmp_path_factory.mktemp("safety") / "rasa"
    stack = Stack(docker_client, directory, f"rxsafe{uuid.uuid4().hex[:8]}", free_port())
    try:
        result = stack.up("--http-port", str(stack.port))
        assert result.returncode == 0, result.stderr
        assert stack.serves()
        yield stack
    finally:
        for container in docker_client.containers.list(
                all=True, filters={"label": f"com.docker.compose.project={stack.project}"}):
            print(f"===== {container.name} ({container.status})\n{container.logs(tail=30).decode(errors='replace')}")
        cli("down", "--dir", str(directory), "-p", stack.project, "--volumes", "-y")
        for volume in docker_client.volumes.list(filters={"label": f"com.docker.compose.project={stack.project}"}):
            volume.remove(force=True)


def test_a_taken_port_is_refused_and_the_site_keeps_serving(stack):
    files, containers = stack.files(), stack.containers()
    taken = free_port()
    with socket.socket() as holder:
        holder.bind(("0.0.0.0", taken))
        holder.listen()
        result = stack.up("--http-port", str(taken))
    assert result.returncode != 0
    assert f"nginx cannot publish port {taken}: it is in use by another program" in result.stderr
    assert "Traceback" not in result.stderr
    assert stack.serves()
    assert stack.containers() == containers  # nothing stopped, nothing replaced
    assert stack.files() == files  # the port is not remembered, the files not rewritten
    # The port nginx publishes is its own, not "taken"; for another project's nginx it is.
    layout = Layout(stack.dir)
    preflight.check_ports(stack.docker_client, compose.make_plan(compose.load(layout), layout, stack.project))
    with pytest.raises(preflight.RefusedError, match=f"in use by container {stack.project}_nginx_1 of project "
                                                     f"{stack.project}"):
        preflight.check_ports(stack.docker_client, compose.make_plan(compose.load(layout), layout, "someoneelse"))


def test_an_impossible_port_is_refused_and_not_remembered(stack):
    files, containers = stack.files(), stack.containers()
    result = stack.up("--http-port", "99999")
    assert result.returncode in (1, 2)
    assert "--http-port" in result.stderr and "1-65535" in result.stderr
    assert stack.files() == files and stack.containers() == containers and stack.serves()


def test_env_disagreeing_with_credentials_is_refused_before_anything_changes(stack):
    env_file = stack.dir / ".env"
    original = env_file.read_text()
    containers = stack.containers()
    for wrong in ("123", "${DB_PASSWORD}"):
        env_file.write_text("\n".join(f"DB_PASSWORD={wrong}" if line.startswith("DB_PASSWORD=") else line
                                      for line in original.splitlines()) + "\n")
        try:
            result = stack.up()
        finally:
            env_file.write_text(original)
        assert result.returncode != 0
        assert f"{env_file}" in result.stderr and "credentials/DB_PASSWORD" in result.stderr
        assert stack.containers() == containers and stack.serves()


def test_a_second_folder_under_a_project_name_in_use_is_refused_naming_the_installation(stack, tmp_path):
    """Not a lost folder: the installation the containers were made from is still there."""
    containers = stack.containers()
    other = tmp_path / "second"
    result = cli("init", "--dir", str(other), "-p", stack.project)
    assert result.returncode != 0
    assert f"project {stack.project!r} is the installation in {stack.dir}" in result.stderr
    assert "--project-name NAME" in result.stderr and f"--dir {stack.dir}" in result.stderr
    assert not (other / "credentials").exists()
    assert stack.containers() == containers and stack.serves()


@pytest.fixture
def folder_deleted(stack, tmp_path):
    """`rm -rf` of the installation folder, undone afterwards: its copy is where the secrets survive."""
    kept = tmp_path / "kept-copy"
    stack.dir.rename(kept)
    try:
        yield kept
    finally:
        kept.rename(stack.dir)


def test_volumes_of_an_earlier_installation_are_named_before_any_container_is_created(stack, tmp_path,
                                                                                      folder_deleted):
    """The folder is gone (`rm -rf /etc/rasa`) and `up` runs again: same project, same volumes."""
    containers = stack.containers()
    volumes = f"{stack.project}_db-data {stack.project}_rabbit-data {stack.project}_redis-data"
    new_folder = tmp_path / "rasa"
    result = stack.up("--http-port", str(stack.port), directory=new_folder)
    assert result.returncode != 0
    message = result.stderr
    assert f"the data volumes {volumes}" in message and "earlier installation" in message
    assert f"{new_folder} has no credentials yet" in message
    assert f"put that installation's credentials/ and .env back into {new_folder}" in message
    assert f"`rasax-deploy down --dir {new_folder} -p {stack.project}`, then `docker volume rm {volumes}`" in message
    assert not (new_folder / "credentials").exists()  # no new secret was made
    assert stack.containers() == containers and stack.serves()
    # Secrets made anyway (an older init, or by hand): the volumes' fingerprints tell them apart.
    initialize(Layout(new_folder), stack.project)
    result = stack.up("--http-port", str(stack.port), directory=new_folder)
    assert result.returncode != 0
    assert (f"the data volumes {volumes}" in result.stderr
            and "they were set up with other DB_PASSWORD, RABBITMQ_PASSWORD, REDIS_PASSWORD" in result.stderr)
    assert stack.containers() == containers and stack.serves()
    assert not (new_folder / "docker-compose.yml").exists()
    # That installation's secrets put back (a backup of the folder) are recognised as its own.
    for name in os.listdir(folder_deleted / "credentials"):
        (new_folder / "credentials" / name).write_text((folder_deleted / "credentials" / name).read_text())
    (new_folder / ".env").write_text((folder_deleted / ".env").read_text())
    layout = Layout(new_folder)
    options = render.RenderOptions(http_port=str(stack.port))
    model = compose.load(layout, compose_text=render.plan(options)["docker-compose.yml"])
    preflight.check_volumes(stack.docker_client, compose.make_plan(model, layout, stack.project), layout)


def test_down_stops_dependents_first_even_after_the_database_was_replaced(stack):
    """The database container is the newest one now: down must still stop it last."""
    (stack.dir / "docker-compose.override.yml").write_text(
        "services:\n  db:\n    environment:\n      PGTZ: UTC\n")
    result = stack.up()
    assert result.returncode == 0, result.stderr
    assert "db               recreating" in result.stdout
    down = cli("down", "--dir", str(stack.dir), "-p", stack.project)
    assert down.returncode == 0, down.stderr
    removed = [line.split()[0] for line in down.stdout.splitlines() if line.strip().endswith("removed")]
    assert set(removed) >= {"nginx", "rasa-x", "event-service", "db-migration", "db", "rabbit", "redis"}, removed
    for first, then in [("nginx", "rasa-x"), ("rasa-x", "db-migration"), ("event-service", "db-migration"),
                        ("db-migration", "db"), ("rasa-x", "redis"), ("event-service", "rabbit")]:
        assert removed.index(first) < removed.index(then), removed


def test_unlabelled_volumes_are_judged_by_the_folder_that_ran_them(docker_client, tmp_path):
    """Volumes made before they carried a fingerprint (or by docker-compose): a new folder whose
    credentials are younger than them is refused; the folder whose `up` worked with them is not."""
    project = f"rxvol{uuid.uuid4().hex[:8]}"
    volume = docker_client.volumes.create(f"{project}_db-data", labels={"com.docker.compose.project": project})
    try:
        layout = Layout(tmp_path / "rasa")
        initialize(layout, project)
        model = compose.load(layout, compose_text=render.plan(render.RenderOptions())["docker-compose.yml"])
        plan = compose.make_plan(model, layout, project)
        with pytest.raises(preflight.RefusedError, match=f"`docker volume rm {project}_db-data`"):
            preflight.check_volumes(docker_client, plan, layout)
        render.save_state(layout, project=project)  # what a worked `up` from this folder leaves
        preflight.check_volumes(docker_client, plan, layout)
    finally:
        volume.remove(force=True)
