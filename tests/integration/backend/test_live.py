"""/api/ws against real servers: rasa-x under gunicorn with two workers, the real event service
storing what a publisher acting as Rasa sends through RabbitMQ, PostgreSQL's LISTEN/NOTIFY."""

from __future__ import annotations

import time
import uuid
from urllib.parse import quote

import jwt
import pytest
import requests
import sqlalchemy as sa

from .conftest import ADMIN_PASSWORD, USER_PASSWORD
from .live_client import InvalidStatus, LiveSocket
from .model import conversation_as
from .serving import serving

# Events of a fixture conversation (moodbot's "alice": user, bot, actions) under a new id.
ORIGINAL = "alice"


@pytest.fixture(scope="module")
def server(backend_env, stored_events):
    with serving(backend_env, "rasa-x-live") as served:
        yield served.url


def _login(server: str, username: str, password: str) -> str:
    response = requests.post(f"{server}/api/auth", json={"username": username, "password": password}, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


@pytest.fixture(scope="module")
def token(server, tokens):  # `tokens` creates the users of every role
    return _login(server, "admin", ADMIN_PASSWORD)


@pytest.fixture
def conversations(server, token, event_service):
    """publish(sender): a fixture conversation under `sender`, now, as Rasa would publish it
    (not waiting for it to be stored); what it made is deleted after the test, so the other
    modules' filters see only the fixture events."""
    senders = []

    def publish(sender: str) -> list:
        senders.append(sender)
        shift = time.time() - 1_600_000_000
        messages = conversation_as(ORIGINAL, sender, shift)
        event_service.publish(messages)
        return messages

    yield publish
    headers = {"Authorization": f"Bearer {token}"}
    for sender in senders:
        url = f"{server}/api/conversations/{quote(sender, safe='')}"
        # Its events may still be on their way: delete once all are stored.
        expected = len(conversation_as(ORIGINAL, sender, 0))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            stored = requests.get(url, headers=headers, timeout=10)
            if stored.status_code == 200 and len(stored.json()["events"]) >= expected:
                break
            time.sleep(0.2)
        assert requests.delete(url, headers=headers, timeout=10).status_code == 204


def test_a_subscriber_gets_the_new_events_of_the_conversation_it_watches_and_only_those(server, token, conversations):
    watched, other = f"live-{uuid.uuid4().hex[:8]}", f"live-other-{uuid.uuid4().hex[:8]}"
    socket = LiveSocket(server, token)
    try:
        assert socket.next()["type"] == "ready"
        socket.watch(watched)
        started = time.monotonic()
        published = conversations(watched)
        conversations(other)
        events = socket.events_of(watched, lambda got: len(got) >= len(published))
        latency = time.monotonic() - started
        # Exactly the published events, each once, as the API shows them (is_flagged added).
        texts = sorted((e["event"], e["timestamp"]) for e in events)
        assert texts == sorted((m["event"], m["timestamp"]) for m in map(_json, published))
        assert all(e["is_flagged"] is False for e in events)
        api = requests.get(f"{server}/api/conversations/{watched}", headers={"Authorization": f"Bearer {token}"},
                           timeout=10).json()["events"]
        assert sorted(map(_key, api)) == sorted(map(_key, events))
        assert latency < 10, latency
        # The other conversation shows only in "the list changed" notices, never with its events.
        socket.wait_for(lambda m: m["type"] == "conversations_changed" and other in (m["conversation_ids"] or [other]),
                        10, "a list notice naming the other conversation")
        time.sleep(1)
        while socket.next(0.2) is not None:
            pass
        assert not [m for m in socket.received if m["type"] == "events" and m["conversation_id"] != watched]
        print(f"\nlive update: {len(events)} events of the watched conversation within {latency:.2f} s")
    finally:
        socket.close()


def _json(message):
    import json

    return json.loads(message[0])


def _key(event: dict) -> str:
    import json

    return json.dumps(event, sort_keys=True)


def test_watching_another_conversation_switches_and_the_first_message_may_authenticate(server, token, conversations):
    first, second = f"live-a-{uuid.uuid4().hex[:8]}", f"live-b-{uuid.uuid4().hex[:8]}"
    socket = LiveSocket(server)  # no ?token=: the first message authenticates
    try:
        socket.send({"type": "auth", "token": token})
        assert socket.next()["type"] == "ready"
        socket.watch(first)
        socket.watch(second)
        published = conversations(second)
        conversations(first)
        events = socket.events_of(second, lambda got: len(got) >= len(published))
        assert len(events) == len(published)
        socket.send({"type": "ping"})
        socket.wait_for(lambda m: m == {"type": "pong"})
        # Bad messages get an error and the socket stays.
        socket.send({"type": "watch", "conversation_id": 5})
        assert socket.wait_for(lambda m: m["type"] == "error")["reason"] == "bad_message"
        socket.ws.send("not json")
        assert socket.wait_for(lambda m: m["type"] == "error")["reason"] == "bad_message"
        assert not [m for m in socket.received if m["type"] == "events" and m["conversation_id"] != second]
    finally:
        socket.close()


def test_without_a_valid_jwt_the_socket_is_refused(server, app, tokens):
    keys = app.extensions["rasax"].keys
    now = int(time.time())
    payload = {"user": {"username": "admin", "roles": ["admin"]}, "username": "admin"}
    expired = jwt.encode({**payload, "iat": now - 100, "exp": now - 10}, keys.private_pem, algorithm="RS256")
    # A bad ?token= is the API's 401 before the upgrade.
    for bad in ("not-a-jwt", expired):
        with pytest.raises(InvalidStatus) as refused:
            LiveSocket(server, bad)
        assert refused.value.response.status_code == 401
    # A caller without conversations.view (the guest role): 403.
    with pytest.raises(InvalidStatus) as refused:
        LiveSocket(server, _login(server, "guest-user", USER_PASSWORD))
    assert refused.value.response.status_code == 403
    # Without ?token=, a first message that is not a valid auth closes the socket with 4401.
    for first in ({"type": "watch", "conversation_id": "x"}, {"type": "auth", "token": expired}):
        socket = LiveSocket(server)
        socket.send(first)
        assert socket.close_code() == 4401
        assert not socket.received
    # Saying nothing: closed with 4401 after the auth timeout.
    assert LiveSocket(server).close_code(timeout=20) == 4401
    # Without the upgrade, the path answers 426 after the same checks.
    assert requests.get(f"{server}/api/ws", timeout=10).status_code == 401
    admin = _login(server, "admin", ADMIN_PASSWORD)
    response = requests.get(f"{server}/api/ws", headers={"Authorization": f"Bearer {admin}"}, timeout=10)
    assert response.status_code == 426 and response.json()["reason"] == "upgrade_required"


def _listeners(db_engine) -> int:
    with db_engine.connect() as connection:
        return connection.execute(
            sa.text("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'rasax-live' "
                    "AND datname = current_database()")
        ).scalar()


def test_every_gunicorn_worker_delivers(server, token, conversations, db_engine):
    """Sockets land on both workers of the gunicorn process (each has its own listener then);
    every socket gets the events."""
    sender = f"live-w-{uuid.uuid4().hex[:8]}"
    sockets = []
    try:
        while _listeners(db_engine) < 2:
            assert len(sockets) < 30, "30 sockets all landed on one worker"
            socket = LiveSocket(server, token)
            assert socket.next()["type"] == "ready"
            socket.watch(sender)
            sockets.append(socket)
        published = conversations(sender)
        for socket in sockets:
            assert len(socket.events_of(sender, lambda got: len(got) >= len(published))) == len(published)
    finally:
        for socket in sockets:
            socket.close()


def test_sockets_beyond_a_workers_share_are_refused_and_a_stopping_server_closes_them(backend_env, stored_events):
    """LIVE_SOCKETS_PER_WORKER=1 with two workers: at most two sockets are held, the rest get 503
    before the upgrade, and the API still answers (its threads are not the sockets'). Stopping
    the server closes the held sockets with 1001 (going away) at once, not after gunicorn's
    30 s graceful timeout."""
    with serving({**backend_env, "LIVE_SOCKETS_PER_WORKER": "1"}, "rasa-x-live-full") as served:
        token = _login(served.url, "admin", ADMIN_PASSWORD)
        held, refused = [], 0
        for _ in range(6):
            try:
                socket = LiveSocket(served.url, token)
            except InvalidStatus as exc:
                assert exc.response.status_code == 503
                refused += 1
                continue
            assert socket.next()["type"] == "ready"
            held.append(socket)
        assert 1 <= len(held) <= 2 and refused == 6 - len(held)
        health = requests.get(f"{served.url}/api/conversations", headers={"Authorization": f"Bearer {token}"},
                              timeout=5)
        assert health.status_code == 200
        stopping = time.monotonic()
        served.process.terminate()
        assert {socket.close_code(timeout=10) for socket in held} == {1001}
        assert time.monotonic() - stopping < 10
