"""Import and export of a complete Rasa 3.x project: round trip, one transaction, bad files named
by file and line, merge and replace, the data version."""

from __future__ import annotations

import io
import tarfile
import zipfile

import pytest
import yaml

from .conftest import bearer
from .training_data_helpers import (
    API, PROJECT_FILES, check_schema, empty_training_data, exported, import_fixture, project_file, upload,
)  # fmt: skip


@pytest.fixture(autouse=True)
def clean(db_engine, app):
    empty_training_data(db_engine)
    yield
    empty_training_data(db_engine)


def _version(client, admin) -> str:
    response = client.get(f"{API}/data_version", headers=admin)
    assert response.status_code == 200
    check_schema("GET", f"{API}/data_version", response)
    return response.json["version"]


def test_import_then_export_gives_back_the_same_yaml(client, admin):
    result = import_fixture(client, admin)
    assert result["parts"] == ["config", "domain", "nlu", "rules", "stories"]
    assert (result["examples"], result["features"], result["stories"], result["rules"]) == (33, 3, 5, 5)
    assert result["warnings"] == []
    files = exported(client, admin)
    assert set(files) == set(PROJECT_FILES)
    for path in PROJECT_FILES:
        assert files[path] == yaml.safe_load(project_file(path)), path
    # The export's version header is the version the API shows, and importing the export again
    # changes nothing.
    response = client.get(f"{API}/export", headers=admin)
    assert response.headers["X-Data-Version"] == _version(client, admin) == result["version"]
    again = client.post(f"{API}/import?mode=replace", data={"files": [(io.BytesIO(response.data), "export.tar.gz")]},
                        headers=admin, content_type="multipart/form-data")  # fmt: skip
    assert again.status_code == 200, again.json
    assert again.json["version"] == result["version"]


def _tar(files: dict[str, bytes], prefix: str = "") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, content in files.items():
            info = tarfile.TarInfo(prefix + name)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def _zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def test_a_project_archive_imports_like_its_files(client, admin):
    files = {path: project_file(path) for path in PROJECT_FILES}
    expected = import_fixture(client, admin)["version"]
    # A project folder as people pack it: a top folder, tests and endpoints that are not training data.
    extra = {"tests/test_stories.yml": b"stories:\n- story: t\n  steps:\n  - user: hi\n    intent: greet\n",
             "endpoints.yml": b"action_endpoint:\n  url: http://app:5055/webhook\n", "actions/actions.py": b"# code\n"}  # fmt: skip
    for name, archive in (("project.tar.gz", _tar({**files, **extra}, "mybot/")), ("project.zip", _zip({**files, **extra}))):
        empty = client.post(f"{API}/import?mode=replace", data={"files": [(io.BytesIO(b"version: '3.1'\nnlu: []\nstories: []\nrules: []\n"), "empty.yml")]},
                            headers=admin, content_type="multipart/form-data")  # fmt: skip
        assert empty.status_code == 200 and empty.json["version"] != expected
        response = upload(client, admin, {name: archive})
        assert response.status_code == 200, response.json
        assert response.json["version"] == expected, name


@pytest.mark.parametrize(
    "name, content, expected",
    [
        ("data/nlu.yml", b"version: '3.1'\nnlu:\n- intent: greet\n  examples: |\n    - hi\n    - [Berlin]{\"role\": \"x\"}\n",
         'data/nlu.yml, line 6: the entity \'{"role": "x"}\' needs "entity": "<name>"'),
        ("data/nlu.yml", b"version: '3.1'\nnlu:\n- intent: greet\n  examples: |\n    - hi\n    - fly to [Paris](city\n",
         "data/nlu.yml, line 6: '[Paris](' starts an entity annotation that does not parse"),
        ("data/nlu.yml", b"nlu:\n- intent: greet\n  examples: |\n    - hi\n    bad line\n", "data/nlu.yml, line 5: expected '- example'"),
        ("data/stories.yml", b"stories:\n- story: s\n  steps:\n  - intent: greet\n  - acton: utter_greet\n",
         "data/stories.yml, line 5: unknown step keys ['acton']"),
        ("data/stories.yml", b"stories:\n- story: s\n  steps: [\n", "data/stories.yml, line 4: not valid YAML"),
        ("domain.yml", b"intents:\n- greet\nresponses:\n  utter_greet:\n  - txt: hi\n",
         "domain.yml, line 5: response 'utter_greet' has unknown keys ['txt']"),
        ("domain.yml", b"slots:\n  city:\n    mappings: []\n", "domain.yml, line 3: slot 'city' needs a 'type'"),
        ("notes.yml", b"shopping:\n- milk\n", "notes.yml, line 1: top-level keys ['shopping'] are not Rasa's"),
        ("data/nlu.yml", b"nlu:\n- regex: account\n  examples: |\n    - (\\d+\n", "data/nlu.yml, line 4: the regex"),
        ("data/nlu.yml", b"nlu:\n- intent: greet\n  examples:\n  - text: hi\n  - metadata: {a: 1}\n",
         "data/nlu.yml, line 5: each item of 'examples' must be a mapping with 'text'"),
        ("data/nlu.yml", b"nlu:\n- intent: greet\n  examples:\n  - text: hi\n    meta: 1\n",
         "data/nlu.yml, line 4: unexpected keys ['meta'] in an example"),
        ("data/nlu.yml", b"nlu:\n- synonym: NYC\n  metadata: {a: 1}\n  examples: |\n    - New York\n",
         "data/nlu.yml, line 2: unexpected keys ['metadata'] in the synonym block"),
        ("data/nlu.yml", b"nlu:\n- intent: greet\n  examples: |\n    - " + b"x" * 2001 + b"\n",
         "data/nlu.yml, line 4: an example is longer than 2000 characters"),
        ("data/nlu.yml", b'nlu:\n- intent: greet\n  examples:\n  - text: "a\\0b"\n', "data/nlu.yml, line 4: an example may not contain NUL"),
        ("notes.txt", b"hello", "notes.txt: expected a .yml/.yaml file"),
        ("project.tar.gz", b"not a tar", "project.tar.gz: not a readable .tar.gz"),
    ],
)  # fmt: skip
def test_a_bad_file_is_refused_naming_file_and_line_and_nothing_is_stored(client, admin, name, content, expected):
    import_fixture(client, admin)
    before = _version(client, admin)
    # The good files go first in the same upload: they must not be stored either.
    response = upload(client, admin, {"good.yml": b"nlu:\n- intent: brand_new\n  examples: |\n    - something new\n", name: content})
    assert response.status_code == 400, response.json
    assert response.json["message"].startswith(expected), response.json
    assert _version(client, admin) == before
    assert client.get(f"{API}/training_examples?intent=brand_new", headers=admin).headers["X-Total-Count"] == "0"


