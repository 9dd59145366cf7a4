"""Training data in full: NLU features, stories and rules apart, the NLU inbox's annotations.

- nlu_feature: the synonym, regex and lookup blocks of Rasa's NLU data, one row per block with
  its ordered list of examples (JSON), unique by kind and name.
- story: `kind` tells stories from rules; a name is unique per kind (the API addresses them by
  id, the import by name); `story` holds the block as JSON; updated_at for the version shown.
- training_example: the order of the examples is their id; search by text is a trigram-free
  ILIKE over at most tens of thousands of rows, so only the intent index exists (0001).
- message_log: annotated_at/annotator_id, so an annotated message never shows in the inbox
  again, even when its training example is deleted later (RasaHQ/rasa#7043); the partial index
  serves the inbox, which only ever reads rows neither archived nor annotated.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "nlu_feature",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("examples", sa.Text, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("kind", "name", name="uq_nlu_feature_kind_name"),
        sa.CheckConstraint("kind IN ('synonym', 'regex', 'lookup')", name="ck_nlu_feature_kind"),
    )
    op.add_column("story", sa.Column("kind", sa.String(16), nullable=False, server_default="story"))
    op.add_column("story", sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()))
    op.create_check_constraint("ck_story_kind", "story", "kind IN ('story', 'rule')")
    op.create_unique_constraint("uq_story_kind_name", "story", ["kind", "name"])
    op.add_column("message_log", sa.Column("annotated_at", sa.Float, nullable=True))
    op.add_column("message_log", sa.Column("annotator_id", sa.String(255), nullable=True))
    op.create_index(
        "ix_message_log_inbox",
        "message_log",
        ["time"],
        postgresql_where=sa.text("NOT archived AND annotated_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_message_log_inbox", table_name="message_log")
    op.drop_column("message_log", "annotator_id")
    op.drop_column("message_log", "annotated_at")
    op.drop_constraint("uq_story_kind_name", "story", type_="unique")
    op.drop_constraint("ck_story_kind", "story", type_="check")
    op.drop_column("story", "updated_at")
    op.drop_column("story", "kind")
    op.drop_table("nlu_feature")
