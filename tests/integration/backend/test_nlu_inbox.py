"""The NLU inbox against the real event service: messages Rasa sent appear once per text, leave
when annotated or archived (one or many, all or nothing), and the counts move by exactly that."""

from __future__ import annotations

import itertools
import uuid

import pytest

from .conftest import bearer
from .model import conversation_as
from .training_data_helpers import API, check_schema, empty_training_data

TAG = f"inbox-{uuid.uuid4().hex[:8]}"
FIX = f"fix-{uuid.uuid4().hex[:8]}"  # the conversation the correction test corrects, apart from TAG's
KNOWN = f"known-{uuid.uuid4().hex[:8]}"  # the conversation whose texts become training data by import
SHIFT = 2_000_000.0  # the test's conversations happen later than the fixtures'


def _texts(conversation: int) -> list[str]:
    return [f"{TAG} c{conversation} first", f"{TAG} c{conversation} second"]


# conversation → (its two texts, intent and confidence of each); conversation 3 repeats a text of 0.
CONVERSATIONS = {
    0: (_texts(0), ("greet", 0.95)),
    1: (_texts(1), ("mood_great", 0.6)),
    2: (_texts(2), ("greet", 0.3)),
    3: ([_texts(0)[0], f"{TAG} c3 second"], ("mood_great", 0.45)),
}


def _conversation(number: int, texts=None, sender=None):
    given, (intent, confidence) = CONVERSATIONS.get(number, ([], ("greet", 0.9)))
    users = iter(texts or given)

    def edit(event):
        if event["event"] == "user":
            event["text"] = event["parse_data"]["text"] = next(users)
            event["parse_data"]["intent"] = {"name": intent, "confidence": confidence}
            event["parse_data"]["intent_ranking"] = [event["parse_data"]["intent"]]
            if number == 1:
                event["parse_data"]["entities"] = [{"entity": "mood", "start": len(TAG) + 4, "end": len(TAG) + 9,
                                                    "value": event["text"][len(TAG) + 4 : len(TAG) + 9],
                                                    "extractor": "DIETClassifier", "confidence_entity": 0.9}]  # fmt: skip

    return conversation_as("bob", sender or f"{TAG}-{number}", SHIFT + number * 100, edit)


@pytest.fixture(scope="module")
def published(event_service, stored_events, db_engine, app, tokens):
    empty_training_data(db_engine)
    correction = _conversation(9, [f"{FIX} first", f"{FIX} second"], FIX)
    known = _conversation(10, [f"{KNOWN} first", f"{KNOWN} second"], KNOWN)
    event_service.publish_and_wait(list(itertools.chain.from_iterable(_conversation(n) for n in CONVERSATIONS)) + correction + known)
    yield
    empty_training_data(db_engine)
    client = app.test_client()
    for sender in [*(f"{TAG}-{n}" for n in CONVERSATIONS), FIX, KNOWN]:
        assert client.delete(f"/api/conversations/{sender}", headers=bearer(tokens["admin"])).status_code == 204


def _inbox(client, admin, query: str = "") -> tuple[list[dict], int]:
    response = client.get(f"{API}/logs?{query}&text={TAG}&limit=100", headers=admin)
    assert response.status_code == 200, response.json
    check_schema("GET", f"{API}/logs", response)
    return response.json, int(response.headers["X-Total-Count"])


def _counts(client, admin) -> tuple[int, int]:
    inbox = int(client.get(f"{API}/logs?limit=1", headers=admin).headers["X-Total-Count"])
    examples = int(client.get(f"{API}/training_examples?limit=1", headers=admin).headers["X-Total-Count"])
    return inbox, examples


def _id_of(client, admin, text: str) -> int:
    return next(m["id"] for m in _inbox(client, admin)[0] if m["text"] == text)


def test_each_text_shows_once_with_where_it_came_from(client, admin, published):
    items, total = _inbox(client, admin)
    expected = {t for texts, _ in CONVERSATIONS.values() for t in texts}
    assert total == len(items) == len(expected) == 7
    assert {m["text"] for m in items} == expected
    # The repeated text shows its latest message: conversation 3's.
    repeated = next(m for m in items if m["text"] == _texts(0)[0])
    assert repeated["conversation_id"] == f"{TAG}-3" and repeated["intent"] == "mood_great"
    assert all(m["event_id"] and m["intent_ranking"] for m in items)
    assert [m["time"] for m in items] == sorted((m["time"] for m in items), reverse=True)
    page, paged_total = _inbox(client, admin, "limit=3&offset=3")
    assert paged_total == 7 and [m["id"] for m in page] == [m["id"] for m in items[3:6]]


