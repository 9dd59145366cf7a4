"""NLU examples keep Rasa's metadata: training_example.metadata is JSON {"intent": ..., "example":
...} with the metadata of the example's intent block and of the example itself, each only when
the YAML gave it (NULL when neither), so an export writes the blocks back as they were read.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("training_example", sa.Column("metadata", sa.Text, nullable=True))


def downgrade() -> None:
    op.drop_column("training_example", "metadata")
