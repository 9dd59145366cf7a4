"""The whole architecture from one command, with no stand-in anywhere (docs/design.md §2).

`rasax-deploy up` from an empty folder brings every service healthy: rasa-x, the event service,
the migrator, PostgreSQL, RabbitMQ, Redis, nginx, and the real Rasa servers built here —
rasa-production, rasa-worker and the action server `app`. Then a model trained from
tests/fixtures/moodbot in the rasax/rasa image is uploaded to rasa-x and tagged `production`;
rasa-production pulls it from rasa-x's model server (`status` names it); messages sent through
nginx to Rasa's REST channel get the bot's answers, the custom action of actions/ runs in `app`,
and every event of that conversation — bot utterances included — comes back from rasa-x's
/api/conversations/{id}/tracker through the broker and the event service. A model Rasa cannot
load leaves the previous one serving.
"""

from __future__ import annotations

import json
import time
import uuid

import pytest
import requests

from deploy.rasa_servers import NO_MODEL
from tests.conftest import free_port, wait_until
from tests.e2e.deployment import Stack, cli, fake_model, read_env

pytestmark = [pytest.mark.docker, pytest.mark.timeout(2400)]

SERVICES = {"db", "rabbit", "redis", "db-migration", "event-service", "rasa-x", "app", "rasa-production",
            "rasa-worker", "nginx"}


@pytest.fixture(scope="module")
def stack(docker_client, tmp_path_factory, request):
    stack = Stack(docker_client, tmp_path_factory.mktemp("rasastack") / "rasa", f"rxrasa{uuid.uuid4().hex[:8]}",
                  free_port())
    yield stack
    if request.session.testsfailed:
        stack.dump_logs()
    stack.cleanup()


@pytest.fixture(scope="module")
def model(moodbot):
    """tests/fixtures/moodbot trained by the real `rasa train` in rasax/rasa."""
    return moodbot[1]


@pytest.fixture(scope="module")
def session(stack):
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {stack.login()}"
    return http


def loaded_models(stack) -> dict[str, str]:
    rows = json.loads(cli("status", "--dir", str(stack.dir), "--json", check=False).stdout)
    return {row["service"]: row["model"] for row in rows if row["model"] is not None}


def doctor(stack) -> dict[str, dict]:
    result = cli("doctor", "--dir", str(stack.dir), "--json", check=False)
    return {c["name"]: c for c in json.loads(result.stdout)}


def upload_and_tag(stack, session, name: str, data: bytes) -> None:
    response = session.post(f"{stack.base}/api/models", files={"model": (f"{name}.tar.gz", data)}, timeout=120)
    assert response.status_code == 201, response.text
    assert session.put(f"{stack.base}/api/models/{name}/tags/production", timeout=30).status_code == 204


def test_up_from_an_empty_folder_brings_every_service_of_the_architecture_healthy(stack):
    result = cli("up", "--dir", str(stack.dir), "-p", stack.project, "--http-port", f"127.0.0.1:{stack.http_port}",
                 "--json", "--timeout", "600")
    events = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert {e["name"] for e in events if e.get("state") == "healthy"} == SERVICES
    # Production Rasa without a model is healthy and says so; so is the worker.
    assert loaded_models(stack) == {"rasa-production": NO_MODEL, "rasa-worker": NO_MODEL}
    # Rasa's tracker store is the tracker database, which Rasa made in the stack's PostgreSQL.
    env = read_env(stack.dir)
    databases = stack.docker_client.containers.get(f"{stack.project}_db_1").exec_run(
        ["psql", "-U", env["DB_USER"], "-d", env["DB_DATABASE"], "-Atc", "SELECT datname FROM pg_database"])
    assert env["DB_TRACKER_DATABASE"] in databases.output.decode().split()
    # The example actions package is the installation's, mounted into `app`.
    assert (stack.dir / "actions" / "actions.py").is_file()


def test_no_token_is_on_a_rasa_servers_command_line(stack):
    env = read_env(stack.dir)
    secrets = [env[name] for name in ("RASA_TOKEN", "JWT_SECRET", "RASA_X_TOKEN", "DB_PASSWORD", "RABBITMQ_PASSWORD")]
    for service in ("rasa-production", "rasa-worker"):
        container = stack.docker_client.containers.get(f"{stack.project}_{service}_1")
        config = container.attrs["Config"]
        shown = " ".join(config["Entrypoint"] + config["Cmd"] + [p[-1] for p in container.top()["Processes"]])
        assert "--auth-token=${RASA_TOKEN}" in config["Cmd"]
        assert not [s for s in secrets if s in shown], f"{service} shows a secret on its command line"


