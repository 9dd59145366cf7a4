"""Intent corrections of user messages, and indexes the conversation filters need.

A correction (PUT /api/conversations/{id}/messages/{timestamp}/intent) must be undoable and
must not rewrite the event as Rasa sent it, so it lives in its own table, as in Rasa X. The
partial index finds flagged conversations without scanning every event; the message_log index
serves the text filter and the in_training_data recomputation per conversation.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "conversation_message_correction",
        sa.Column("conversation_id", sa.String(255), sa.ForeignKey("conversation.sender_id", ondelete="CASCADE"), primary_key=True),
        sa.Column("message_timestamp", sa.Float, primary_key=True),
        sa.Column("intent", sa.String(255), nullable=False),
        sa.Column("annotator_id", sa.String(255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_index(
        "ix_conversation_event_flagged",
        "conversation_event",
        ["conversation_id"],
        postgresql_where=sa.text("is_flagged"),
    )
    op.create_index("ix_message_log_conversation_id", "message_log", ["conversation_id"])


def downgrade() -> None:
    op.drop_index("ix_message_log_conversation_id", table_name="message_log")
    op.drop_index("ix_conversation_event_flagged", table_name="conversation_event")
    op.drop_table("conversation_message_correction")
