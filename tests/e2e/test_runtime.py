"""The Docker layer on its own, with the local base image: a health timeout names the service and
shows its last log lines; images save/load round-trips without a registry; a container is
stopped with its own grace."""

from __future__ import annotations

import socket
import time
import uuid

import pytest

from deploy import images, runtime
from deploy.compose import DEPENDS_ON_LABEL, Plan, Port, ServicePlan
from tests.conftest import free_port

pytestmark = pytest.mark.docker


@pytest.fixture
def base_image(docker_client):
    images.make_base(docker_client, print)
    return images.BASE_IMAGE


def test_health_timeout_names_the_service_and_shows_its_last_log_lines(docker_client, base_image):
    project = f"rxrt{uuid.uuid4().hex[:8]}"
    network = f"{project}_rasax"
    service = ServicePlan(
        name="stuck", container=f"{project}_stuck_1", image=base_image,
        command=["sh", "-c", "echo 'cannot reach the database: connection refused'; exec sleep 300"],
        entrypoint=None, environment={}, mounts=[], ports=[], network=network,
        healthcheck={"test": ["CMD", "false"], "interval": 10**9, "timeout": 10**9, "retries": 100},
        restart="no", depends_on={}, user=None, labels={"com.docker.compose.project": project,
                                                        "com.docker.compose.service": "stuck",
                                                        "com.docker.compose.config-hash": "x"})
    events = []
    docker_client.networks.create(network, labels={"com.docker.compose.project": project})
    try:
        runtime.ensure_container(docker_client, service, lambda *a, **k: events.append(a))
        with pytest.raises(runtime.DeployError) as caught:
            runtime.wait_for(docker_client, service, "service_healthy", lambda *a, **k: None, timeout=4)
        assert caught.value.service == "stuck"
        assert "stuck is not healthy after 4 s" in str(caught.value)
        assert "cannot reach the database" in caught.value.logs
        # A second ensure with the same settings keeps the running container.
        runtime.ensure_container(docker_client, service, lambda *a, **k: events.append(a))
        assert events == [("stuck", "started"), ("stuck", "unchanged")]
    finally:
        runtime.down(docker_client, project, lambda *a, **k: None)
    assert docker_client.containers.list(all=True, filters={"label": f"com.docker.compose.project={project}"}) == []


def test_images_save_and_load_round_trip(docker_client, base_image, tmp_path):
    tag = f"rxrt-test/base:{uuid.uuid4().hex[:8]}"
    docker_client.images.get(base_image).tag(tag)
    try:
        written = images.save(docker_client, tmp_path, print, [tag])
        docker_client.images.remove(tag)
        with pytest.raises(Exception):
            docker_client.images.get(tag)
        assert tag in images.load(docker_client, [tmp_path], print)
        assert docker_client.images.get(tag).id == docker_client.images.get(base_image).id
        assert [p.name for p in written] == [tag.replace("/", "_").replace(":", "_") + ".tar"]
    finally:
        try:
            docker_client.images.remove(tag)
        except Exception:
            pass


def _service(project, name, image, command, **changes) -> ServicePlan:
    values = dict(
        name=name, container=f"{project}_{name}_1", image=image, command=command, entrypoint=None,
        environment={}, mounts=[], ports=[], network=f"{project}_rasax", healthcheck=None, restart="no",
        depends_on={}, user=None, labels={})
    values.update(changes)
    service = ServicePlan(**values)
    service.labels = {"com.docker.compose.project": project, "com.docker.compose.service": name,
                      "com.docker.compose.config-hash": service.config_hash()}
    return service


NEVER_HEALTHY = {"test": ["CMD", "false"], "interval": 10**9, "timeout": 10**9, "retries": 1000}


@pytest.mark.parametrize("restart", ["no", "unless-stopped"])
def test_a_dependency_that_dies_ends_the_wait_at_once_with_its_log_lines(docker_client, base_image, restart):
    """The database died (or loops on restarts): waiting for rasa-x's health is pointless."""
    project = f"rxrt{uuid.uuid4().hex[:8]}"
    dies = _service(project, "db", base_image, ["sh", "-c", "sleep 2; echo 'FATAL: password authentication failed'; exit 3"],
                    restart=restart)
    waits = _service(project, "app", base_image, ["sleep", "300"], healthcheck=NEVER_HEALTHY,
                     depends_on={"db": "service_started"})
    plan = Plan(project, f"{project}_rasax", [], [dies, waits])
    started = time.monotonic()
    try:
        with pytest.raises(runtime.DeployError) as caught:
            runtime.up(docker_client, plan, lambda *a, **k: None, timeout=60)
        assert time.monotonic() - started < 30, "the wait went on after the dependency died"
        assert caught.value.service == "db" and "stopped (exit code" in str(caught.value)
        assert "password authentication failed" in caught.value.logs
    finally:
        runtime.down(docker_client, project, lambda *a, **k: None)


