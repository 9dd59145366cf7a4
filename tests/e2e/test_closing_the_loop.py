"""The loop closed on the real stack, real Rasa everywhere (no stand-in), and what it must survive:

- Training data imported into rasa-x → trained on rasa-worker through rasa-x (`rasax-deploy
  train`) → the model stored and tagged production → rasa-production pulls it → "Talk to your
  bot" through rasa-x's API gets the bot's replies over the live-update socket (/api/ws through
  nginx) within seconds, and the conversation comes back through the broker, marked interactive →
  a guest with the share link talks through nginx's /api/chat to Rasa's `rasa` channel, and that
  conversation comes back with channel `rasa`.
- A replaced share link revokes its guests on every path nginx has to Rasa's `rasa` channel
  (/api/chat, /webhooks/rasa/webhook, /core/webhooks/rasa/webhook; the JWT in the header or in
  ?token=), and a request without a JWT is 401 there, not Rasa's 500: nginx asks rasa-x first.
- NLU evaluation on the worker, of all the data and of a held-back part.
- rasa-x killed (the container, SIGKILL) while the worker trains: the job shows failed and
  retryable once rasa-x is back, and its retry is refused while the worker does not answer (it is
  frozen meanwhile, so that its training outlasts all this on a machine of any speed) and while
  its own /status still counts the orphaned training, then accepted and trained once it is done.

One stack for the module (its tests run in this order: the share link before any model, the
orphaned training last, as it changes the configuration); about 3.5 min on two cores.
"""

from __future__ import annotations

import json
import time
import uuid

import pytest
import requests

from tests.conftest import FIXTURES_DIR, wait_until
from tests.e2e.deployment import cli, read_env, running_stack
from tests.integration.backend.live_client import LiveSocket

pytestmark = [pytest.mark.docker, pytest.mark.timeout(2400)]

JOBS = "/api/projects/default/models/jobs"


@pytest.fixture(scope="module")
def stack(docker_client, tmp_path_factory, request):
    with running_stack(docker_client, tmp_path_factory.mktemp("loop") / "rasa", "rxloop", request, rasa=True) as stack:
        yield stack


@pytest.fixture(scope="module")
def session(stack):
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {stack.login()}"
    return http


def _chat(stack, path: str, jwt: str | None = None, in_query: bool = False) -> requests.Response:
    headers, params = {}, {}
    if jwt and in_query:
        params["token"] = jwt
    elif jwt:
        headers["Authorization"] = f"Bearer {jwt}"
    return requests.post(f"{stack.base}{path}", json={"message": "hello there"}, headers=headers, params=params,
                         timeout=120)


CHANNEL_PATHS = ("/api/chat", "/webhooks/rasa/webhook", "/core/webhooks/rasa/webhook")


def test_a_replaced_share_link_revokes_its_guests_on_every_path_to_rasa(stack, session):
    """Before any model: Rasa's channel answers a message it lets in with 200 [] ("no agent to
    handle it"), nginx's refusal is a 401 that never reached Rasa."""
    def guest_of(chat_token: str) -> str:
        response = requests.post(f"{stack.base}/api/auth/jwt", json={"chat_token": chat_token}, timeout=30)
        assert response.status_code == 200, response.text
        return response.json()["access_token"]

    def reaches_rasa(answer: requests.Response) -> bool:
        return answer.status_code == 200 and isinstance(answer.json(), list)

    old = guest_of(session.put(f"{stack.base}/api/chatToken", json={"bot_name": "moodbot"}, timeout=30).json()["chat_token"])
    for path in CHANNEL_PATHS:
        for in_query in (False, True):
            answer = _chat(stack, path, old, in_query)
            assert reaches_rasa(answer), (path, in_query, answer.status_code, answer.text)
        missing = _chat(stack, path)
        assert missing.status_code == 401, (path, missing.text)

    new = guest_of(session.put(f"{stack.base}/api/chatToken", json={"bot_name": "moodbot"}, timeout=30).json()["chat_token"])
    for path in CHANNEL_PATHS:
        for in_query in (False, True):
            refused = _chat(stack, path, old, in_query)
            assert refused.status_code == 401, (path, in_query, refused.text)
        assert reaches_rasa(_chat(stack, path, new)), path


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
        # The user's event and the bot's may be stored by different event-service workers, in
        # either order: wait for both.
        answered = lambda got: {"user", "bot"} <= {e["event"] for e in got}  # noqa: E731
        first = live.events_of(sender, answered, timeout=15)
        first_seconds = time.monotonic() - started
        assert [m.get("text") for m in session.post(url, json={"message": "I am great"}, timeout=120).json()] == \
            ["Great, carry on!"]
        second = live.events_of(sender, answered, timeout=15)
        print(f"Talk to your bot: the first answer over /api/ws {first_seconds:.1f} s after the message, "
              f"both {time.monotonic() - started:.1f} s after the first")
    finally:
        live.close()
    assert [e.get("text") for e in first + second if e["event"] == "bot"] == ["Hey! How are you?", "Great, carry on!"]
    assert [e.get("text") for e in first + second if e["event"] == "user"] == ["hello there", "I am great"]
    access_log = stack.container("nginx").logs().decode(errors="replace")
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


UNRESPONSIVE = "unresponsive"


