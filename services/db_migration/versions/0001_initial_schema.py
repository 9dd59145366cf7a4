"""Initial schema: everything the backend and the event service need.

Table and column names follow the original Rasa X where an operator's SQL or a Rasa X export
depends on them. Times of Rasa events are Unix seconds as DOUBLE PRECISION, exactly as Rasa
sends them, so that ordering and equality never suffer a conversion.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _created_at():
    return sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now())


def upgrade() -> None:
    # ----- users, roles, auth -------------------------------------------------------------
    op.create_table(
        "user_role",
        sa.Column("role", sa.String(64), primary_key=True),
        sa.Column("description", sa.Text, nullable=True),
        sa.Column("is_default", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.bulk_insert(
        sa.table("user_role", sa.column("role"), sa.column("description"), sa.column("is_default")),
        [
            {"role": "admin", "description": "everything, including users and models", "is_default": False},
            {"role": "annotator", "description": "review conversations and annotate data", "is_default": True},
            {"role": "tester", "description": "talk to the bot and read conversations", "is_default": False},
            {"role": "guest", "description": "chat through the rasa channel only", "is_default": False},
        ],
    )
    op.create_table(
        "rasa_x_user",
        sa.Column("username", sa.String(255), primary_key=True),
        sa.Column("name", sa.String(255), nullable=True),
        sa.Column("team", sa.String(255), nullable=False, server_default="rasa"),
        sa.Column("password_hash", sa.Text, nullable=True),
        sa.Column("api_token", sa.String(255), nullable=False, unique=True),
        sa.Column("authentication_mechanism", sa.String(32), nullable=False, server_default="username_password"),
        sa.Column("data", sa.Text, nullable=True),
        sa.Column("failed_logins", sa.Integer, nullable=False, server_default="0"),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        _created_at(),
    )
    op.create_table(
        "user_to_role_mapping",
        sa.Column("username", sa.String(255), sa.ForeignKey("rasa_x_user.username", ondelete="CASCADE"), primary_key=True),
        sa.Column("role", sa.String(64), sa.ForeignKey("user_role.role", ondelete="CASCADE"), primary_key=True),
    )
    op.create_table(
        "single_use_token",
        sa.Column("token", sa.String(255), primary_key=True),
        sa.Column("username", sa.String(255), sa.ForeignKey("rasa_x_user.username", ondelete="CASCADE"), nullable=False),
        sa.Column("expires", sa.Float, nullable=False),
    )
    op.create_table(
        # Chat tokens of the share-your-bot link: exchanged at /api/auth/jwt for a guest JWT.
        "chat_token",
        sa.Column("token", sa.String(255), primary_key=True),
        sa.Column("bot_name", sa.String(255), nullable=True),
        sa.Column("description", sa.Text, nullable=True),
        sa.Column("expires", sa.Float, nullable=False),
        _created_at(),
    )
    op.create_table(
        # The RS256 pair the backend creates once when JWT_*_KEY_PATH are unset, so that
        # every replica signs and verifies with the same key.
        "rsa_key_pair",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("private_key", sa.Text, nullable=False),
        sa.Column("public_key", sa.Text, nullable=False),
        _created_at(),
    )

    # ----- conversations ------------------------------------------------------------------
    op.create_table(
        "conversation",
        sa.Column("sender_id", sa.String(255), primary_key=True),
        sa.Column("rasa_environment", sa.String(255), nullable=False, server_default="production"),
        sa.Column("number_user_messages", sa.Integer, nullable=False, server_default="0"),
        sa.Column("latest_input_channel", sa.String(255), nullable=True),
        # The timestamp of the event that set latest_input_channel: lets out-of-order
        # deliveries update it only when they are newer.
        sa.Column("latest_input_channel_time", sa.Float, nullable=True),
        sa.Column("first_event_time", sa.Float, nullable=True),
        sa.Column("latest_event_time", sa.Float, nullable=True),
        sa.Column("minimum_action_confidence", sa.Float, nullable=True),
        sa.Column("maximum_action_confidence", sa.Float, nullable=True),
        sa.Column("minimum_intent_confidence", sa.Float, nullable=True),
        sa.Column("maximum_intent_confidence", sa.Float, nullable=True),
        sa.Column("in_training_data", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("review_status", sa.String(32), nullable=False, server_default="unread"),
        sa.Column("evaluation", sa.Text, nullable=True),
        sa.Column("interactive", sa.Boolean, nullable=False, server_default=sa.false()),
        _created_at(),
        sa.CheckConstraint(
            "review_status IN ('unread', 'reviewed', 'saved_for_later')", name="ck_conversation_review_status"
        ),
    )
    op.create_index("ix_conversation_latest_event_time", "conversation", ["latest_event_time"])
    op.create_index("ix_conversation_rasa_environment", "conversation", ["rasa_environment"])

    op.create_table(
        "conversation_event",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("conversation_id", sa.String(255), nullable=False),
        sa.Column("type_name", sa.String(255), nullable=False),
        sa.Column("timestamp", sa.Float, nullable=False),
        sa.Column("intent_name", sa.String(255), nullable=True),
        sa.Column("action_name", sa.String(255), nullable=True),
        sa.Column("slot_name", sa.String(255), nullable=True),
        sa.Column("slot_value", sa.Text, nullable=True),
        sa.Column("policy", sa.String(255), nullable=True),
        sa.Column("is_flagged", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("message_log_id", sa.BigInteger, nullable=True),
        sa.Column("evaluation", sa.Text, nullable=True),
        sa.Column("rasa_environment", sa.String(255), nullable=False, server_default="production"),
        # Rasa gives events no id: the event service derives one from the event's content so a
        # redelivered message is recognised and ignored (insert ... on conflict do nothing).
        sa.Column("dedupe_key", sa.LargeBinary, nullable=False),
        sa.Column("inserted_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_index("uq_conversation_event_dedupe_key", "conversation_event", ["dedupe_key"], unique=True)
    op.create_index("ix_conversation_event_conversation_time", "conversation_event", ["conversation_id", "timestamp"])
    op.create_index("ix_conversation_event_type_name", "conversation_event", ["type_name"])

    # The conversation's facets: one row per distinct value, so the filters and facet lists
    # are index look-ups and inserts are order-independent (insert ... on conflict do nothing).
    for table, column in (
        ("conversation_intent_metadata", "intent"),
        ("conversation_action_metadata", "action"),
        ("conversation_entity_metadata", "entity"),
        ("conversation_policy_metadata", "policy"),
    ):
        op.create_table(
            table,
            sa.Column("conversation_id", sa.String(255), sa.ForeignKey("conversation.sender_id", ondelete="CASCADE"), primary_key=True),
            sa.Column(column, sa.String(255), primary_key=True),
        )
        op.create_index(f"ix_{table}_{column}", table, [column])
    op.create_table(
        "conversation_slot",
        sa.Column("conversation_id", sa.String(255), sa.ForeignKey("conversation.sender_id", ondelete="CASCADE"), primary_key=True),
        sa.Column("slot_name", sa.String(255), primary_key=True),
        # JSON text of the value, so null, lists and numbers survive the round trip.
        sa.Column("slot_value", sa.Text, primary_key=True),
    )
    op.create_index("ix_conversation_slot_name_value", "conversation_slot", ["slot_name", "slot_value"])
    op.create_table(
        "conversation_input_channel",
        sa.Column("conversation_id", sa.String(255), sa.ForeignKey("conversation.sender_id", ondelete="CASCADE"), primary_key=True),
        sa.Column("input_channel", sa.String(255), primary_key=True),
    )

    op.create_table(
        "conversation_session",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("conversation_id", sa.String(255), sa.ForeignKey("conversation.sender_id", ondelete="CASCADE"), nullable=False),
        sa.Column("session_start", sa.Float, nullable=False),
        sa.Column("latest_event_time", sa.Float, nullable=True),
        sa.Column("is_new_user", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("rasa_environment", sa.String(255), nullable=False, server_default="production"),
        sa.Column("input_channel", sa.String(255), nullable=True),
        sa.UniqueConstraint("conversation_id", "session_start", name="uq_conversation_session_start"),
    )
    op.create_index("ix_conversation_session_start", "conversation_session", ["session_start"])

    op.create_table(
        # Global statistics as sharded counters: each writer adds to one of a few rows chosen by
        # the conversation, so no single row is hot; readers sum the shards.
        "conversation_statistic",
        sa.Column("rasa_environment", sa.String(255), primary_key=True),
        sa.Column("shard", sa.SmallInteger, primary_key=True),
        sa.Column("total_user_messages", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("total_bot_messages", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("total_events", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("latest_event_time", sa.Float, nullable=True),
    )

    op.create_table(
        "conversation_tag",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("value", sa.String(255), nullable=False, unique=True),
        sa.Column("color", sa.String(32), nullable=False, server_default="#8a8a8a"),
        _created_at(),
    )
    op.create_table(
        "conversation_to_tag_mapping",
        sa.Column("conversation_id", sa.String(255), sa.ForeignKey("conversation.sender_id", ondelete="CASCADE"), primary_key=True),
        sa.Column("tag_id", sa.Integer, sa.ForeignKey("conversation_tag.id", ondelete="CASCADE"), primary_key=True),
    )
    op.create_index("ix_conversation_to_tag_mapping_tag", "conversation_to_tag_mapping", ["tag_id"])

    # ----- NLU inbox (message logs) ------------------------------------------------------
    op.create_table(
        "message_log",
        sa.Column("id", sa.BigInteger, primary_key=True),
        # sha256 of the text: the inbox shows each distinct message once per conversation turn.
        sa.Column("hash", sa.String(255), nullable=False),
        sa.Column("model", sa.String(255), nullable=True),
        sa.Column("archived", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("time", sa.Float, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("intent", sa.String(255), nullable=True),
        sa.Column("confidence", sa.Float, nullable=True),
        sa.Column("intent_ranking", sa.Text, nullable=True),
        sa.Column("entities", sa.Text, nullable=True),
        sa.Column("insertion_date", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("event_id", sa.BigInteger, sa.ForeignKey("conversation_event.id", ondelete="CASCADE"), nullable=True, unique=True),
        sa.Column("conversation_id", sa.String(255), nullable=True),
        sa.Column("in_training_data", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("team", sa.String(255), nullable=False, server_default="rasa"),
    )
    op.create_index("ix_message_log_hash", "message_log", ["hash"])
    op.create_index("ix_message_log_time", "message_log", ["time"])
    op.create_index("ix_message_log_archived_intent", "message_log", ["archived", "intent"])

    # ----- models --------------------------------------------------------------------------
    op.create_table(
        "model",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(255), nullable=False, unique=True),
        sa.Column("hash", sa.String(255), nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=True),
        sa.Column("project_id", sa.String(255), nullable=False, server_default="default"),
        sa.Column("version", sa.String(255), nullable=True),
        sa.Column("trained_at", sa.Float, nullable=True),
        _created_at(),
    )
    op.create_table(
        # A tag names at most one model (the tag "production" is what Rasa OSS pulls).
        "model_tag",
        sa.Column("tag", sa.String(255), primary_key=True),
        sa.Column("model_id", sa.Integer, sa.ForeignKey("model.id", ondelete="CASCADE"), nullable=False),
        _created_at(),
    )
    op.create_index("ix_model_tag_model_id", "model_tag", ["model_id"])

    # ----- training data -------------------------------------------------------------------
    op.create_table(
        "training_example",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("hash", sa.String(255), nullable=False, unique=True),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("intent", sa.String(255), nullable=False),
        sa.Column("entities", sa.Text, nullable=True),
        sa.Column("filename", sa.String(255), nullable=True),
        sa.Column("project_id", sa.String(255), nullable=False, server_default="default"),
        sa.Column("annotator_id", sa.String(255), nullable=True),
        sa.Column("annotated_at", sa.Float, nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_index("ix_training_example_intent", "training_example", ["intent"])
    op.create_table(
        "story",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("story", sa.Text, nullable=False),
        sa.Column("filename", sa.String(255), nullable=True),
        sa.Column("team", sa.String(255), nullable=False, server_default="rasa"),
        sa.Column("annotator_id", sa.String(255), nullable=True),
        sa.Column("annotated_at", sa.Float, nullable=True),
    )
    op.create_table(
        "domain",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("project_id", sa.String(255), nullable=False, unique=True, server_default="default"),
        sa.Column("content", sa.Text, nullable=False),
        sa.Column("path", sa.String(255), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_table(
        "nlu_config",
        sa.Column("project_id", sa.String(255), primary_key=True, server_default="default"),
        sa.Column("content", sa.Text, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )


def downgrade() -> None:
    for table in (
        "nlu_config",
        "domain",
        "story",
        "training_example",
        "model_tag",
        "model",
        "message_log",
        "conversation_to_tag_mapping",
        "conversation_tag",
        "conversation_statistic",
        "conversation_session",
        "conversation_input_channel",
        "conversation_slot",
        "conversation_policy_metadata",
        "conversation_entity_metadata",
        "conversation_action_metadata",
        "conversation_intent_metadata",
        "conversation_event",
        "conversation",
        "rsa_key_pair",
        "chat_token",
        "single_use_token",
        "user_to_role_mapping",
        "rasa_x_user",
        "user_role",
    ):
        op.drop_table(table)
