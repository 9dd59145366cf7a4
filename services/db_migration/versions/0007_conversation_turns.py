"""in_training_data of a conversation covers its turns too, not only its user messages.

- story_turn: every turn the stories and rules allow, as (user_key, actions): user_key is
  'intent:<name>' or 'text:<text>' (an end-to-end `user:` step), actions the names of the actions
  that follow until the next user step ('bot:<text>' for an end-to-end `bot:` step). The backend
  derives it from the story table (services/backend/training.py) after every story or rule change.
- conversation.turns_covered: whether each turn of the conversation is one of story_turn (see
  rasax_turns_covered below). It is kept exact only while in_training_data (all user messages are
  NLU examples) is true; the API's in_training_data is `in_training_data AND turns_covered`.
- BEFORE INSERT/UPDATE triggers on conversation recompute turns_covered whenever the event
  service upserts a conversation whose messages are all training data (its events of the batch
  are stored by then) and whenever the backend re-derives in_training_data; a conversation whose
  messages are not all training data costs nothing. The recompute reads all events of the
  conversation, so an action that arrives after its user message turns a turn covered again.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# A turn: a user message (its intent, or its text for end-to-end stories) and the actions the
# bot ran until the next user message, in order. Actions a story never names are left out:
# action_listen, the session start, action_extract_slots and action_unlikely_intent. A turn whose
# user message came while a form was active belongs to the form (its loop decides, no story
# step); it counts as covered. A restart or a new session ends an active form.
TURNS_COVERED = r"""
CREATE FUNCTION rasax_turns_covered(conversation text) RETURNS boolean
LANGUAGE sql VOLATILE  -- volatile: a fresh snapshot, so it sees events committed while it waited
AS $$
WITH events AS (
    SELECT e.id, e.timestamp, e.type_name,
        CASE WHEN e.type_name = 'user' THEN e.intent_name::text END AS intent,
        CASE WHEN e.type_name = 'user' THEN e.data::jsonb ->> 'text' END AS text,
        CASE WHEN e.type_name = 'action'
             THEN coalesce(e.action_name::text, 'bot:' || (e.data::jsonb ->> 'action_text')) END AS action,
        CASE WHEN e.type_name = 'active_loop' THEN e.data::jsonb ->> 'name' END AS loop_name,
        count(*) FILTER (WHERE e.type_name = 'user') OVER w AS turn,
        count(*) FILTER (WHERE e.type_name IN ('active_loop', 'restart', 'session_started')) OVER w AS loop_change
    FROM conversation_event e
    WHERE e.conversation_id = conversation
    WINDOW w AS (ORDER BY e.timestamp, e.id)
), looped AS (
    SELECT *, first_value(loop_name) OVER (PARTITION BY loop_change ORDER BY timestamp, id) AS active_loop
    FROM events
), turns AS (
    SELECT turn,
        max(intent) AS intent,
        max(text) AS text,
        bool_or(type_name = 'user' AND active_loop IS NOT NULL) AS in_form,
        coalesce(array_agg(action ORDER BY timestamp, id) FILTER (WHERE action IS NOT NULL AND action NOT IN
            ('action_listen', 'action_session_start', 'action_extract_slots', 'action_unlikely_intent')), '{}') AS actions
    FROM looped
    WHERE turn > 0
    GROUP BY turn
)
SELECT NOT EXISTS (
    SELECT 1 FROM turns t
    WHERE NOT t.in_form AND NOT EXISTS (
        SELECT 1 FROM story_turn s WHERE s.actions = t.actions AND s.user_key IN ('intent:' || t.intent, 'text:' || t.text)
    )
)
$$;

CREATE FUNCTION rasax_conversation_turns() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- An INSERT that will conflict (the conversation exists) becomes the UPDATE below, whose
    -- trigger sees the merged row: only a new conversation is computed here.
    IF TG_OP = 'UPDATE' OR NOT EXISTS (SELECT 1 FROM conversation WHERE sender_id = NEW.sender_id) THEN
        NEW.turns_covered := rasax_turns_covered(NEW.sender_id);
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER conversation_turns_insert BEFORE INSERT ON conversation
    FOR EACH ROW WHEN (NEW.in_training_data) EXECUTE FUNCTION rasax_conversation_turns();
CREATE TRIGGER conversation_turns_update BEFORE UPDATE OF in_training_data ON conversation
    FOR EACH ROW WHEN (NEW.in_training_data) EXECUTE FUNCTION rasax_conversation_turns();
"""


def upgrade() -> None:
    op.create_table(
        "story_turn",
        sa.Column("user_key", sa.Text, primary_key=True),
        sa.Column("actions", sa.ARRAY(sa.Text), primary_key=True),
    )
    # False until computed: the backend computes every conversation whose messages are all
    # training data when it first starts on this schema (training.sync_story_turns).
    op.add_column("conversation", sa.Column("turns_covered", sa.Boolean, nullable=False, server_default=sa.false()))
    op.execute(TURNS_COVERED)


def downgrade() -> None:
    op.execute(
        "DROP TRIGGER conversation_turns_update ON conversation; DROP TRIGGER conversation_turns_insert ON conversation; "
        "DROP FUNCTION rasax_conversation_turns(); DROP FUNCTION rasax_turns_covered(text)"
    )
    op.drop_column("conversation", "turns_covered")
    op.drop_table("story_turn")
