"""POST /api/conversations/import against the session's backend, whose database already holds
the published events (streamed by the real event service): importing them from a tracker store
stores nothing twice; new events are only counted by a dry run, so other tests' expectations
hold. Access (401/403 for every role but admin) is checked for every documented route by
test_access.py."""

from __future__ import annotations

import sqlalchemy as sa

import pytest

from tests.integration.event_service.harness import replicated_stream
from tests.integration.event_service.tracker_store import postgres_url, tracker_database, tracker_row  # noqa: F401

from .model import published_messages


def event_count(db_engine) -> int:
    with db_engine.connect() as connection:
        return connection.execute(sa.text("SELECT count(*) FROM conversation_event")).scalar_one()


def test_events_streamed_live_are_recognised_and_nothing_is_stored_twice(client, admin, tracker_database, db_engine):
    bodies = [body.encode() for body, _ in published_messages()]
    url = tracker_database([tracker_row(body) for body in bodies])
    before = event_count(db_engine)
    response = client.post("/api/conversations/import", json={"tracker_store": url}, headers=admin)
    assert response.status_code == 200, response.json
    summary = response.json
    assert summary["complete"] and summary["stored"] == 0
    assert summary["skipped_duplicate"] == summary["events_selected"] == len(bodies)
    assert event_count(db_engine) == before
    assert "unused-with-trust-auth" not in response.get_data(as_text=True)


def test_a_dry_run_counts_new_events_and_after_goes_on_from_a_row(client, admin, tracker_database, db_engine):
    bodies = [message.body for message in replicated_stream(1, "route")]
    url = tracker_database([tracker_row(body) for body in bodies])
    before = event_count(db_engine)
    first = client.post("/api/conversations/import", json={"tracker_store": url, "dry_run": True}, headers=admin)
    assert first.status_code == 200, first.json
    assert (first.json["stored"], first.json["skipped_duplicate"]) == (len(bodies), 0)
    senders = sorted({tracker_row(body)["sender_id"] for body in bodies})
    last_of_first = [senders[0], max(i + 1 for i, b in enumerate(bodies) if tracker_row(b)["sender_id"] == senders[0])]
    rest = client.post("/api/conversations/import", json={"tracker_store": url, "dry_run": True,
                                                          "after": last_of_first}, headers=admin)
    assert rest.status_code == 200, rest.json
    first_conversation = sum(tracker_row(b)["sender_id"] == senders[0] for b in bodies)
    assert rest.json["events_selected"] == rest.json["stored"] == len(bodies) - first_conversation
    assert rest.json["last_row"] == first.json["last_row"]
    assert event_count(db_engine) == before


@pytest.mark.parametrize("body, status, reason", [
    ({}, 400, "bad_body"),
    ({"tracker_store": "postgresql://x@h/db", "colour": "red"}, 400, "bad_body"),
    ({"tracker_store": "postgresql://x@h/db", "max_seconds": 0}, 400, "bad_body"),
    ({"tracker_store": "postgresql://x@h/db", "after": ["a"]}, 400, "bad_body"),
    ({"tracker_store": "sqlite:////etc/rasa/rasa.db"}, 400, "bad_tracker_store"),
    ({"tracker_store": "redis://redis:6379"}, 400, "bad_tracker_store"),
    ({"tracker_store": "postgresql://postgres@127.0.0.1:1/tracker"}, 422, "tracker_store_unreadable"),
], ids=["empty", "unknown field", "max_seconds 0", "short after", "sqlite", "redis", "unreachable"])
def test_bad_requests_get_a_clear_4xx(client, admin, body, status, reason):
    response = client.post("/api/conversations/import", json=body, headers=admin)
    assert (response.status_code, response.json["reason"]) == (status, reason), response.json
    assert response.json["message"]


def test_a_database_that_is_not_a_tracker_store_is_a_422_naming_rasas_table(client, admin, backend_database):
    response = client.post("/api/conversations/import", json={"tracker_store": postgres_url(backend_database)},
                           headers=admin)
    assert response.status_code == 422
    assert "has no table 'events': not a Rasa SQL tracker store" in response.json["message"]
