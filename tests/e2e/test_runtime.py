"""The Docker layer on its own, with the local base image: a health timeout names the service and
shows its last log lines; images save/load round-trips without a registry."""

from __future__ import annotations

import uuid

import pytest

from deploy import images, runtime
from deploy.compose import ServicePlan

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
