"""Talk to your bot and the share link's guest JWT, against real PostgreSQL and the real event
service; rasa-production is absent here (its answers are shown in tests/e2e/test_closing_the_loop.py)."""

from __future__ import annotations

import json
import time
import uuid
from urllib.parse import quote

import jwt
import pytest
import sqlalchemy as sa

from .conftest import bearer


def _user_event(sender: str) -> str:
    return json.dumps({"sender_id": sender, "event": "user", "timestamp": time.time(), "text": "hello",
                       "input_channel": "rasa", "parse_data": {"intent": {"name": "greet", "confidence": 0.9},
                                                               "entities": [], "text": "hello"}})


def test_an_unreachable_rasa_production_is_a_503_naming_it(client, admin, settings):
    response = client.post(f"/api/conversations/talk-{uuid.uuid4().hex[:6]}/messages", json={"message": "hi"},
                           headers=admin)
    assert response.status_code == 503 and response.json["reason"] == "rasa_unavailable"
    assert "rasa-production" in response.json["message"] and settings.rasa_token not in response.json["message"]


@pytest.fixture
def published(client, admin, event_service):
    """Publish a user event as Rasa would; the conversations made are deleted after the test, so
    the other modules' filters see only the fixture events."""
    senders = []

    def publish(sender: str) -> None:
        senders.append(sender)
        event_service.publish_and_wait([(_user_event(sender), "production")])

    yield publish
    for sender in senders:
        assert client.delete(f"/api/conversations/{quote(sender, safe='')}", headers=admin).status_code == 204


def test_a_talked_to_conversation_is_the_talkers_own_and_marked_interactive(client, tokens, published, db_engine):
    sender = f"talk/{uuid.uuid4().hex[:8]}"  # ids may hold '/'
    annotator, tester = bearer(tokens["annotator"]), bearer(tokens["tester"])
    assert client.post(f"/api/conversations/{sender}/messages", json={"message": "hi"}, headers=annotator).status_code == 503
    # The id is the annotator's now: another user may not write to it.
    other = client.post(f"/api/conversations/{sender}/messages", json={"message": "hi"}, headers=tester)
    assert other.status_code == 403 and "another user's" in other.json["message"]
    # When its first event arrives (through the broker, as from Rasa), the row is interactive.
    published(sender)
    with db_engine.connect() as connection:
        assert connection.execute(sa.text("SELECT interactive FROM conversation WHERE sender_id = :s"),
                                  {"s": sender}).scalar() is True


def test_live_traffic_conversations_cannot_be_taken_over(client, admin, published):
    sender = f"live-{uuid.uuid4().hex[:8]}"
    published(sender)
    response = client.post(f"/api/conversations/{sender}/messages", json={"message": "hi"}, headers=admin)
    assert response.status_code == 409 and response.json["reason"] == "conversation_exists"


def test_bad_messages_are_400_and_guests_403(client, admin, tokens):
    for body in ({}, {"message": ""}, {"message": "   "}, {"message": "x" * 5001}, {"message": "hi", "more": 1}):
        assert client.post("/api/conversations/x/messages", json=body, headers=admin).status_code == 400, body
    assert client.post(f"/api/conversations/{'x' * 256}/messages", json={"message": "hi"}, headers=admin).status_code == 400
    assert client.post("/api/conversations/x/messages", json={"message": "hi"},
                       headers=bearer(tokens["guest"])).status_code == 403


def test_a_guest_jwt_never_outlives_its_chat_token_and_a_new_token_revokes_the_old(client, admin):
    short = client.put("/api/chatToken", json={"lifetime": 600}, headers=admin).json["chat_token"]
    guest = client.post("/api/auth/jwt", json={"chat_token": short}).json["access_token"]
    claims = jwt.decode(guest, options={"verify_signature": False})
    assert claims["exp"] <= time.time() + 600 + 1 and claims["user"]["roles"] == ["guest"]
    second = client.post("/api/auth/jwt", json={"chat_token": short}).json["access_token"]
    assert jwt.decode(second, options={"verify_signature": False})["username"] != claims["username"]

    client.put("/api/chatToken", json={}, headers=admin)
    refused = client.post("/api/auth/jwt", json={"chat_token": short})
    assert refused.status_code == 401 and refused.json["reason"] == "invalid_chat_token"


def test_a_conversation_saved_as_a_test_story_replays_its_turns_in_rasas_format(client, admin, stored_events):
    import yaml

    from services.backend.training_data import annotation

    senders = [c["sender_id"] for c in client.get("/api/conversations?limit=20", headers=admin).json]
    checked = 0
    for sender in senders:
        events = client.get(f"/api/conversations/{sender}/tracker", headers=admin).json["events"]
        users = [e for e in events if e["event"] == "user"]
        actions = [e["name"] for e in events if e["event"] == "action"
                   and e["name"] not in ("action_listen", "action_session_start", "action_unlikely_intent")]
        if not users or not actions:
            continue
        response = client.get(f"/api/conversations/{sender}/test_story", headers=admin)
        assert response.status_code == 200 and response.mimetype == "application/x-yaml"
        document = yaml.safe_load(response.data)
        (story,) = document["stories"]
        steps = story["steps"]
        assert [s["action"] for s in steps if "action" in s] == actions
        assert [s.get("intent") for s in steps if "intent" in s or "user" in s] == \
            [(e.get("parse_data") or {}).get("intent", {}).get("name") for e in users]
        for step, event in zip([s for s in steps if "user" in s], [e for e in users if not e["text"].startswith("/")]):
            # The text as typed, with the predicted entities written in Rasa's [text](entity) syntax.
            text, entities = annotation.parse(step["user"])
            assert text == event["text"]
            assert {(e["start"], e["end"], e["entity"]) for e in entities} <= \
                {(e["start"], e["end"], e["entity"]) for e in event["parse_data"].get("entities", [])}
        checked += 1
    assert checked >= 2
    assert client.get("/api/conversations/no-such-one/test_story", headers=admin).status_code == 404
