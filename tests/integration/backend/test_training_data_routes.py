"""The training data routes one by one: NLU examples (search, pages, 409, bulk), intents,
entities, synonyms, regexes, lookup tables, stories, rules, responses, domain, config, warnings;
each answer checked against the response schema the OpenAPI document publishes."""

from __future__ import annotations

import pytest

from .conftest import bearer
from .training_data_helpers import API, check_schema, empty_training_data, exported, import_fixture


@pytest.fixture(autouse=True)
def clean(db_engine, app):
    empty_training_data(db_engine)
    yield
    empty_training_data(db_engine)


def _get(client, headers, url):
    response = client.get(url, headers=headers)
    assert response.status_code == 200, response.json
    check_schema("GET", url, response)
    return response


def test_examples_search_and_pages(client, admin):
    import_fixture(client, admin)
    everything = _get(client, admin, f"{API}/training_examples?limit=1000")
    assert everything.headers["X-Total-Count"] == str(len(everything.json)) == "33"
    page = _get(client, admin, f"{API}/training_examples?limit=5&offset=10")
    assert page.headers["X-Total-Count"] == "33" and page.json == everything.json[10:15]
    by_text = _get(client, admin, f"{API}/training_examples?text=FLIGHT")
    assert {e["text"] for e in by_text.json} == {"I want to book a flight", "book me a flight from Berlin to Paris", "a flight out of Madrid please"}
    by_intent = _get(client, admin, f"{API}/training_examples?intent=order_pizza&limit=2")
    assert by_intent.headers["X-Total-Count"] == "4" and len(by_intent.json) == 2
    by_entity = _get(client, admin, f"{API}/training_examples?entity=topping&intent=order_pizza")
    assert by_entity.headers["X-Total-Count"] == "3"
    # LIKE's wildcards are plain characters in a search.
    assert _get(client, admin, f"{API}/training_examples?text=%25").headers["X-Total-Count"] == "0"
    assert client.get(f"{API}/training_examples?limit=0", headers=admin).status_code == 400

    intents = _get(client, admin, f"{API}/intents").json
    assert intents[:2] == [{"intent": "greet", "example_count": 4}, {"intent": "goodbye", "example_count": 3}]
    entities = {e["entity"]: e for e in _get(client, admin, f"{API}/entities").json}
    assert entities["city"] == {"entity": "city", "example_count": 10, "roles": ["departure", "destination"], "groups": []}
    assert entities["size"]["groups"] == ["1", "2"]


