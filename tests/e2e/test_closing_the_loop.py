"""The loop closed on the real stack, real Rasa everywhere (no stand-in): training data imported
into rasa-x → trained on rasa-worker through rasa-x (`rasax-deploy train`) → the model stored and
tagged production → rasa-production pulls it → "Talk to your bot" through rasa-x's API gets the
bot's replies over the live-update socket (/api/ws through nginx) within seconds, and the
conversation comes back through the broker, marked interactive → a guest
with the share link talks through nginx's /api/chat to Rasa's `rasa` channel, and that
conversation comes back with channel `rasa`.

One stack for the module; training moodbot on the worker takes a few minutes on two cores.
"""

from __future__ import annotations

import json
import time
import uuid

import pytest
import requests

from tests.conftest import FIXTURES_DIR, free_port, wait_until
from tests.e2e.deployment import Stack, cli, read_env
from tests.integration.backend.live_client import LiveSocket

pytestmark = [pytest.mark.docker, pytest.mark.timeout(2400)]


@pytest.fixture(scope="module")
def stack(docker_client, tmp_path_factory, request):
    stack = Stack(docker_client, tmp_path_factory.mktemp("loop") / "rasa", f"rxloop{uuid.uuid4().hex[:8]}", free_port())
    try:
        cli("up", "--dir", str(stack.dir), "-p", stack.project, "--http-port", f"127.0.0.1:{stack.http_port}", "-q",
            "--timeout", "600", timeout=1800)
        yield stack
        if request.session.testsfailed:
            stack.dump_logs()
    finally:
        stack.cleanup()


@pytest.fixture(scope="module")
def session(stack):
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {stack.login()}"
    return http


@pytest.fixture(scope="module")
def trained(stack, session):
    """moodbot imported into rasa-x, then trained on rasa-worker by `rasax-deploy train --tag production`."""
    cli("data", "import", "--dir", str(stack.dir), "--mode", "replace", f"{FIXTURES_DIR}/moodbot")
    started = time.monotonic()
    result = cli("train", "--dir", str(stack.dir), "--tag", "production", "--json", timeout=1800)
    seconds = time.monotonic() - started
    job = json.loads(result.stdout.splitlines()[-1])["job"]
    print(f"training moodbot through rasa-x on rasa-worker: {seconds:.1f} s")
    return job


def loaded_model(stack) -> str | None:
    rows = json.loads(cli("status", "--dir", str(stack.dir), "--json", check=False).stdout)
    return {row["service"]: row["model"] for row in rows}.get("rasa-production")


def test_training_through_rasa_x_stores_the_model_and_production_pulls_it(stack, session, trained):
    assert trained["status"] == "finished" and trained["attempts"] == 1, trained
    version = session.get(f"{stack.base}/api/projects/default/data_version", timeout=30).json()["version"]
    models = {m["model"]: m for m in session.get(f"{stack.base}/api/models", timeout=30).json()}
    model = models[trained["model"]]
    assert model["data_version"] == version == trained["data_version"]
    assert model["tags"] == ["production"] and model["version"] == "3.6.21"
    wait_until(lambda: loaded_model(stack) == f"{trained['model']}.tar.gz", 240,
               "rasa-production runs the trained model", interval=3)


def _tracker_events(stack, session, sender: str, wanted_bot_texts: int):
    def arrived():
        response = session.get(f"{stack.base}/api/conversations/{sender}/tracker", timeout=30)
        if response.status_code != 200:
            return None
        events = response.json()["events"]
        return events if len([e for e in events if e["event"] == "bot"]) >= wanted_bot_texts else None

    return wait_until(arrived, 60, f"the bot's answers to {sender} in rasa-x", interval=0.5)