def _worker_active_trainings(stack) -> int | None | str:
    """The worker's own count of its trainings (Rasa's GET /status), asked inside its container
    with the RASA_TOKEN of its environment; None while it has no model loaded (Rasa's 409),
    UNRESPONSIVE when it does not answer within 10 s."""
    script = ("import json, os, urllib.request, urllib.error\n"
              "url = 'http://localhost:5005/status?token=' + os.environ['RASA_TOKEN']\n"
              "try:\n"
              "    print(json.load(urllib.request.urlopen(url, timeout=10))['num_active_training_jobs'])\n"
              "except urllib.error.HTTPError as e:\n"
              "    print('http', e.code)\n"
              "except OSError:  # socket.timeout (not TimeoutError in 3.9), URLError\n"
              f"    print({UNRESPONSIVE!r})\n")
    code, output = stack.container("rasa-worker").exec_run(["python", "-c", script])
    text = output.decode(errors="replace").strip()
    assert code == 0, text
    return None if text == "http 409" else text if text == UNRESPONSIVE else int(text)


def test_a_held_back_part_is_evaluated_on_the_worker(stack, session, trained):
    url = f"{stack.base}/api/projects/default/evaluations/{trained['model']}"
    response = session.put(url, params={"holdout": "0.3"}, timeout=600)
    assert response.status_code == 200, response.text
    evaluation = response.json()
    total = session.get(f"{stack.base}/api/projects/default/data_version", timeout=30).json()
    assert evaluation["holdout"] == 0.3 and 0 < evaluation["examples"]
    confusion = evaluation["intent_evaluation"]["confusion"]
    assert sum(map(sum, confusion["matrix"])) == evaluation["examples"], (confusion, total)
    assert session.delete(url, timeout=30).status_code == 204
    assert session.get(url, timeout=30).status_code == 404


def test_a_retry_after_rasa_x_was_killed_waits_for_the_workers_orphaned_training(stack, session, trained):
    if _worker_active_trainings(stack) is None:
        # No model loaded on the worker yet (Rasa's /status needs one): an evaluation loads one.
        session.put(f"{stack.base}/api/projects/default/evaluations/{trained['model']}", timeout=600).raise_for_status()
    assert _worker_active_trainings(stack) == 0
    # A configuration no cached component fits (its retry later finds every component in Rasa's
    # cache), trained for a while: four times the fixture's epochs.
    config = session.get(f"{stack.base}/api/projects/default/config", timeout=30).json()
    for component in (*config["pipeline"], *config["policies"]):
        if component["name"] in ("DIETClassifier", "TEDPolicy"):
            component["epochs"] *= 4
    assert session.put(f"{stack.base}/api/projects/default/config", json=config, timeout=30).status_code == 200
    job = session.post(f"{stack.base}{JOBS}", json={"model_name": "orphaned"}, timeout=60).json()
    wait_until(lambda: _worker_active_trainings(stack) == 1, 120, "the training on the worker", interval=1)
    # The worker frozen (docker pause) while rasa-x dies, comes back and its job's heartbeat goes
    # stale (30 s): the training outlasts all of that on a machine of any speed.
    worker = stack.container("rasa-worker")
    worker.pause()
    try:
        rasa_x = stack.container("rasa-x")
        rasa_x.kill()
        rasa_x.start()
        wait_until(lambda: _answers(f"{stack.base}/api/health"), 180, "rasa-x back", interval=2)
        fresh = requests.Session()
        fresh.headers["Authorization"] = f"Bearer {stack.login()}"

        def failed():
            state = fresh.get(f"{stack.base}{JOBS}/{job['id']}", timeout=30).json()
            return state if state["status"] == "failed" else None

        state = wait_until(failed, 120, "the job failed by its stale heartbeat", interval=2)
        assert state["retryable"] and "rasa-x stopped" in state["error"]
        # A worker that does not answer cannot say it is idle: no retry.
        refused = fresh.post(f"{stack.base}{JOBS}/{job['id']}/retry", timeout=60)
        assert (refused.status_code, refused.json()["reason"]) == (503, "rasa_unavailable"), refused.text
    finally:
        worker.unpause()
    # The orphaned training goes on where it was frozen: the worker says so on /status, or, when
    # Rasa cancelled the request of the dead rasa-x, answers nothing at all until it is done (its
    # run_in_thread waits for the training thread in the event loop): either way, no retry yet.
    busy = _worker_active_trainings(stack)
    assert busy in (1, UNRESPONSIVE), busy
    refused = fresh.post(f"{stack.base}{JOBS}/{job['id']}/retry", timeout=60)
    expected = (409, "worker_busy") if busy == 1 else (503, "rasa_unavailable")
    assert (refused.status_code, refused.json()["reason"]) == expected, refused.text
    assert fresh.get(f"{stack.base}{JOBS}/{job['id']}", timeout=30).json()["status"] == "failed"

    wait_until(lambda: _worker_active_trainings(stack) == 0, 900, "the orphaned training's end", interval=5)
    assert fresh.post(f"{stack.base}{JOBS}/{job['id']}/retry", timeout=60).status_code == 202

    def done():
        state = fresh.get(f"{stack.base}{JOBS}/{job['id']}", timeout=30).json()
        return state if state["status"] in ("finished", "failed") else None

    final = wait_until(done, 900, "the retried job", interval=3)
    assert final["status"] == "finished" and final["attempts"] == 2, final
    assert "orphaned" in {m["model"] for m in fresh.get(f"{stack.base}/api/models", timeout=30).json()}


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=5).status_code == 200
    except requests.RequestException:
        return False
