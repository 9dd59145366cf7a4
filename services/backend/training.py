"""Keeping in_training_data true to the training data after the backend changes it."""

from __future__ import annotations

import hashlib

import sqlalchemy as sa
from sqlalchemy.engine import Connection


def text_hash(text: str) -> str:
    # The same key the event service writes into message_log.hash.
    return hashlib.sha256(text.encode()).hexdigest()


def recompute_in_training_data(connection: Connection, hashes: list[str]) -> None:
    """Re-derive the flags of every message with one of `hashes` and of their conversations."""
    connection.execute(
        sa.text(
            "UPDATE message_log ml SET in_training_data = EXISTS "
            "(SELECT 1 FROM training_example t WHERE t.hash = ml.hash) WHERE ml.hash = ANY(:h)"
        ),
        {"h": hashes},
    )
    connection.execute(
        sa.text(
            "UPDATE conversation c SET in_training_data = NOT EXISTS "
            "(SELECT 1 FROM message_log ml WHERE ml.conversation_id = c.sender_id AND NOT ml.in_training_data) "
            "WHERE c.sender_id IN (SELECT conversation_id FROM message_log WHERE hash = ANY(:h))"
        ),
        {"h": hashes},
    )