def test_create_update_delete_examples(client, admin, tokens):
    created = client.post(f"{API}/training_examples", json={"text": "fly me to Oslo", "intent": "book_flight",
                          "entities": [{"start": 10, "end": 14, "entity": "city", "role": "destination"}]}, headers=admin)  # fmt: skip
    assert created.status_code == 201, created.json
    check_schema("POST", f"{API}/training_examples", created)
    example = created.json
    assert example["entities"] == [{"start": 10, "end": 14, "entity": "city", "role": "destination", "value": "Oslo"}]
    assert example["annotator_id"] == "admin"

    duplicate = client.post(f"{API}/training_examples", json={"text": "fly me to Oslo", "intent": "greet"}, headers=admin)
    assert duplicate.status_code == 409
    assert duplicate.json == {"message": f"the text 'fly me to Oslo' is already training example {example['id']} (intent 'book_flight')",
                              "reason": "duplicate"}  # fmt: skip

    bulk = client.post(f"{API}/training_examples", json=[{"text": "one", "intent": "a"}, {"text": "two", "intent": "b"}], headers=admin)
    assert bulk.status_code == 201 and [e["text"] for e in bulk.json] == ["one", "two"]
    # A bulk create with one duplicate stores none of it.
    refused = client.post(f"{API}/training_examples", json=[{"text": "three", "intent": "a"}, {"text": "one", "intent": "a"}], headers=admin)
    assert refused.status_code == 409 and "'one'" in refused.json["message"]
    assert _get(client, admin, f"{API}/training_examples?text=three").json == []

    url = f"{API}/training_examples/{example['id']}"
    changed = client.put(url, json={"intent": "inform"}, headers=admin)
    assert changed.status_code == 200 and changed.json["intent"] == "inform" and changed.json["entities"] == example["entities"]
    retexted = client.put(url, json={"text": "fly me to Bergen"}, headers=admin)
    assert retexted.json["text"] == "fly me to Bergen" and retexted.json["entities"] == []  # the spans belonged to the old text
    assert client.put(url, json={"text": "one"}, headers=admin).status_code == 409
    assert client.put(url, json={"entities": [{"start": 3, "end": 99, "entity": "x"}]}, headers=admin).status_code == 400
    assert _get(client, admin, url).json["text"] == "fly me to Bergen"

    ids = [e["id"] for e in bulk.json]
    assert client.post(f"{API}/training_examples/bulk_delete", json={"ids": [*ids, 999_999]}, headers=admin).status_code == 404
    assert _get(client, admin, f"{API}/training_examples").headers["X-Total-Count"] == "3"
    deleted = client.post(f"{API}/training_examples/bulk_delete", json={"ids": ids}, headers=admin)
    assert deleted.json == {"deleted": 2}
    assert client.delete(url, headers=admin).status_code == 204
    assert client.get(url, headers=admin).status_code == 404
    assert _get(client, admin, f"{API}/training_examples").json == []

    # Bodies that do not fit the schema are 400 with where and what.
    for body, message in (
        ({"text": "x"}, "the body: 'intent' is a required property"),
        ({"text": " ", "intent": "a"}, "the body.text: ' ' does not match"),
        ({"text": "x" * 2001, "intent": "a"}, "the body.text: "),
        ({"text": "x", "intent": "a", "colour": 1}, "the body: Additional properties are not allowed"),
        ({"text": "abc", "intent": "a", "entities": [{"start": 2, "end": 1, "entity": "e"}]}, "the entity 'e' spans 2..1"),
    ):
        response = client.post(f"{API}/training_examples", json=body, headers=admin)
        assert response.status_code == 400 and response.json["message"].startswith(message), response.json
    # Testers look but do not touch.
    tester = bearer(tokens["tester"])
    assert client.get(f"{API}/training_examples", headers=tester).status_code == 200
    assert client.post(f"{API}/training_examples", json={"text": "t", "intent": "a"}, headers=tester).status_code == 403
    annotator = bearer(tokens["annotator"])
    assert client.post(f"{API}/training_examples", json={"text": "t", "intent": "a"}, headers=annotator).status_code == 201


@pytest.mark.parametrize("segment, kind", [("synonyms", "synonym"), ("regexes", "regex"), ("lookup_tables", "lookup")])
def test_synonyms_regexes_lookup_tables(client, admin, segment, kind):
    url = f"{API}/{segment}"
    put = client.put(f"{url}/things", json={"examples": ["a", "b+"]}, headers=admin)
    assert put.status_code == 200, put.json
    check_schema("PUT", f"{url}/things", put)
    assert _get(client, admin, url).json == [{"name": "things", "examples": ["a", "b+"]}]
    assert client.put(f"{url}/things", json={"examples": ["c"]}, headers=admin).json == {"name": "things", "examples": ["c"]}
    nlu = exported(client, admin)["data/nlu.yml"]["nlu"]
    assert nlu == [{kind: "things", "examples": "- c\n"}]
    assert client.put(f"{url}/things", json={"examples": []}, headers=admin).status_code == 400
    assert client.delete(f"{url}/things", headers=admin).status_code == 204
    assert client.delete(f"{url}/things", headers=admin).status_code == 404
    if kind == "regex":
        bad = client.put(f"{url}/broken", json={"examples": ["(unclosed"]}, headers=admin)
        assert bad.status_code == 400 and "does not compile" in bad.json["message"]