def test_a_duplicate_example_in_an_import_names_both_lines(client, admin):
    response = upload(client, admin, {"a.yml": b"nlu:\n- intent: greet\n  examples: |\n    - hi\n",
                                      "b.yml": b"nlu:\n- intent: goodbye\n  examples: |\n    - bye\n    - hi\n"})  # fmt: skip
    assert response.status_code == 400
    assert response.json["message"] == (
        "b.yml, line 5: the example 'hi' (goodbye) is already at a.yml, line 4 (greet); each text may be one example only"
    )


def test_merge_adds_and_updates_replace_replaces_only_the_parts_uploaded(client, admin):
    import_fixture(client, admin)
    nlu = b"nlu:\n- intent: greet\n  examples: |\n    - hi\n    - howdy\n- synonym: NYC\n  examples: |\n    - the city\n"
    merged = upload(client, admin, {"more.yml": nlu}, mode="merge")
    assert merged.status_code == 200, merged.json
    examples = client.get(f"{API}/training_examples?limit=1000", headers=admin)
    assert examples.headers["X-Total-Count"] == "34"
    assert {"hi", "howdy", "I want to book a flight"} <= {e["text"] for e in examples.json}
    synonyms = client.get(f"{API}/synonyms", headers=admin).json
    assert [s["name"] for s in synonyms] == ["New York City", "NYC"]

    replaced = upload(client, admin, {"more.yml": nlu}, mode="replace")
    assert replaced.json["parts"] == ["nlu"]
    assert [e["text"] for e in client.get(f"{API}/training_examples", headers=admin).json] == ["hi", "howdy"]
    assert client.get(f"{API}/synonyms", headers=admin).json == [{"name": "NYC", "examples": ["the city"]}]
    # Stories, rules, domain and config were not in the upload: they stay.
    files = exported(client, admin)
    assert files["data/stories.yml"] == yaml.safe_load(project_file("data/stories.yml"))
    assert files["domain.yml"] == yaml.safe_load(project_file("domain.yml"))
    warnings = client.get(f"{API}/warnings", headers=admin)
    check_schema("GET", f"{API}/warnings", warnings)
    assert {"type": "intent_without_examples", "name": "book_flight",
            "message": "the intent 'book_flight' of rule 'activate the booking form' has no NLU examples"} in warnings.json  # fmt: skip


def test_import_mode_and_upload_are_checked(client, admin, tokens):
    assert client.post(f"{API}/import?mode=overwrite", headers=admin).json["message"].startswith("'mode' must be one of")
    assert client.post(f"{API}/import", json={"nlu": []}, headers=admin).status_code == 400
    assert upload(client, admin, {}).json["reason"] == "bad_body"
    # Annotators edit training data but only an admin replaces it wholesale.
    response = upload(client, bearer(tokens["annotator"]), {"a.yml": b"nlu: []\n"})
    assert response.status_code == 403


def test_the_version_follows_the_content(client, admin):
    import_fixture(client, admin)
    first = _version(client, admin)
    created = client.post(f"{API}/training_examples", json={"text": "a new one", "intent": "greet"}, headers=admin)
    assert created.status_code == 201
    second = _version(client, admin)
    assert second != first
    assert client.delete(f"{API}/training_examples/{created.json['id']}", headers=admin).status_code == 204
    assert _version(client, admin) == first


def test_an_upload_over_the_limit_is_413(client, admin, monkeypatch):
    from services.backend.api import training_data

    monkeypatch.setattr(training_data, "MAX_IMPORT_BYTES", 1000)
    response = upload(client, admin, {"nlu.yml": b"nlu: []\n" + b"#" * 2000})
    assert response.status_code == 413 and response.json["reason"] == "body_too_large"
