"""Closing the loop with Rasa: training jobs on rasa-worker, NLU evaluations, trained models.

- training_job: one row per training request, with the exact Rasa YAML sent (`payload`) and
  its data version, so a retry trains the same data and the model records what it learnt from.
  `status` is queued → running → finished | failed. A running job carries the rasa-x process
  that runs it (`owner`) and that process's latest `heartbeat_at`: a heartbeat gone stale means
  rasa-x stopped during training, and the job is failed as retryable instead of staying running.
  The partial unique index allows at most one running job per worker, whatever the processes.
- model.data_version: the training data version a model was trained on (NULL for uploads).
- nlu_evaluation: the report of the worker's /model/test/intents for a model, one per model
  (a new evaluation replaces the old).
- interactive_conversation: the conversations a rasa-x user holds with the bot through "Talk to
  your bot", by user. The event service creates a conversation's row when its first event
  arrives, after rasa-x sent the message; a BEFORE INSERT trigger marks such a row `interactive`
  then (rasa-x marks a row that exists already itself), so the mark never races the events.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

JOB_STATUSES = ("queued", "running", "finished", "failed")


def upgrade() -> None:
    op.create_table(
        "training_job",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("status", sa.String(16), nullable=False, server_default="queued"),
        sa.Column("worker", sa.String(255), nullable=False),
        sa.Column("data_version", sa.String(64), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("model_name", sa.String(255), nullable=False),
        sa.Column("tag", sa.String(255), nullable=True),
        sa.Column("requested_by", sa.String(255), nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("owner", sa.String(64), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("retryable", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(f"status IN {JOB_STATUSES}", name="ck_training_job_status"),
    )
    op.create_index("ix_training_job_status", "training_job", ["status", "id"])
    op.create_index("uq_training_job_running_worker", "training_job", ["worker"], unique=True,
                    postgresql_where=sa.text("status = 'running'"))
    op.add_column("model", sa.Column("data_version", sa.String(64), nullable=True))
    op.create_table(
        "nlu_evaluation",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("model_id", sa.Integer, sa.ForeignKey("model.id", ondelete="CASCADE"), nullable=False, unique=True),
        sa.Column("data_version", sa.String(64), nullable=False),
        sa.Column("report", sa.Text, nullable=False),
        sa.Column("requested_by", sa.String(255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_table(
        "interactive_conversation",
        sa.Column("sender_id", sa.String(255), primary_key=True),
        sa.Column("username", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.execute(
        """
        CREATE FUNCTION rasax_mark_interactive() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF EXISTS (SELECT 1 FROM interactive_conversation WHERE sender_id = NEW.sender_id) THEN
                NEW.interactive := true;
            END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER conversation_interactive BEFORE INSERT ON conversation
            FOR EACH ROW EXECUTE FUNCTION rasax_mark_interactive();
        """
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER conversation_interactive ON conversation; DROP FUNCTION rasax_mark_interactive()")
    op.drop_table("interactive_conversation")
    op.drop_table("nlu_evaluation")
    op.drop_column("model", "data_version")
    op.drop_index("uq_training_job_running_worker", table_name="training_job")
    op.drop_index("ix_training_job_status", table_name="training_job")
    op.drop_table("training_job")