def test_filters(client, admin, published):
    # Filters choose messages; each text then shows once, from its latest matching message.
    greet, _ = _inbox(client, admin, "intent=greet")
    assert {m["text"] for m in greet} == {*_texts(2), *_texts(0)}
    assert {m["conversation_id"] for m in greet} == {f"{TAG}-0", f"{TAG}-2"}
    confident, _ = _inbox(client, admin, "minimumConfidence=0.5&maximumConfidence=0.99")
    assert {m["conversation_id"] for m in confident} == {f"{TAG}-0", f"{TAG}-1"}
    items, _ = _inbox(client, admin)
    times = sorted(m["time"] for m in items)
    window, _ = _inbox(client, admin, f"start={times[2]}&until={times[4]}")
    assert sorted(m["time"] for m in window) == times[2:5]
    assert client.get(f"{API}/logs?minimumConfidence=high", headers=admin).status_code == 400


def test_annotate_one_makes_an_example_and_it_leaves_the_inbox(client, admin, published):
    before = _counts(client, admin)
    text = _texts(1)[0]
    response = client.put(f"{API}/logs/{_id_of(client, admin, text)}", json={"intent": "mood_great"}, headers=admin)
    assert response.status_code == 200, response.json
    check_schema("PUT", f"{API}/logs/1", response)
    # No entities given: Rasa's prediction is kept, in training data's shape.
    assert response.json["entities"] == [{"start": len(TAG) + 4, "end": len(TAG) + 9, "entity": "mood", "value": text[len(TAG) + 4 : len(TAG) + 9]}]
    assert _counts(client, admin) == (before[0] - 1, before[1] + 1)
    assert text not in {m["text"] for m in _inbox(client, admin)[0]}
    # Deleting the example later does not bring the annotated message back (RasaHQ/rasa#7043).
    assert client.delete(f"{API}/training_examples/{response.json['id']}", headers=admin).status_code == 204
    assert _counts(client, admin) == (before[0] - 1, before[1])


def test_annotate_with_entities_and_archive_one(client, admin, published):
    before = _counts(client, admin)
    text = _texts(2)[0]
    log_id = _id_of(client, admin, text)
    bad = client.put(f"{API}/logs/{log_id}", json={"intent": "greet", "entities": [{"start": 0, "end": 999, "entity": "x"}]}, headers=admin)
    assert bad.status_code == 400 and "outside the text" in bad.json["message"]
    entity = {"start": 0, "end": len(TAG), "entity": "tag", "role": "marker"}
    response = client.put(f"{API}/logs/{log_id}", json={"intent": "greet", "entities": [entity]}, headers=admin)
    assert response.status_code == 200
    assert response.json["entities"] == [{**entity, "value": TAG}]
    assert client.put(f"{API}/logs/{log_id}", json={"intent": "greet"}, headers=admin).status_code == 404
    archived_id = _id_of(client, admin, _texts(2)[1])
    assert client.delete(f"{API}/logs/{archived_id}", headers=admin).status_code == 204
    assert client.delete(f"{API}/logs/{archived_id}", headers=admin).status_code == 404
    assert _counts(client, admin) == (before[0] - 2, before[1] + 1)


def test_bulk_annotate_and_archive_are_all_or_nothing(client, admin, published):
    before = _counts(client, admin)
    first, second = _id_of(client, admin, _texts(0)[0]), _id_of(client, admin, _texts(0)[1])
    refused = client.post(f"{API}/logs/annotations", json=[{"id": first, "intent": "greet"}, {"id": 2**40, "intent": "greet"}], headers=admin)
    assert refused.status_code == 404 and str(2**40) in refused.json["message"]
    assert _counts(client, admin) == before
    done = client.post(f"{API}/logs/annotations", json=[{"id": first, "intent": "greet"}, {"id": second, "intent": "greet"}], headers=admin)
    assert done.status_code == 200, done.json
    check_schema("POST", f"{API}/logs/annotations", done)
    assert sorted(e["text"] for e in done.json) == sorted(_texts(0))
    # The repeated text leaves with all its messages: conversation 3's copy does not show either.
    assert _counts(client, admin) == (before[0] - 2, before[1] + 2)

    rest = [m["id"] for m in _inbox(client, admin)[0]]
    assert client.post(f"{API}/logs/archive", json={"ids": [*rest, first]}, headers=admin).status_code == 404
    assert _counts(client, admin) == (before[0] - 2, before[1] + 2)
    archived = client.post(f"{API}/logs/archive", json={"ids": rest}, headers=admin)
    assert archived.json == {"archived": len(rest)}
    assert _counts(client, admin) == (before[0] - 2 - len(rest), before[1] + 2)
    assert _inbox(client, admin) == ([], 0)


