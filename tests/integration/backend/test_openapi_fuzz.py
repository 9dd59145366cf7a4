"""The OpenAPI document is valid OpenAPI 3.0, and what it says of the training data, NLU inbox and
import/export routes holds: schemathesis sends bodies and parameters made from the document (and
ones that break it) to the real app (real PostgreSQL and Redis, a logged-in admin), and no answer
is a 5xx or differs from the documented response schema."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from openapi_spec_validator import validate
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from services.backend.api.openapi import document

from .conftest import bearer
from .training_data_helpers import empty_training_data, import_fixture

# The routes of the training data issue: import/export, NLU data, stories, rules, responses,
# domain, config and the NLU inbox (not models, jobs or evaluations under the same prefix).
FUZZED = (
    r"^/api/(projects/default/(import|export|data_version|warnings|training_examples|intents|entities|synonyms"
    r"|regexes|lookup_tables|config|logs)|stories|rules|responses|domain)\b"
)


def test_the_document_is_valid_openapi(client, admin):
    response = client.get("/api/openapi.json", headers=admin)
    assert response.status_code == 200
    validate(response.json)


@pytest.fixture(scope="module")
def fuzzed_schema(app, db_engine, tokens):
    empty_training_data(db_engine)
    import_fixture(app.test_client(), bearer(tokens["admin"]))
    schema = schemathesis.openapi.from_dict(document())
    schema.app = app
    yield schema
    empty_training_data(db_engine)


schema = schemathesis.pytest.from_fixture("fuzzed_schema").include(path_regex=FUZZED)


@schema.parametrize()
@settings(max_examples=10, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_error_and_responses_as_documented(case, tokens):
    response = case.call(headers=bearer(tokens["admin"]))
    case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])
