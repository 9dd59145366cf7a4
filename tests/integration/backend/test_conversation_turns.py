"""in_training_data of conversations covers their turns: real Rasa conversations (the fixture
moodbot's, through the real event service into PostgreSQL) are in the training data only while
every user message is an NLU example and the stories or rules cover every turn; story, rule and
NLU changes and late events move the flag, and the conversation filters (cached in Redis) agree."""

from __future__ import annotations

import json
import uuid

import pytest

from services.backend.training import story_turns

from .conftest import bearer
from .model import conversation_as
from .training_data_helpers import API, empty_training_data, upload

TAG = f"turns-{uuid.uuid4().hex[:8]}"
SHIFT = 3_000_000.0
HAPPY, SAD, LATE, FORM = (f"{TAG}-{name}" for name in ("happy", "sad", "late", "form"))


def _texts(sender: str) -> list[str]:
    return [f"{sender} one", f"{sender} two"]


def _conversation(original: str, sender: str, number: int) -> list[tuple[str, str | None]]:
    texts = iter(_texts(sender))

    def edit(event):
        if event["event"] == "user":
            event["text"] = event["parse_data"]["text"] = next(texts)

    return conversation_as(original, sender, SHIFT + number * 100, edit)


def _with_form(messages):
    """bob's conversation as one where greet starts a form that then takes mood_great: the
    utter_greet turn becomes feedback_form + its active_loop, the next turn runs inside the form."""
    events = [json.loads(body) for body, _ in messages]
    result = []
    for event in events:
        if event["event"] == "action" and event["name"] == "utter_greet":
            event["name"] = "feedback_form"
            result.append(event)
            result.append({"event": "active_loop", "name": "feedback_form", "timestamp": event["timestamp"] + 0.001, "sender_id": event["sender_id"]})
            continue
        if event["event"] == "action" and event["name"] == "utter_happy":
            result.append({**event, "name": "feedback_form"})
            result.append({"event": "active_loop", "name": None, "timestamp": event["timestamp"] + 0.001, "sender_id": event["sender_id"]})
            event = {**event, "timestamp": event["timestamp"] + 0.002}
        if event["event"] == "bot" and event.get("text") == "Hey! How are you?":
            continue
        result.append(event)
    return [(json.dumps(e), None) for e in result]


@pytest.fixture(scope="module")
def conversations(event_service, stored_events, db_engine, app, tokens):
    empty_training_data(db_engine)
    late = _conversation("bob", LATE, 2)
    event_service.publish_and_wait(
        _conversation("bob", HAPPY, 0) + _conversation("alice", SAD, 1) + _with_form(_conversation("bob", FORM, 3))
        # LATE: its first turn without the bot's answer yet (the rest comes in a test)
        + late[:4]
    )
    yield late[4:]
    empty_training_data(db_engine)
    client = app.test_client()
    for sender in (HAPPY, SAD, LATE, FORM):
        assert client.delete(f"/api/conversations/{sender}", headers=bearer(tokens["admin"])).status_code == 204


def _flag(client, admin, sender: str) -> bool:
    listed = {c["sender_id"]: c for c in client.get(f"/api/conversations?limit=1000", headers=admin).json}
    trained = {c["sender_id"] for c in client.get("/api/conversations?limit=1000&in_training_data=true", headers=admin).json}
    untrained = {c["sender_id"] for c in client.get("/api/conversations?limit=1000&in_training_data=false", headers=admin).json}
    flag = listed[sender]["in_training_data"]
    # The filters (their totals cached apart) agree with the flag, and with each other.
    assert (sender in trained) == flag != (sender in untrained), (sender, flag)
    for query, members in (("true", trained), ("false", untrained)):
        response = client.get(f"/api/conversations?limit=1&in_training_data={query}", headers=admin)
        assert int(response.headers["X-Total-Count"]) == len(members)
    return flag


def _flags(client, admin) -> dict[str, bool]:
    return {sender: _flag(client, admin, sender) for sender in (HAPPY, SAD, LATE, FORM)}


def _nlu(*senders: str) -> bytes:
    lines = "".join(f"    - {text}\n" for sender in senders for text in _texts(sender))
    return f"nlu:\n- intent: greet\n  examples: |\n{lines}".encode()


GREET = [{"intent": "greet"}, {"action": "utter_greet"}]
HAPPY_STORY = {"story": f"{TAG} happy", "steps": [*GREET, {"intent": "mood_great"}, {"action": "utter_happy"}]}