def test_a_model_tagged_production_is_pulled_and_its_conversation_comes_back_through_rasa_x(stack, session, model):
    upload_and_tag(stack, session, "moodbot", model.read_bytes())
    # Pulled within the pull interval (10 s) plus the time Rasa takes to load it (minutes when the
    # machine is busy).
    wait_until(lambda: loaded_models(stack).get("rasa-production") == "moodbot.tar.gz", 600,
               "rasa-production runs moodbot.tar.gz", interval=3)

    sender = f"smoke-{uuid.uuid4().hex[:8]}"

    def say(text: str) -> list[str]:
        reply = requests.post(f"{stack.base}/webhooks/rest/webhook", json={"sender": sender, "message": text},
                              timeout=120)
        assert reply.status_code == 200, reply.text
        return [message.get("text") for message in reply.json()]

    assert say("hello there") == ["Hey! How are you?"]
    assert say("I am great") == ["Great, carry on!"]
    # The intent by name: the rule runs action_hello_world in the action server (`app`).
    assert say("/say_hello_world") == ["Hello World!"]

    # Rasa's own record of the conversation (its HTTP API behind nginx, with RASA_TOKEN) ...
    token = read_env(stack.dir)["RASA_TOKEN"]
    own = requests.get(f"{stack.base}/core/conversations/{sender}/tracker",
                       params={"token": token, "include_events": "ALL"}, timeout=30)
    assert own.status_code == 200, own.text
    expected = [(e["event"], e["timestamp"]) for e in own.json()["events"]]
    assert ("user", ) in {(e,) for e, _ in expected} and ("bot", ) in {(e,) for e, _ in expected}

    # ... arrives event for event in rasa-x, through the broker and the event service.
    def in_rasa_x():
        response = session.get(f"{stack.base}/api/conversations/{sender}/tracker", timeout=30)
        if response.status_code != 200:
            return None
        events = response.json()["events"]
        return events if [(e["event"], e["timestamp"]) for e in events] == expected else None

    events = wait_until(in_rasa_x, 60, "the conversation in rasa-x's tracker", interval=1)
    # `doctor` sees what Rasa runs: the token both sides hold, the tagged model loaded.
    checks = doctor(stack)
    assert checks["RASA_X_TOKEN"]["status"] == "PASS", checks["RASA_X_TOKEN"]
    assert checks["production model"]["status"] == "PASS" and "moodbot" in checks["production model"]["found"]
    said = [e.get("text") for e in events if e["event"] == "bot"]
    assert said == ["Hey! How are you?", "Great, carry on!", "Hello World!"]
    assert "action_hello_world" in [e.get("name") for e in events if e["event"] == "action"]


def test_a_model_rasa_cannot_load_leaves_the_previous_model_serving(stack, session):
    # A gzipped tar with a metadata.json: rasa-x takes it, Rasa cannot make an assistant of it.
    upload_and_tag(stack, session, "broken", fake_model())
    production = stack.docker_client.containers.get(f"{stack.project}_rasa-production_1")
    since = int(time.time()) - 1
    # Rasa pulls every 10 s: after three pulls it has tried and failed, and still serves moodbot;
    # `status` shows both.
    time.sleep(35)
    assert loaded_models(stack)["rasa-production"] == "moodbot.tar.gz (tagged production: broken.tar.gz, not loaded)"
    assert doctor(stack)["production model"]["status"] == "FAIL"
    assert "Traceback" in production.logs(since=since).decode(errors="replace"), "Rasa logged no failed load"
    reply = requests.post(f"{stack.base}/webhooks/rest/webhook",
                          json={"sender": f"after-{uuid.uuid4().hex[:8]}", "message": "hello there"}, timeout=120)
    assert [m.get("text") for m in reply.json()] == ["Hey! How are you?"]
    assert production.attrs["State"]["Running"] and stack.docker_client.containers.get(production.id).status == "running"


def test_images_carried_by_save_and_load_bring_the_stack_back_with_no_build(stack, tmp_path):
    """The air-gapped path: `images save` on the machine that built them, every stack image gone,
    `images load`, `up`: healthy again, nothing built, nothing pulled. Last in this module: it
    takes the images away from under the stack for a moment."""
    from deploy import images, rasa_images
    from deploy.stack import image_tags

    cli("images", "save", str(tmp_path / "carried"))
    cli("down", "--dir", str(stack.dir))
    tags = sorted(image_tags().values())
    # The Debian bases too: on a machine without network they cannot be made (mmdebstrap). Kept
    # aside and put back at the end: every content hash of this machine's images names them.
    bases = [images.BASE_IMAGE, rasa_images.BASE_IMAGE]
    images.save(stack.docker_client, tmp_path / "bases", print, bases)
    try:
        for tag in tags + bases:
            # force: only the tag goes when another stack on this machine still runs the image.
            stack.docker_client.images.remove(tag, force=True)
        assert [t for t in tags + bases if stack.docker_client.images.list(name=t)] == []
        loaded = cli("images", "load", str(tmp_path / "carried"), "--json")
        assert sorted(json.loads(line)["name"] for line in loaded.stdout.splitlines() if '"loaded"' in line) == tags
        result = cli("up", "--dir", str(stack.dir), "--json", "--timeout", "600")
    finally:
        images.load(stack.docker_client, [tmp_path / "bases"], print)
    events = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert {e["name"]: e["state"] for e in events if e.get("kind") == "image"} == dict.fromkeys(tags, "kept"), \
        "up built or pulled an image that images load had brought"
    assert {e["name"] for e in events if e.get("state") == "healthy"} == SERVICES
