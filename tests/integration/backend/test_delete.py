"""Deleting a conversation takes every row derived from it along, foreign key or not, and
leaves other conversations' rows alone."""

from __future__ import annotations


import sqlalchemy as sa

from .model import conversation_as

TABLES = (
    "conversation",
    "conversation_event",
    "message_log",
    "conversation_session",
    "conversation_intent_metadata",
    "conversation_entity_metadata",
    "conversation_action_metadata",
    "conversation_policy_metadata",
    "conversation_slot",
    "conversation_input_channel",
)


def _with_an_entity(event: dict) -> None:
    if event["event"] == "user":
        event["parse_data"]["entities"] = [{"entity": "city", "value": "Berlin", "start": 0, "end": 6}]


def _dave_as(sender: str, shift: float) -> list[tuple[str, str | None]]:
    """dave's events (he has slots) as `sender`, his user messages with an entity each."""
    return conversation_as("dave", sender, shift, _with_an_entity)


def _rows(db_engine, sender: str) -> dict[str, int]:
    with db_engine.connect() as connection:
        return {
            table: connection.execute(
                sa.text(f"SELECT count(*) FROM {table} WHERE {'sender_id' if table == 'conversation' else 'conversation_id'} = :s"),
                {"s": sender},
            ).scalar()
            for table in TABLES
        }


def test_deleting_a_conversation_deletes_its_derived_rows(client, admin, event_service, stored_events, db_engine):
    event_service.publish_and_wait(_dave_as("to-be-deleted", 800_000) + _dave_as("kept-beside", 800_000))
    before = _rows(db_engine, "to-be-deleted")
    # These events fill every one of these tables, so an empty table below means deleted.
    assert all(before.values()), before
    kept = _rows(db_engine, "kept-beside")
    assert kept == before

    assert client.delete("/api/conversations/to-be-deleted", headers=admin).status_code == 204
    assert _rows(db_engine, "to-be-deleted") == dict.fromkeys(TABLES, 0)
    assert _rows(db_engine, "kept-beside") == kept