@pytest.mark.parametrize("part, key", [("stories", "story"), ("rules", "rule")])
def test_stories_and_rules(client, admin, part, key):
    block = {key: "greeting", "steps": [{"intent": "greet"}, {"action": "utter_greet"}]}
    created = client.post(f"/api/{part}", json=block, headers=admin)
    assert created.status_code == 201, created.json
    check_schema("POST", f"/api/{part}", created)
    url = f"/api/{part}/{created.json['id']}"
    assert _get(client, admin, url).json == {"id": created.json["id"], **block}
    assert client.post(f"/api/{part}", json=block, headers=admin).status_code == 409
    changed = {**block, "steps": [*block["steps"], {"or": [{"intent": "affirm"}, {"intent": "thankyou"}]}, {"action": "utter_glad"}]}
    assert client.put(url, json=changed, headers=admin).json == {"id": created.json["id"], **changed}
    assert exported(client, admin)[f"data/{part}.yml"][part] == [changed]
    bad = client.put(url, json={key: "greeting", "steps": [{"intent": "greet"}, {"acton": "x"}]}, headers=admin)
    assert bad.status_code == 400 and "unknown step keys ['acton']" in bad.json["message"]
    broken = client.post(f"/api/{part}", json={key: "x", "steps": [{"user": "fly to [Paris](city"}]}, headers=admin)
    assert broken.status_code == 400 and "does not parse" in broken.json["message"]
    assert len(_get(client, admin, f"/api/{part}").json) == 1
    assert client.delete(url, headers=admin).status_code == 204
    assert client.get(url, headers=admin).status_code == 404


def test_responses_domain_config_and_warnings(client, admin):
    import_fixture(client, admin)
    responses = _get(client, admin, "/api/responses").json
    assert [r["name"] for r in responses][:2] == ["utter_greet", "utter_goodbye"]
    variations = [{"text": "Hello {name}!", "buttons": [{"title": "go", "payload": "/go"}]},
                  {"text": "Hi on Slack", "channel": "slack"}]  # fmt: skip
    put = client.put("/api/responses/utter_hello", json=variations, headers=admin)
    assert put.status_code == 200, put.json
    check_schema("PUT", "/api/responses/utter_hello", put)
    assert client.put("/api/responses/utter_hello", json=[{"txt": "x"}], headers=admin).status_code == 400
    assert client.put("/api/responses/utter_hello", json=[{"channel": "slack"}], headers=admin).status_code == 400
    assert exported(client, admin)["domain.yml"]["responses"]["utter_hello"] == variations

    warnings = _get(client, admin, f"{API}/warnings").json
    assert warnings == [{"type": "response_not_used", "name": "utter_hello", "message": "the response 'utter_hello' is used by no story or rule"}]
    story = {"story": "odd", "steps": [{"intent": "sing"}, {"action": "action_sing"}, {"action": "utter_hello"}]}
    assert client.post("/api/stories", json=story, headers=admin).status_code == 201
    kinds = {(w["type"], w["name"]) for w in _get(client, admin, f"{API}/warnings").json}
    assert kinds == {("intent_without_examples", "sing"), ("intent_not_in_domain", "sing"), ("action_not_in_domain", "action_sing")}
    assert client.delete("/api/responses/utter_hello", headers=admin).status_code == 204
    assert client.delete("/api/responses/utter_hello", headers=admin).status_code == 404

    domain = _get(client, admin, "/api/domain").json
    domain["intents"].append("sing")
    domain["actions"].append("action_sing")
    assert client.put("/api/domain", json=domain, headers=admin).status_code == 200
    assert {w["type"] for w in _get(client, admin, f"{API}/warnings").json} == {"intent_without_examples", "action_not_in_domain"}
    bad = client.put("/api/domain", json={"slots": {"city": {"mappings": []}}}, headers=admin)
    assert bad.status_code == 400 and "slot 'city' needs a 'type'" in bad.json["message"]
    assert client.put("/api/domain", json={"intent": ["x"]}, headers=admin).status_code == 400

    config = _get(client, admin, f"{API}/config").json
    assert config["pipeline"][0] == {"name": "WhitespaceTokenizer"}
    config["policies"] = [{"name": "RulePolicy"}]
    assert client.put(f"{API}/config", json=config, headers=admin).json == config
    assert exported(client, admin)["config.yml"] == config
    assert client.put(f"{API}/config", json={"pipeline": "fast"}, headers=admin).status_code == 400


def test_an_empty_project_exports_what_rasa_reads(client, admin):
    files = exported(client, admin)
    assert files["data/nlu.yml"] == {"version": "3.1", "nlu": []}
    assert files["domain.yml"] == {"version": "3.1"}
    # No config: Rasa's defaults (a null pipeline and policies are filled in by `rasa train`).
    assert files["config.yml"] == {"recipe": "default.v1", "language": "en", "pipeline": None, "policies": None}
    assert _get(client, admin, f"{API}/config").json == files["config.yml"]
