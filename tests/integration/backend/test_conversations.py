"""GET /api/conversations and the facet lists, over events stored by the real event service."""

from __future__ import annotations

import json

import pytest

from .model import CORRECTION_SENDER, WORKER_PREFIX, expected_conversations

EXPECTED = expected_conversations()
ALL = set(EXPECTED)
MIDDLE_TIME = sorted(c.latest_event_time for c in EXPECTED.values())[len(EXPECTED) // 2]


def _senders(client, headers, query: str = "") -> tuple[list[str], int]:
    if "limit=" not in query:
        query += "&limit=1000"
    response = client.get(f"/api/conversations?{query}", headers=headers)
    assert response.status_code == 200, response.json
    return [c["sender_id"] for c in response.json], int(response.headers["X-Total-Count"])


def _where(predicate) -> set[str]:
    return {s for s, c in EXPECTED.items() if predicate(c)}


FILTERS = [
    (f"start={MIDDLE_TIME}", lambda c: c.latest_event_time >= MIDDLE_TIME),
    (f"until={MIDDLE_TIME}", lambda c: c.latest_event_time <= MIDDLE_TIME),
    ("minimumConfidence=0.9", lambda c: c.minimum_action_confidence is not None and c.minimum_action_confidence >= 0.9),
    ("maximumConfidence=0.6", lambda c: c.minimum_action_confidence is not None and c.minimum_action_confidence <= 0.6),
    ("minimumNluConfidence=0.99", lambda c: c.minimum_intent_confidence is not None and c.minimum_intent_confidence >= 0.99),
    ("maximumNluConfidence=0.99", lambda c: c.minimum_intent_confidence is not None and c.minimum_intent_confidence <= 0.99),
    ("minimumUserMessages=3", lambda c: c.user_messages >= 3),
    ("policies=MemoizationPolicy", lambda c: "MemoizationPolicy" in c.policies),
    ("policies=followup_action,MemoizationPolicy", lambda c: c.policies & {"followup_action", "MemoizationPolicy"}),
    ("intent=mood_unhappy", lambda c: "mood_unhappy" in c.intents),
    ("intent=bot_challenge,deny", lambda c: c.intents & {"bot_challenge", "deny"}),
    ("entity=mood", lambda c: "mood" in c.entities),
    ("action=utter_cheer_up", lambda c: "utter_cheer_up" in c.actions),
    ("text=SAD", lambda c: any("sad" in t.lower() for t in c.texts)),
    ("text=am f", lambda c: any("am f" in t.lower() for t in c.texts)),
    ("rasa_environment=worker", lambda c: c.environment == "worker"),
    ("rasa_environment=production", lambda c: c.environment == "production"),
    ("input_channels=socketio", lambda c: "socketio" in c.input_channels),
    ("input_channels=rest", lambda c: "rest" in c.input_channels),
    ("slots=session_started_metadata", lambda c: any(name == "session_started_metadata" for name, _ in c.slots)),
    (
        "slots=" + 'session_started_metadata:{"channel_user": "d-1"}',
        lambda c: ("session_started_metadata", json.dumps({"channel_user": "d-1"})) in c.slots,
    ),
    ("intent=greet&rasa_environment=worker", lambda c: "greet" in c.intents and c.environment == "worker"),
]


@pytest.mark.parametrize("query,predicate", FILTERS, ids=[q for q, _ in FILTERS])
def test_each_filter_narrows_to_exactly_the_matching_conversations(client, admin, query, predicate):
    expected = _where(predicate)
    # The data must make the filter meaningful: it keeps some conversations and drops others.
    assert expected and expected != ALL, f"test data cannot exercise {query}"
    senders, total = _senders(client, admin, query)
    assert set(senders) == expected
    assert total == len(expected) == len(senders)


def test_text_filter_takes_like_wildcards_literally(client, admin):
    assert _senders(client, admin, "text=%25")[0] == []
    assert _senders(client, admin, "text=h_llo")[0] == []
    assert _senders(client, admin, "text=hello")[0]


def test_the_unfiltered_list_has_every_conversation_with_its_facts(client, admin):
    response = client.get("/api/conversations?limit=1000", headers=admin)
    by_id = {c["sender_id"]: c for c in response.json}
    assert set(by_id) == ALL
    for sender, expected in EXPECTED.items():
        got = by_id[sender]
        assert got["rasa_environment"] == expected.environment
        assert set(got["intents"]) == expected.intents
        assert set(got["actions"]) == expected.actions
        assert set(got["policies"]) == expected.policies
        assert set(got["entities"]) == expected.entities
        assert got["n_user_messages"] == expected.user_messages
        assert got["latest_event_time"] == expected.latest_event_time
        assert got["minimum_action_confidence"] == expected.minimum_action_confidence
        assert got["minimum_intent_confidence"] == expected.minimum_intent_confidence


def test_sorting_and_paging(client, admin):
    by_time = sorted(EXPECTED.values(), key=lambda c: (c.latest_event_time, c.sender_id), reverse=True)
    senders, total = _senders(client, admin)
    assert senders == [c.sender_id for c in by_time] and total == len(EXPECTED)
    ascending, _ = _senders(client, admin, "sort_by_latest_event_time=false")
    assert ascending == list(reversed(senders))
    page, total = _senders(client, admin, "limit=2&offset=1")
    assert page == senders[1:3] and total == len(EXPECTED)
    by_confidence, _ = _senders(client, admin, "sort_by_confidence=true")
    confidences = [EXPECTED[s].minimum_action_confidence for s in by_confidence]
    known = [c for c in confidences if c is not None]
    assert known == sorted(known) and confidences[: len(known)] == known


def test_exclude_self_drops_the_callers_own_conversation(client, db_engine, settings, app):
    from services.backend.users import create_user

    import sqlalchemy as sa

    # A user whose name is a sender id: their own test chats are what exclude_self hides.
    with db_engine.begin() as connection:
        create_user(connection, "carol", "carol-password-1", ["annotator"], settings.password_salt, if_absent=True)
    token = client.post("/api/auth", json={"username": "carol", "password": "carol-password-1"}).json["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    senders, _ = _senders(client, headers, "exclude_self=true")
    assert set(senders) == ALL - {"carol"}
    senders, _ = _senders(client, headers)
    assert "carol" in senders
    with db_engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM rasa_x_user WHERE username = 'carol'"))


def test_interactive_conversations_are_listed_apart(client, admin, db_engine, app):
    import sqlalchemy as sa

    one = sorted(ALL)[0]
    with db_engine.begin() as connection:
        connection.execute(sa.text("UPDATE conversation SET interactive = true WHERE sender_id = :s"), {"s": one})
    # In a stack the flag comes with the conversation's first event, which refreshes the cached
    # totals; this change behind the cache's back says so itself.
    app.extensions["rasax"].cache.invalidate("conversations")
    try:
        senders, total = _senders(client, admin)
        assert set(senders) == ALL - {one} and total == len(ALL) - 1
        assert _senders(client, admin, "interactive=true") == ([one], 1)
        assert client.get("/api/conversations?interactive=maybe", headers=admin).status_code == 400
    finally:
        with db_engine.begin() as connection:
            connection.execute(sa.text("UPDATE conversation SET interactive = false WHERE sender_id = :s"), {"s": one})
        app.extensions["rasax"].cache.invalidate("conversations")


def test_facet_lists_hold_every_distinct_value(client, admin):
    def facet(path):
        response = client.get(path, headers=admin)
        assert response.status_code == 200
        return response.json

    union = lambda attribute: set().union(*(getattr(c, attribute) for c in EXPECTED.values()))  # noqa: E731
    assert facet("/api/conversationIntents") == sorted(union("intents"))
    assert facet("/api/conversationActions") == sorted(union("actions"))
    assert facet("/api/conversationPolicies") == sorted(union("policies"))
    assert facet("/api/conversationEntities") == ["mood"]
    assert facet("/api/conversations/inputChannels") == ["rest", "socketio"]
    assert facet("/api/conversations/slotNames") == ["session_started_metadata"]
    values = facet("/api/conversations/slotValues?slot=session_started_metadata")
    expected_values = {value for c in EXPECTED.values() for name, value in c.slots}
    assert {json.dumps(v["value"], sort_keys=True) for v in values} == expected_values


def test_one_conversation_tracker_and_messages(client, admin):
    sender = "alice"
    expected = EXPECTED[sender]
    response = client.get(f"/api/conversations/{sender}", headers=admin)
    assert response.status_code == 200
    assert [e["timestamp"] for e in response.json["events"]] == sorted(expected.timestamps)
    tracker = client.get(f"/api/conversations/{sender}/tracker", headers=admin).json
    assert tracker["sender_id"] == sender
    assert len(tracker["events"]) == len(expected.timestamps)
    assert tracker["latest_message"]["text"] == expected.texts[-1]
    messages = client.get(f"/api/conversations/{sender}/messages", headers=admin).json["messages"]
    assert [m["text"] for m in messages if m["type"] == "user"] == expected.texts
    assert client.get("/api/conversations/nobody/messages", headers=admin).status_code == 404


def test_statistics_sum_the_stored_counters(client, admin):
    stats = client.get("/api/statistics", headers=admin).json
    assert stats["user_messages"] == sum(c.user_messages for c in EXPECTED.values())
    assert stats["conversations"] == len(EXPECTED)
    worker = client.get("/api/statistics?rasa_environment=worker", headers=admin).json
    workers = [c for c in EXPECTED.values() if c.environment == "worker"]
    assert worker["user_messages"] == sum(c.user_messages for c in workers)
    assert worker["conversations"] == len(workers)
    assert set(worker["top_intents"]) <= set().union(*(c.intents for c in workers))


def test_review_status_filter_follows_updates(client, tokens):
    annotator = {"Authorization": f"Bearer {tokens['annotator']}"}
    sender = WORKER_PREFIX + "xmode-1"
    senders, _ = _senders(client, annotator, "review_status=reviewed")
    assert sender not in senders  # everything starts unread
    response = client.put(f"/api/conversations/{sender}/reviewStatus", json={"review_status": "reviewed"}, headers=annotator)
    assert response.status_code == 200 and response.json["review_status"] == "reviewed"
    assert _senders(client, annotator, "review_status=reviewed")[0] == [sender]
    assert sender not in _senders(client, annotator, "review_status=unread")[0]
    bad = client.put(f"/api/conversations/{sender}/reviewStatus", json={"review_status": "done"}, headers=annotator)
    assert bad.status_code == 400 and bad.json["reason"] == "bad_body"
    client.put(f"/api/conversations/{sender}/reviewStatus", json={"review_status": "unread"}, headers=annotator)


def test_flags_and_the_is_flagged_filter(client, admin):
    sender = "bob"
    timestamp = [m for m in client.get(f"/api/conversations/{sender}/messages", headers=admin).json["messages"]][0]["timestamp"]
    assert client.put(f"/api/conversations/{sender}/messages/{timestamp}/flag", headers=admin).status_code == 200
    assert _senders(client, admin, "is_flagged=true")[0] == [sender]
    assert sender not in _senders(client, admin, "is_flagged=false")[0]
    messages = client.get(f"/api/conversations/{sender}/messages", headers=admin).json["messages"]
    assert [m["is_flagged"] for m in messages if m["timestamp"] == timestamp] == [True]
    assert client.delete(f"/api/conversations/{sender}/messages/{timestamp}/flag", headers=admin).status_code == 200
    assert _senders(client, admin, "is_flagged=true")[0] == []
    assert client.put(f"/api/conversations/{sender}/messages/12.5/flag", headers=admin).status_code == 404
    assert client.put(f"/api/conversations/{sender}/messages/soon/flag", headers=admin).status_code == 400


def test_tags_and_the_tags_any_filter(client, admin):
    created = client.post("/api/conversations/dave/tags", json=[{"value": "needs-work", "color": "#ff0000"}], headers=admin)
    assert created.status_code == 201
    tag_id = created.json[0]["id"]
    client.post("/api/conversations/xmode-0/tags", json={"value": "needs-work"}, headers=admin)
    assert set(_senders(client, admin, f"tags_any={tag_id}")[0]) == {"dave", "xmode-0"}
    listed = client.get("/api/conversations/tags", headers=admin).json
    assert [(t["value"], t["color"], t["conversations"]) for t in listed] == [("needs-work", "#ff0000", ["dave", "xmode-0"])]
    assert client.get("/api/conversations/dave/tags", headers=admin).json == [{"id": tag_id, "value": "needs-work", "color": "#ff0000"}]
    assert client.delete(f"/api/conversations/dave/tags/{tag_id}", headers=admin).status_code == 204
    assert _senders(client, admin, f"tags_any={tag_id}")[0] == ["xmode-0"]
    assert client.delete(f"/api/conversations/tags/{tag_id}", headers=admin).status_code == 204
    assert _senders(client, admin, f"tags_any={tag_id}")[0] == []
    assert client.delete(f"/api/conversations/tags/{tag_id}", headers=admin).status_code == 404
    assert client.post("/api/conversations/dave/tags", json=[{"value": "x", "color": "red"}], headers=admin).status_code == 400


def test_intent_correction_feeds_training_data_and_in_training_data(client, admin, db_engine):
    import sqlalchemy as sa

    sender = CORRECTION_SENDER
    assert sender not in _senders(client, admin, "in_training_data=true")[0]
    messages = client.get(f"/api/conversations/{sender}/messages", headers=admin).json["messages"]
    users = [m for m in messages if m["type"] == "user"]
    from services.backend.training import sync_story_turns

    with db_engine.begin() as connection:
        # Its turns (alice's) are a story's...
        steps = [{"intent": "greet"}, {"action": "utter_greet"}, {"intent": "mood_unhappy"}, {"action": "utter_cheer_up"}, {"action": "utter_did_that_help"}]
        connection.execute(sa.text("INSERT INTO story (kind, name, story) VALUES ('story', :n, :s)"), {"n": sender, "s": json.dumps({"story": sender, "steps": steps})})
        sync_story_turns(connection)
        # ...and every other text of this conversation is already known training data...
        for message in users[1:]:
            connection.execute(
                sa.text("INSERT INTO training_example (hash, text, intent) VALUES (encode(sha256(convert_to(:t, 'UTF8')), 'hex'), :t, 'x') ON CONFLICT DO NOTHING"),
                {"t": message["text"]},
            )
    # ...so correcting the first one makes the whole conversation part of the training data.
    timestamp = users[0]["timestamp"]
    response = client.put(f"/api/conversations/{sender}/messages/{timestamp}/intent", json={"intent": "bot_challenge"}, headers=admin)
    assert response.status_code == 200, response.json
    assert sender in _senders(client, admin, "in_training_data=true")[0]
    corrected = client.get(f"/api/conversations/{sender}/messages", headers=admin).json["messages"]
    assert [m["corrected_intent"] for m in corrected if m["timestamp"] == timestamp] == ["bot_challenge"]
    with db_engine.connect() as connection:
        intent = connection.execute(sa.text("SELECT intent FROM training_example WHERE text = :t"), {"t": users[0]["text"]}).scalar()
    assert intent == "bot_challenge"
    assert client.delete(f"/api/conversations/{sender}/messages/{timestamp}/intent", headers=admin).status_code == 204
    assert sender in _senders(client, admin, "in_training_data=false")[0]
    assert client.delete(f"/api/conversations/{sender}/messages/{timestamp}/intent", headers=admin).status_code == 404
    with db_engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM training_example WHERE intent = 'x'"))
        connection.execute(sa.text("DELETE FROM story WHERE name = :n"), {"n": sender})
        sync_story_turns(connection)
