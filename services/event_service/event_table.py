"""The columns of conversation_event that the event service writes, in ONE order, and an
event's COPY line in that order: the staging table, both COPYs and the INSERT from the staging
table are all written from EVENT_COLUMNS, so a column cannot go missing or shift in one of them.
"""

from __future__ import annotations

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

# How each staging type is written in COPY's text format. A timestamp is a finite float
# (parsing checks it), which repr writes exactly.
_ENCODERS = {"text": "copy_text", "float8": "repr", "bytea": "copy_bytes"}


def _row_builder():
    """copy_row written out for EVENT_COLUMNS as one f-string, the way dataclasses write their
    methods: a loop over the columns cost ~1-2 µs more per event on the store's hottest path."""
    fields = "\\t".join(f"{{{_ENCODERS[type_]}(e.{attribute})}}" for _, type_, attribute in EVENT_COLUMNS)
    namespace = {"copy_text": copy_text, "copy_bytes": copy_bytes}
    exec(f'def copy_row(e):\n    return f"{fields}"\n', namespace)  # noqa: S102 - our own constant text
    return namespace["copy_row"]


copy_row = _row_builder()
copy_row.__doc__ = "The COPY text of the event's COLUMNS (no line end)."
