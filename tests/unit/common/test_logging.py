import json
import logging

import pytest

from services.common.logging import JsonFormatter, redact


def _format(message, *args, secrets=(), exc=None):
    record = logging.LogRecord("t", logging.ERROR, __file__, 1, message, args, exc)
    return JsonFormatter("svc", secrets).format(record)


def test_lines_are_json_with_service_and_level():
    entry = json.loads(_format("stored %d events", 12))
    assert entry["message"] == "stored 12 events"
    assert entry["service"] == "svc" and entry["level"] == "error"
    assert entry["time"].endswith("Z")


def test_fixed_fields_are_on_every_line_and_redacted_too():
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "consuming", (), None)
    entry = json.loads(JsonFormatter("svc", ["hunter22"], {"worker": 1, "note": "pw hunter22"}).format(record))
    assert entry["worker"] == 1 and entry["message"] == "consuming"
    assert "hunter22" not in json.dumps(entry)


def test_known_secret_values_never_reach_the_line():
    line = _format("connecting with %s", "s3cr3t-value", secrets=["s3cr3t-value"])
    assert "s3cr3t-value" not in line and "***" in line


@pytest.mark.parametrize(
    "text, leaked",
    [
        ("postgresql+psycopg2://admin:hunter2pass@db:5432/rasa", "hunter2pass"),
        ("amqp://user:mqpass99@rabbit:5672/%2F", "mqpass99"),
        ("GET /api/models/tags/production?token=abcdef123456", "abcdef123456"),
        ('{"password": "pa55word!"}', "pa55word!"),
        ("Authorization: Bearer eyJhbGciOiJSUzI1NiJ9.e30.sig", "eyJhbGciOiJSUzI1NiJ9"),
        ("api_token=tok_987654321&x=1", "tok_987654321"),
    ],
)
def test_credential_shapes_are_redacted_even_when_unknown(text, leaked):
    assert leaked not in redact(text)


def test_tracebacks_are_redacted_too():
    try:
        raise RuntimeError("login failed for password=topsecret1")
    except RuntimeError:
        import sys

        line = _format("boom", exc=sys.exc_info())
    assert "topsecret1" not in line
    assert "RuntimeError" in json.loads(line)["error"]


def test_ordinary_text_is_left_alone():
    text = "stored 1000 events for sender alice in 12 ms"
    assert redact(text, ["zzzz"]) == text