def test_talk_to_your_bot_gets_replies_and_the_conversation_comes_back_interactive(stack, session, trained):
    wait_until(lambda: loaded_model(stack) == f"{trained['model']}.tar.gz", 240, "the trained model", interval=3)
    sender = f"talk-{uuid.uuid4().hex[:8]}"
    url = f"{stack.base}/api/conversations/{sender}/messages"
    # Live updates through nginx's /api/ws, the JWT as ?token= (which nginx must log as ***).
    token = session.headers["Authorization"].removeprefix("Bearer ")
    live = LiveSocket(stack.base, token)
    try:
        assert live.next()["type"] == "ready"
        live.watch(sender)
        started = time.monotonic()
        reply = session.post(url, json={"message": "hello there"}, timeout=120)
        assert reply.status_code == 200, reply.text
        assert [m.get("text") for m in reply.json()] == ["Hey! How are you?"]
        first = live.events_of(sender, lambda got: any(e["event"] == "bot" for e in got), timeout=15)
        first_seconds = time.monotonic() - started
        assert [m.get("text") for m in session.post(url, json={"message": "I am great"}, timeout=120).json()] == \
            ["Great, carry on!"]
        second = live.events_of(sender, lambda got: any(e["event"] == "bot" for e in got), timeout=15)
        print(f"Talk to your bot: the first answer over /api/ws {first_seconds:.1f} s after the message, "
              f"both {time.monotonic() - started:.1f} s after the first")
    finally:
        live.close()
    assert [e.get("text") for e in first + second if e["event"] == "bot"] == ["Hey! How are you?", "Great, carry on!"]
    assert [e.get("text") for e in first + second if e["event"] == "user"] == ["hello there", "I am great"]
    nginx = next(c for c in stack.containers() if c.labels.get("com.docker.compose.service") == "nginx")
    access_log = nginx.logs().decode(errors="replace")
    assert "/api/ws?token=*** HTTP/1.1\" 101" in access_log and token not in access_log
    events = _tracker_events(stack, session, sender, 2)
    assert [e.get("text") for e in events if e["event"] == "bot"] == ["Hey! How are you?", "Great, carry on!"]
    assert {e.get("input_channel") for e in events if e["event"] == "user"} == {"rasa"}
    detail = session.get(f"{stack.base}/api/conversations/{sender}", timeout=30).json()
    assert detail["interactive"] is True

    # Saved as a test story, it is one Rasa reads and the bot passes (Rasa's own story test,
    # through nginx's /core/ to rasa-production).
    story = session.get(f"{stack.base}/api/conversations/{sender}/test_story", timeout=30)
    assert story.status_code == 200, story.text
    result = requests.post(f"{stack.base}/core/model/test/stories", data=story.content, timeout=300,
                           params={"token": read_env(stack.dir)["RASA_TOKEN"]})
    assert result.status_code == 200, result.text
    assert result.json()["accuracy"] == 1.0, result.json()


def test_a_guest_with_the_share_link_talks_through_nginx_to_the_rasa_channel(stack, session, trained):
    wait_until(lambda: loaded_model(stack) == f"{trained['model']}.tar.gz", 240, "the trained model", interval=3)
    # The share link's token through nginx, as the UI makes it (/api/chatToken is rasa-x's, only
    # /api/chat itself goes to Rasa).
    made = session.put(f"{stack.base}/api/chatToken", json={"bot_name": "moodbot"}, timeout=30)
    assert made.status_code == 200, made.text
    chat_token = made.json()["chat_token"]
    guest = requests.post(f"{stack.base}/api/auth/jwt", json={"chat_token": chat_token}, timeout=30)
    assert guest.status_code == 200, guest.text
    headers = {"Authorization": f"Bearer {guest.json()['access_token']}"}
    reply = requests.post(f"{stack.base}/api/chat", json={"message": "hello there"}, headers=headers, timeout=120)
    assert reply.status_code == 200, reply.text
    assert [m.get("text") for m in reply.json()] == ["Hey! How are you?"]
    sender = reply.json()[0]["recipient_id"]
    events = _tracker_events(stack, session, sender, 1)
    assert {e.get("input_channel") for e in events if e["event"] == "user"} == {"rasa"}
    assert session.get(f"{stack.base}/api/conversations/{sender}", timeout=30).json()["interactive"] is False
    # Without a JWT, Rasa's channel refuses the message (Rasa 3.6 answers 500 there: its decode_jwt
    # fails on the missing header) and nothing reaches the conversations.
    refused = requests.post(f"{stack.base}/api/chat", json={"message": "hi"}, timeout=30)
    assert refused.status_code >= 400 and not refused.text.startswith("[")


def test_nlu_evaluation_of_the_trained_model_on_the_worker_is_stored(stack, session, trained):
    url = f"{stack.base}/api/projects/default/evaluations/{trained['model']}"
    started = time.monotonic()
    response = session.put(url, timeout=600)
    assert response.status_code == 200, response.text
    print(f"NLU evaluation on rasa-worker: {time.monotonic() - started:.1f} s")
    evaluation = response.json()
    report = evaluation["intent_evaluation"]["report"]
    intents = {i["intent"] for i in session.get(f"{stack.base}/api/projects/default/intents", timeout=30).json()}
    assert intents <= set(report), "a per-intent line for every intent of the data"
    for intent in intents:
        assert {"precision", "recall", "f1-score", "support"} <= set(report[intent])
    assert 0 <= evaluation["accuracy"] <= 1 and evaluation["data_version"] == trained["data_version"]
    assert isinstance(evaluation["intent_evaluation"]["errors"], list)
    assert session.get(url, timeout=30).json() == evaluation
    listed = session.get(f"{stack.base}/api/projects/default/evaluations", timeout=30).json()
    assert [e["model"] for e in listed] == [trained["model"]]
