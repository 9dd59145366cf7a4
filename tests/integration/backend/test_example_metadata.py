"""NLU examples with Rasa's metadata through the API: stored, shown, exported in Rasa's list form,
changed and cleared; the import and export of the fixture project (with metadata of an intent
and of examples) is in test_training_data.py."""

from __future__ import annotations

import pytest

from .training_data_helpers import API, check_schema, empty_training_data, exported


@pytest.fixture(autouse=True)
def clean(db_engine, app):
    empty_training_data(db_engine)
    yield
    empty_training_data(db_engine)


def test_metadata_is_stored_exported_and_changed(client, admin):
    metadata = {"intent": {"sentiment": "neutral"}, "example": {"source": ["chat"], "weight": 2}}
    created = client.post(f"{API}/training_examples", json=[
        {"text": "hello there", "intent": "greet", "metadata": metadata},
        {"text": "hi", "intent": "greet", "metadata": {"intent": {"sentiment": "neutral"}}},
        {"text": "bye", "intent": "goodbye"},
    ], headers=admin)  # fmt: skip
    assert created.status_code == 201, created.json
    check_schema("POST", f"{API}/training_examples", created)
    assert [e["metadata"] for e in created.json] == [metadata, {"intent": {"sentiment": "neutral"}}, None]
    assert exported(client, admin)["data/nlu.yml"]["nlu"] == [
        {"intent": "greet", "metadata": {"sentiment": "neutral"},
         "examples": [{"text": "hello there", "metadata": {"source": ["chat"], "weight": 2}}, {"text": "hi"}]},
        {"intent": "goodbye", "examples": "- bye\n"},
    ]  # fmt: skip
    first = created.json[0]["id"]
    # A change that does not name metadata keeps it; null clears it.
    kept = client.put(f"{API}/training_examples/{first}", json={"intent": "greet"}, headers=admin)
    assert kept.status_code == 200 and kept.json["metadata"] == metadata
    cleared = client.put(f"{API}/training_examples/{first}", json={"metadata": None}, headers=admin)
    assert cleared.status_code == 200 and cleared.json["metadata"] is None
    check_schema("PUT", f"{API}/training_examples/1", cleared)
    # JSON's 1.0 is an integer to the schema, and an offset like 1.
    whole = client.post(f"{API}/training_examples", json={"text": "hey", "intent": "greet", "entities": [{"start": 0.0, "end": 3.0, "entity": "e"}]},
                        headers=admin)  # fmt: skip
    assert whole.status_code == 201 and whole.json["entities"] == [{"start": 0, "end": 3, "entity": "e", "value": "hey"}]
    assert client.post(f"{API}/training_examples", json={"text": "x", "intent": "greet", "metadata": {"other": 1}},
                       headers=admin).status_code == 400  # fmt: skip
