"""What the training data tests share: the fixture project, uploads, an empty store."""

from __future__ import annotations

import io
import os
import re
import tarfile

import jsonschema
import sqlalchemy as sa
import yaml

from services.backend.api.openapi import ROUTES
from services.backend.training_data.schemas import as_json_schema
from tests.conftest import FIXTURES_DIR

PROJECT_DIR = os.path.join(FIXTURES_DIR, "training_project")
PROJECT_FILES = ("data/nlu.yml", "data/stories.yml", "data/rules.yml", "domain.yml", "config.yml")
API = "/api/projects/default"


def project_file(path: str) -> bytes:
    with open(os.path.join(PROJECT_DIR, path), "rb") as handle:
        return handle.read()


def upload(client, headers, files: dict[str, bytes], mode: str = "replace"):
    data = {"files": [(io.BytesIO(content), name) for name, content in files.items()]}
    return client.post(f"{API}/import?mode={mode}", data=data, headers=headers, content_type="multipart/form-data")


def import_fixture(client, headers, mode: str = "replace"):
    response = upload(client, headers, {path: project_file(path) for path in PROJECT_FILES}, mode)
    assert response.status_code == 200, response.json
    return response.json


def exported(client, headers) -> dict[str, dict]:
    """The parsed YAML of each file of GET /export, by path."""
    response = client.get(f"{API}/export", headers=headers)
    assert response.status_code == 200 and response.mimetype == "application/gzip", response.data[:300]
    with tarfile.open(fileobj=io.BytesIO(response.data), mode="r:gz") as archive:
        return {m.name: yaml.safe_load(archive.extractfile(m).read()) for m in archive.getmembers() if m.isfile()}


def empty_training_data(engine) -> None:
    """No training data and a fresh inbox, so each module starts (and leaves) from nothing."""
    from services.backend.training import recompute_in_training_data, sync_story_turns

    with engine.begin() as connection:
        hashes = list(connection.execute(sa.text("DELETE FROM training_example RETURNING hash")).scalars())
        for table in ("nlu_feature", "story", "domain", "nlu_config"):
            connection.execute(sa.text(f"DELETE FROM {table}"))
        connection.execute(sa.text("UPDATE message_log SET archived = false, annotated_at = NULL, annotator_id = NULL"))
        if hashes:
            recompute_in_training_data(connection, hashes)
        sync_story_turns(connection)


def check_schema(method: str, url: str, response) -> None:
    """The response body matches the success schema the OpenAPI document gives for the route."""
    path = url.split("?")[0]
    for doc in ROUTES:
        pattern = "^" + re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(doc.path)) + "$"
        if doc.method == method and re.match(pattern, path) and doc.response is not None:
            jsonschema.validate(response.json, as_json_schema(doc.response))
            return
    raise AssertionError(f"no documented response schema for {method} {path}")
