"""Keeping in_training_data true to the training data after the backend changes it."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection


def recompute_in_training_data(connection: Connection, hashes: list[str]) -> None:
    """Re-derive the flags of every conversation with a message of one of `hashes`.

    All messages of those conversations are checked against training_example again, not just
    the changed ones, so a flag gone stale by an earlier change is repaired too.
    """
    affected = "SELECT DISTINCT conversation_id FROM message_log WHERE hash = ANY(:h)"
    connection.execute(
        sa.text(
            "UPDATE message_log ml SET in_training_data = EXISTS "
            f"(SELECT 1 FROM training_example t WHERE t.hash = ml.hash) WHERE ml.conversation_id IN ({affected})"
        ),
        {"h": hashes},
    )
    connection.execute(
        sa.text(
            "UPDATE conversation c SET in_training_data = NOT EXISTS "
            "(SELECT 1 FROM message_log ml WHERE ml.conversation_id = c.sender_id AND NOT ml.in_training_data) "
            f"WHERE c.sender_id IN ({affected})"
        ),
        {"h": hashes},
    )