def test_story_turns_follow_or_and_checkpoints():
    blocks = [
        {"story": "a", "steps": [{"intent": "greet"}, {"action": "utter_greet"}, {"checkpoint": "c"}]},
        {"story": "b", "steps": [{"checkpoint": "c"}, {"action": "utter_ask"}, {"or": [{"intent": "affirm"}, {"intent": "thanks"}]},
                                 {"slot_was_set": [{"x": 1}]}, {"action": "utter_glad"}, {"bot": "Bye!"}]},
        {"story": "d", "steps": [{"checkpoint": "c"}, {"user": "hi [Ann](name)"}, {"action": "utter_hi"}]},
        {"rule": "r", "condition": [{"active_loop": "f"}], "steps": [{"action": "f"}, {"active_loop": None}, {"action": "utter_done"}]},
    ]  # fmt: skip
    assert story_turns(blocks) - story_turns([]) == {
        ("intent:greet", ("utter_greet", "utter_ask")),  # continued after the checkpoint in b
        ("intent:greet", ("utter_greet",)),  # ... and in d, which goes on with a user step
        ("intent:affirm", ("utter_glad", "bot:Bye!")),
        ("intent:thanks", ("utter_glad", "bot:Bye!")),
        ("text:hi Ann", ("utter_hi",)),
    }


def test_messages_in_the_nlu_data_are_not_enough(client, admin, conversations):
    assert _flags(client, admin) == {HAPPY: False, SAD: False, LATE: False, FORM: False}
    assert upload(client, admin, {"nlu.yml": _nlu(HAPPY, SAD, LATE, FORM)}, "merge").status_code == 200
    # Every message is training data now, but no story or rule covers a turn.
    assert _flags(client, admin) == {HAPPY: False, SAD: False, LATE: False, FORM: False}


def test_stories_and_rules_cover_turns(client, admin, conversations):
    created = client.post("/api/stories", json=HAPPY_STORY, headers=admin)
    assert created.status_code == 201, created.json
    # HAPPY is greet → utter_greet, mood_great → utter_happy; SAD's second turn is
    # mood_unhappy → utter_cheer_up, utter_did_that_help; LATE has no answer to its greet yet;
    # FORM's greet started feedback_form, which no rule starts.
    assert _flags(client, admin) == {HAPPY: True, SAD: False, LATE: False, FORM: False}
    # SAD's second turn, through an or-statement and a checkpoint to another story.
    sad = client.post("/api/stories", json={"story": f"{TAG} sad", "steps": [
        *GREET, {"or": [{"intent": "mood_unhappy"}, {"intent": "deny"}]}, {"action": "utter_cheer_up"}, {"checkpoint": "helped"}]},
        headers=admin)  # fmt: skip
    assert sad.status_code == 201, sad.json
    assert not _flag(client, admin, SAD)  # utter_did_that_help is missing still
    helped = client.post("/api/stories", json={"story": f"{TAG} helped", "steps": [{"checkpoint": "helped"}, {"action": "utter_did_that_help"}]}, headers=admin)
    assert helped.status_code == 201
    assert _flag(client, admin, SAD)
    # A rule that starts the form: the turn inside it is the form's.
    rule = {"rule": f"{TAG} form", "steps": [{"intent": "greet"}, {"action": "feedback_form"}, {"active_loop": "feedback_form"}]}
    assert client.post("/api/rules", json=rule, headers=admin).status_code == 201
    assert _flag(client, admin, FORM)
    # Removing a story or changing its step undoes what it covered.
    assert client.delete(f"/api/stories/{helped.json['id']}", headers=admin).status_code == 204
    assert not _flag(client, admin, SAD)
    changed = {**HAPPY_STORY, "steps": [*GREET, {"intent": "mood_great"}, {"action": "utter_goodbye"}]}
    assert client.put(f"/api/stories/{created.json['id']}", json=changed, headers=admin).status_code == 200
    assert not _flag(client, admin, HAPPY)
    assert client.put(f"/api/stories/{created.json['id']}", json=HAPPY_STORY, headers=admin).status_code == 200
    assert _flag(client, admin, HAPPY)


def test_nlu_changes_still_count(client, admin, conversations):
    example = client.get(f"{API}/training_examples?text={HAPPY} two", headers=admin).json[0]
    assert client.delete(f"{API}/training_examples/{example['id']}", headers=admin).status_code == 204
    assert not _flag(client, admin, HAPPY)
    assert client.post(f"{API}/training_examples", json={"text": f"{HAPPY} two", "intent": "mood_great"}, headers=admin).status_code == 201
    assert _flag(client, admin, HAPPY)


def test_the_answer_arriving_later_covers_the_turn(client, admin, conversations, event_service):
    assert not _flag(client, admin, LATE)
    event_service.publish_and_wait(conversations)
    assert _flag(client, admin, LATE)


def test_an_import_replacing_the_stories_recomputes(client, admin, conversations):
    stories = b"stories:\n- story: only greet\n  steps:\n  - intent: greet\n  - action: utter_greet\n"
    assert upload(client, admin, {"stories.yml": stories}, "replace").status_code == 200
    flags = _flags(client, admin)
    assert flags[HAPPY] is flags[SAD] is flags[LATE] is False and flags[FORM] is True
    assert upload(client, admin, {"stories.yml": stories.replace(b"only greet", b"x") + b"  - intent: mood_great\n  - action: utter_happy\n"}, "replace").status_code == 200
    assert _flag(client, admin, HAPPY) and _flag(client, admin, LATE)