def test_a_container_that_cannot_start_with_new_settings_leaves_the_previous_one_running(docker_client, base_image):
    """nginx asked to publish a taken port: the one serving before must serve on."""
    project = f"rxrt{uuid.uuid4().hex[:8]}"
    old_port, taken_port = free_port(), free_port()
    serving = _service(project, "web", base_image, ["sleep", "300"], ports=[Port(8080, old_port)])
    moved = _service(project, "web", base_image, ["sleep", "300"], ports=[Port(8080, taken_port)])
    events = []
    docker_client.networks.create(serving.network, labels={"com.docker.compose.project": project})
    holder = socket.socket()
    try:
        runtime.ensure_container(docker_client, serving, lambda *a, **k: None)
        before = docker_client.containers.get(serving.container)
        holder.bind(("0.0.0.0", taken_port))
        holder.listen()
        with pytest.raises(runtime.DeployError) as caught:
            runtime.ensure_container(docker_client, moved, lambda *a, **k: events.append((a, k)))
        assert "the previous web was put back" in str(caught.value)
        after = docker_client.containers.get(serving.container)
        assert after.id == before.id and after.status == "running"
        assert after.ports["8080/tcp"][0]["HostPort"] == str(old_port)
        assert [c.name for c in docker_client.containers.list(
            all=True, filters={"label": f"com.docker.compose.project={project}"})] == [serving.container]
    finally:
        holder.close()
        runtime.down(docker_client, project, lambda *a, **k: None)


def test_down_without_the_files_stops_dependents_first_by_their_labels(docker_client, base_image):
    """The database container is the newest (it was replaced last): it must still stop last."""
    project = f"rxrt{uuid.uuid4().hex[:8]}"
    services = [_service(project, "app", base_image, ["sleep", "300"], depends_on={"db": "service_healthy"}),
                _service(project, "db", base_image, ["sleep", "300"])]
    for service in services:
        service.labels[DEPENDS_ON_LABEL] = ",".join(service.depends_on)
    docker_client.networks.create(f"{project}_rasax", labels={"com.docker.compose.project": project})
    removed = []
    try:
        for service in services:  # app first, db last: listed newest first, db would go first
            runtime.ensure_container(docker_client, service, lambda *a, **k: None)
            time.sleep(1.1)
        runtime.down(docker_client, project, lambda name, state, **k: removed.append(name) if state == "removed" else None)
        assert removed[:2] == ["app", "db"]
    finally:
        runtime.down(docker_client, project, lambda *a, **k: None)


def test_down_gives_each_container_the_stop_grace_it_was_made_with(docker_client, base_image):
    """A process that ignores SIGTERM is killed once its container's own grace is over: `down`
    needs no plan for it (the files may be gone) and waits no longer than that."""
    project = f"rxrt{uuid.uuid4().hex[:8]}"
    stubborn = _service(project, "stubborn", base_image, ["sh", "-c", "trap '' TERM; while :; do sleep 1; done"],
                        stop_seconds=4)
    docker_client.networks.create(stubborn.network, labels={"com.docker.compose.project": project})
    try:
        runtime.ensure_container(docker_client, stubborn, lambda *a, **k: None)
        assert docker_client.containers.get(stubborn.container).attrs["Config"]["StopTimeout"] == 4
        started = time.monotonic()
        runtime.down(docker_client, project, lambda *a, **k: None)
        took = time.monotonic() - started
        assert 4 <= took < 15, took  # the default grace would be 20 s
    finally:
        runtime.down(docker_client, project, lambda *a, **k: None)


def test_a_one_shot_dependency_that_completed_is_not_taken_for_a_dead_one(docker_client, base_image):
    project = f"rxrt{uuid.uuid4().hex[:8]}"
    once = _service(project, "prepare", base_image, ["sh", "-c", "echo prepared"])
    waits = _service(project, "app", base_image, ["sleep", "300"],
                     healthcheck={"test": ["CMD", "true"], "interval": 10**9, "timeout": 10**9, "retries": 3},
                     depends_on={"prepare": "service_completed_successfully"})
    try:
        runtime.up(docker_client, Plan(project, f"{project}_rasax", [], [once, waits]), lambda *a, **k: None, timeout=60)
        assert docker_client.containers.get(waits.container).attrs["State"]["Health"]["Status"] == "healthy"
    finally:
        runtime.down(docker_client, project, lambda *a, **k: None)
