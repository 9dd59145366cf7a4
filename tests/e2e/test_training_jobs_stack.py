"""On the real stack, real Rasa everywhere: what closing the loop must survive.

- A replaced share link revokes its guests on every path nginx has to Rasa's `rasa` channel
  (/api/chat, /webhooks/rasa/webhook, /core/webhooks/rasa/webhook; the JWT in the header or in
  ?token=), and a request without a JWT is 401 there, not Rasa's 500: nginx asks rasa-x first.
- rasa-x killed (the container, SIGKILL) while the worker trains: the job shows failed and
  retryable once rasa-x is back, and its retry is refused while the worker's own /status still
  counts the orphaned training, then accepted and trained once the worker is done.
- NLU evaluation of the held-back part of the data on the worker.

One stack for the module (Rasa servers included); moodbot trains in about a minute on two cores.
"""

from __future__ import annotations

import json

import pytest
import requests

from tests.conftest import FIXTURES_DIR, wait_until
from tests.e2e.deployment import cli, running_stack

pytestmark = [pytest.mark.docker, pytest.mark.timeout(2400)]

JOBS = "/api/projects/default/models/jobs"


@pytest.fixture(scope="module")
def stack(docker_client, tmp_path_factory, request):
    with running_stack(docker_client, tmp_path_factory.mktemp("jobs") / "rasa", "rxjobs", request, rasa=True) as stack:
        yield stack


@pytest.fixture(scope="module")
def session(stack):
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {stack.login()}"
    return http


def _container(stack, service: str):
    return next(c for c in stack.containers() if c.labels.get("com.docker.compose.service") == service)


@pytest.fixture(scope="module")
def trained_model(stack, session):
    """moodbot trained through rasa-x on the worker (`rasax-deploy train`)."""
    cli("data", "import", "--dir", str(stack.dir), "--mode", "replace", f"{FIXTURES_DIR}/moodbot")
    result = cli("train", "--dir", str(stack.dir), "--json", timeout=1800)
    job = json.loads(result.stdout.splitlines()[-1])["job"]
    assert job["status"] == "finished", job
    return job["model"]


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
    code, output = _container(stack, "rasa-worker").exec_run(["python", "-c", script])
    text = output.decode(errors="replace").strip()
    assert code == 0, text
    return None if text == "http 409" else text if text == UNRESPONSIVE else int(text)


def test_a_held_back_part_is_evaluated_on_the_worker(stack, session, trained_model):
    url = f"{stack.base}/api/projects/default/evaluations/{trained_model}"
    response = session.put(url, params={"holdout": "0.3"}, timeout=600)
    assert response.status_code == 200, response.text
    evaluation = response.json()
    total = session.get(f"{stack.base}/api/projects/default/data_version", timeout=30).json()
    assert evaluation["holdout"] == 0.3 and 0 < evaluation["examples"]
    confusion = evaluation["intent_evaluation"]["confusion"]
    assert sum(map(sum, confusion["matrix"])) == evaluation["examples"], (confusion, total)
    assert session.delete(url, timeout=30).status_code == 204
    assert session.get(url, timeout=30).status_code == 404


def test_a_retry_after_rasa_x_was_killed_waits_for_the_workers_orphaned_training(stack, session, trained_model):
    if _worker_active_trainings(stack) is None:
        # No model loaded on the worker yet (Rasa's /status needs one): an evaluation loads one.
        session.put(f"{stack.base}/api/projects/default/evaluations/{trained_model}", timeout=600).raise_for_status()
    assert _worker_active_trainings(stack) == 0
    # A configuration that trains for minutes (no cached component fits it), so that the worker is
    # still at it when rasa-x is back.
    config = session.get(f"{stack.base}/api/projects/default/config", timeout=30).json()
    for component in (*config["pipeline"], *config["policies"]):
        if component["name"] in ("DIETClassifier", "TEDPolicy"):
            component["epochs"] = 150
    assert session.put(f"{stack.base}/api/projects/default/config", json=config, timeout=30).status_code == 200
    job = session.post(f"{stack.base}{JOBS}", json={"model_name": "orphaned"}, timeout=60).json()
    wait_until(lambda: _worker_active_trainings(stack) == 1, 120, "the training on the worker", interval=1)

    rasa_x = _container(stack, "rasa-x")
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
    # The orphaned training still runs on the worker, which says so on /status, or, when Rasa
    # cancelled the request of the dead rasa-x, answers nothing at all until it is done (its
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
