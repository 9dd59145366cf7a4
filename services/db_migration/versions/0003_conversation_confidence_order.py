"""An index in the order of GET /api/conversations?sort_by_confidence=true.

Without it that page is a top-N sort over every conversation (about 30 ms at 100k); with it the
page query walks the index and stops after `limit` rows, as the default order already does.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_conversation_confidence_order", "conversation", ["minimum_action_confidence", "sender_id"])


def downgrade() -> None:
    op.drop_index("ix_conversation_confidence_order", table_name="conversation")
