"""Less work per stored event: no foreign-key checks on rows the event service derives, no
index that no query uses.

The event service writes facet, session and inbox rows in the same transaction as the
conversation row and the event they come from, so the foreign keys below never caught
anything, but each checked every inserted row (and again every session row it updated). The
backend's conversation deletion now deletes these rows itself, in its own transaction.
ix_conversation_event_type_name served no query: every query on type_name also names the
conversation, which ix_conversation_event_conversation_time finds.

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# (table, referencing column, referenced table, referenced column)
FOREIGN_KEYS = (
    ("conversation_intent_metadata", "conversation_id", "conversation", "sender_id"),
    ("conversation_action_metadata", "conversation_id", "conversation", "sender_id"),
    ("conversation_entity_metadata", "conversation_id", "conversation", "sender_id"),
    ("conversation_policy_metadata", "conversation_id", "conversation", "sender_id"),
    ("conversation_slot", "conversation_id", "conversation", "sender_id"),
    ("conversation_input_channel", "conversation_id", "conversation", "sender_id"),
    ("conversation_session", "conversation_id", "conversation", "sender_id"),
    ("message_log", "event_id", "conversation_event", "id"),
)


def _name(table: str, column: str) -> str:
    # PostgreSQL's own name for them: 0001 created them unnamed.
    return f"{table}_{column}_fkey"


def upgrade() -> None:
    for table, column, _, _ in FOREIGN_KEYS:
        op.drop_constraint(_name(table, column), table, type_="foreignkey")
    op.drop_index("ix_conversation_event_type_name", table_name="conversation_event")


def downgrade() -> None:
    op.create_index("ix_conversation_event_type_name", "conversation_event", ["type_name"])
    for table, column, referenced, referenced_column in FOREIGN_KEYS:
        op.create_foreign_key(_name(table, column), table, referenced, [column], [referenced_column], ondelete="CASCADE")
