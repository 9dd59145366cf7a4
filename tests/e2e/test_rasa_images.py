"""The Rasa images built here, with no registry: rasax/rasa trains and serves a real assistant, and
rasax/rasa-sdk runs the example custom action of deploy/templates/actions/ during a conversation.

SLOW: the first build downloads about 1 GB of wheels into the host's wheel cache and builds both
images (many minutes); with the cache and the images present the module fixture is a no-op, and
training the small tests/fixtures/moodbot project plus starting Rasa take a minute or two.
"""

from __future__ import annotations

import uuid

import pytest
import requests

from deploy import TEMPLATES_DIR, rasa_images
from deploy.images import HASH_LABEL, ImageError
from tests.conftest import free_port, wait_until
from tests.e2e.rasa_project import logs

pytestmark = [pytest.mark.docker, pytest.mark.timeout(3600)]

@pytest.fixture(scope="module")
def built(docker_client):
    """Both images of the default Rasa version, built once for the module (kept when unchanged)."""
    lines: list[str] = []

    def progress(line: str) -> None:
        lines.append(line)
        print(line, flush=True)

    tags = rasa_images.build_all(docker_client, progress)
    return tags, lines


def test_both_images_are_built_from_the_local_base_non_root_with_their_content_hash(docker_client, built):
    tags, _ = built
    versions = rasa_images.image_versions()
    assert sorted(tags) == ["rasax/rasa-sdk:3.6.2", "rasax/rasa:3.6.21"]
    base_id = docker_client.images.get(rasa_images.BASE_IMAGE).id
    for name, version in versions.items():
        image = docker_client.images.get(rasa_images.image_tag(name, version))
        config = image.attrs["Config"]
        assert config["User"] == "1001"
        assert config["WorkingDir"] == "/app"
        assert image.labels[HASH_LABEL] == rasa_images.content_hash(name, version, base_id)
    assert docker_client.images.get("rasax/rasa:3.6.21").attrs["Config"]["Entrypoint"] == ["rasa"]
    # The pinned versions are what runs, on bullseye's Python 3.9.
    out = docker_client.containers.run("rasax/rasa:3.6.21", ["--version"], remove=True).decode()
    assert "Rasa Version      :         3.6.21" in out and "Python Version    :         3.9" in out
    out = docker_client.containers.run(
        "rasax/rasa-sdk:3.6.2", remove=True, entrypoint=["python", "-c"],
        command=["import rasa_sdk, os; print(rasa_sdk.__version__, os.getuid())"]).decode()
    assert out.split() == ["3.6.2", "1001"]


def test_an_unchanged_build_is_skipped_and_downloads_nothing(docker_client, built):
    tags, _ = built
    lines: list[str] = []
    again = rasa_images.build_all(docker_client, lines.append)
    assert again == tags
    assert [line for line in lines if "up to date" in line] == [
        f"{tag}: up to date ({docker_client.images.get(tag).labels[HASH_LABEL]}), kept" for tag in tags]
    assert not [line for line in lines if line.startswith("wheels:")]


def test_a_rasa_version_that_is_not_pinned_is_refused_before_any_build(docker_client):
    with pytest.raises(ImageError, match=r"RASA_VERSION 9\.9\.9 cannot be built.*versions that can: 3\.6\.21"):
        rasa_images.build_all(docker_client, print, rasa_version="9.9.9")


@pytest.fixture(scope="module")
def trained(built, moodbot):
    """tests/fixtures/moodbot trained in rasax/rasa (the session's): (project, models folder)."""
    project, model = moodbot
    return project, model.parent


def test_rasa_train_in_the_image_makes_a_model(trained):
    _, models = trained
    model = models / "moodbot.tar.gz"
    assert model.is_file() and model.stat().st_size > 100_000


def test_a_conversation_through_rasa_runs_the_custom_action_in_the_action_server(docker_client, trained):
    project, models = trained
    suffix = uuid.uuid4().hex[:8]
    network = docker_client.networks.create(f"rasax-rasa-test-{suffix}")
    containers = []
    try:
        app_port, rasa_port = free_port(), free_port()
        app = docker_client.containers.create(
            "rasax/rasa-sdk:3.6.2", name=f"rasax-rasa-test-app-{suffix}", user="1001",
            volumes={str(TEMPLATES_DIR / "actions"): {"bind": "/app/actions", "mode": "ro"}},
            ports={"5055/tcp": ("127.0.0.1", app_port)},
        )
        containers.append(app)
        network.connect(app, aliases=["app"])  # endpoints.yml: http://app:5055/webhook
        app.start()
        rasa = docker_client.containers.create(
            "rasax/rasa:3.6.21",
            ["run", "--enable-api", "--model", "/models/moodbot.tar.gz", "--endpoints", "endpoints.yml",
             "--credentials", "credentials.yml"],
            name=f"rasax-rasa-test-rasa-{suffix}", user="1001",
            volumes={str(project): {"bind": "/app", "mode": "rw"}, str(models): {"bind": "/models", "mode": "ro"}},
            ports={"5005/tcp": ("127.0.0.1", rasa_port)},
        )
        containers.append(rasa)
        network.connect(rasa)
        rasa.start()

        def answers(url: str):
            try:
                response = requests.get(url, timeout=5)
            except requests.RequestException:
                return None
            return response.status_code == 200 and response.json()

        try:
            status = wait_until(lambda: answers(f"http://127.0.0.1:{rasa_port}/status"), 300, "rasa /status", interval=2)
            wait_until(lambda: answers(f"http://127.0.0.1:{app_port}/health"), 60, "action server /health", interval=1)
        except BaseException:
            print(logs(rasa), logs(app))
            raise
        assert status["model_file"] == "moodbot.tar.gz"

        # The action server alone, with the smallest request Rasa sends it.
        tracker = {"sender_id": "direct", "slots": {}, "latest_message": {}, "events": [], "paused": False,
                   "followup_action": None, "active_loop": {}, "latest_action_name": None}
        response = requests.post(f"http://127.0.0.1:{app_port}/webhook", timeout=30, json={
            "next_action": "action_hello_world", "sender_id": "direct", "tracker": tracker, "domain": {},
            "version": "3.6.2"})
        assert response.status_code == 200, response.text
        assert response.json()["events"] == []
        assert [r["text"] for r in response.json()["responses"]] == ["Hello World!"]

        def say(text: str) -> list[str]:
            reply = requests.post(f"http://127.0.0.1:{rasa_port}/webhooks/rest/webhook", timeout=60,
                                  json={"sender": f"tester-{suffix}", "message": text})
            assert reply.status_code == 200, reply.text
            return [message.get("text") for message in reply.json()]

        try:
            assert say("hello there") == ["Hey! How are you?"]
            assert say("I am great") == ["Great, carry on!"]
            # The intent by name (no NLU guess): the rule runs action_hello_world in the action server.
            assert say("/say_hello_world") == ["Hello World!"]
        except BaseException:
            print(logs(rasa), logs(app))
            raise
    finally:
        for container in containers:
            container.remove(force=True)
        network.remove()