def test_a_correction_in_a_conversation_takes_the_same_path(client, admin, published):
    sender = FIX
    user = [m for m in client.get(f"/api/conversations/{sender}/messages", headers=admin).json["messages"] if m["type"] == "user"][1]
    assert user["text"] in {m["text"] for m in client.get(f"{API}/logs?text={FIX}", headers=admin).json}
    before = _counts(client, admin)
    entity = {"start": 0, "end": len(FIX), "entity": "tag"}
    response = client.put(f"/api/conversations/{sender}/messages/{user['timestamp']}/intent",
                          json={"intent": "goodbye", "entities": [entity]}, headers=admin)  # fmt: skip
    assert response.status_code == 200, response.json
    assert response.json["entities"] == [{**entity, "value": FIX}]
    assert _counts(client, admin) == (before[0] - 1, before[1] + 1)
    example = client.get(f"{API}/training_examples?text={user['text']}", headers=admin).json
    assert [(e["intent"], e["entities"]) for e in example] == [("goodbye", [{**entity, "value": FIX}])]
    bad = client.put(f"/api/conversations/{sender}/messages/{user['timestamp']}/intent",
                     json={"intent": "goodbye", "entities": [{"start": 5, "end": 2, "entity": "x"}]}, headers=admin)  # fmt: skip
    assert bad.status_code == 400
    # Undoing the correction puts the message back in the inbox.
    assert client.delete(f"/api/conversations/{sender}/messages/{user['timestamp']}/intent", headers=admin).status_code == 204
    assert _counts(client, admin) == before


def _in_training_data(client, admin, sender: str) -> bool:
    listed = {c["sender_id"]: c for c in client.get("/api/conversations?limit=1000", headers=admin).json}
    trained = client.get("/api/conversations?limit=1000&in_training_data=true", headers=admin)
    untrained = client.get("/api/conversations?limit=1000&in_training_data=false", headers=admin)
    flag = listed[sender]["in_training_data"]
    # The filters agree with the flag, and with each other.
    assert (sender in {c["sender_id"] for c in trained.json}) == flag != (sender in {c["sender_id"] for c in untrained.json})
    return flag


def test_in_training_data_follows_imports_edits_and_deletions(client, admin, published):
    from .training_data_helpers import upload

    assert not _in_training_data(client, admin, KNOWN)
    # Its turns (bob's: greet → utter_greet, then utter_happy) are a story's; its texts are not yet.
    story = {"story": KNOWN, "steps": [{"intent": "greet"}, {"action": "utter_greet"}, {"intent": "greet"}, {"action": "utter_happy"}]}
    assert client.post("/api/stories", json=story, headers=admin).status_code == 201
    assert not _in_training_data(client, admin, KNOWN)
    first = f"- {KNOWN} first\n".encode()
    assert upload(client, admin, {"nlu.yml": b"nlu:\n- intent: greet\n  examples: |\n    " + first}, "merge").status_code == 200
    assert not _in_training_data(client, admin, KNOWN)  # one of its two texts only
    both = b"nlu:\n- intent: greet\n  examples: |\n    " + first + f"    - {KNOWN} second\n".encode()
    assert upload(client, admin, {"nlu.yml": both}, "merge").status_code == 200
    assert _in_training_data(client, admin, KNOWN)
    example = client.get(f"{API}/training_examples?text={KNOWN} second", headers=admin).json[0]
    assert client.put(f"{API}/training_examples/{example['id']}", json={"text": f"{KNOWN} other"}, headers=admin).status_code == 200
    assert not _in_training_data(client, admin, KNOWN)
    assert client.put(f"{API}/training_examples/{example['id']}", json={"text": f"{KNOWN} second"}, headers=admin).status_code == 200
    assert _in_training_data(client, admin, KNOWN)
    assert client.post(f"{API}/training_examples/bulk_delete", json={"ids": [example["id"]]}, headers=admin).status_code == 200
    assert not _in_training_data(client, admin, KNOWN)
    # A replace that carries NLU data drops what it does not hold.
    assert upload(client, admin, {"nlu.yml": both}, "merge").status_code == 200
    assert _in_training_data(client, admin, KNOWN)
    assert upload(client, admin, {"nlu.yml": b"nlu:\n- intent: greet\n  examples: |\n    - hello\n"}, "replace").status_code == 200
    assert not _in_training_data(client, admin, KNOWN)
