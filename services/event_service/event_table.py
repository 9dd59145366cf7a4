"""The columns of conversation_event that the event service writes, in ONE order, and an
event's COPY line in that order: the staging table, both COPYs and the INSERT from the staging
table are all written from EVENT_COLUMNS, so a column cannot go missing or shift in one of them.
"""

from __future__ import annotations

import operator

from .parsing import Event
from .pg_text import copy_bytes, copy_text

# (column, its type in the staging table, the Event attribute it holds)
EVENT_COLUMNS = (
    ("conversation_id", "text", "sender_id"),
    ("type_name", "text", "type_name"),
    ("timestamp", "float8", "timestamp"),
    ("intent_name", "text", "intent_name"),
    ("action_name", "text", "action_name"),
    ("slot_name", "text", "slot_name"),
    ("slot_value", "text", "slot_value"),
    ("policy", "text", "policy"),
    ("data", "text", "data"),
    ("rasa_environment", "text", "environment"),
    ("dedupe_key", "bytea", "dedupe_key"),
)
COLUMNS = ", ".join(column for column, _, _ in EVENT_COLUMNS)
# The column definitions of a table that stages events before they are inserted.
COLUMN_TYPES = ", ".join(f"{column} {type_}" for column, type_, _ in EVENT_COLUMNS)

# A timestamp is a finite float (parsing checks it): repr reads back exactly.
_ENCODERS = {"text": copy_text, "float8": repr, "bytea": copy_bytes}
_encoders = tuple(_ENCODERS[type_] for _, type_, _ in EVENT_COLUMNS)
_values = operator.attrgetter(*(attribute for _, _, attribute in EVENT_COLUMNS))


def copy_row(e: Event) -> str:
    """The COPY text of the event's COLUMNS (no line end)."""
    return "\t".join([encode(value) for encode, value in zip(_encoders, _values(e))])
