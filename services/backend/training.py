"""Keeping in_training_data true to the training data after the backend changes it.

A conversation is in the training data when every user message of it is an NLU example
(conversation.in_training_data, which the event service keeps as events arrive) and every turn
of it is covered by the stories or rules (conversation.turns_covered). A turn is a user message
and the actions the bot ran until the next one; it is covered when a story or rule has a user
step of that intent (or, end-to-end, that text) followed by exactly those action steps before its
next user step: slot_was_set, active_loop and entities are not compared; an `or` step stands for
each of its alternatives; a story ending in a checkpoint continues with the stories that start
with it. Turns a form handles (a user message while a form is active) and Rasa's own restart,
back and session start count as covered. The turn rows of the stories are in story_turn; the
database function rasax_turns_covered (migration 0007) compares the conversation's events with
them, from a trigger whenever in_training_data is set, so new events keep it exact too.
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from .training_data import annotation

# Turns Rasa handles without any story: its default intents and their actions.
DEFAULT_TURNS = {("intent:restart", ("action_restart",)), ("intent:back", ("action_back",)), ("intent:session_start", ())}
# Following checkpoints stops here: a chain of checkpoints this deep is a loop.
MAX_CHECKPOINT_DEPTH = 20


def recompute_in_training_data(connection: Connection, hashes: list[str]) -> None:
    """Re-derive the flags of every conversation with a message of one of `hashes`.

    All messages of those conversations are checked against training_example again, not just
    the changed ones, so a flag gone stale by an earlier change is repaired too. Setting the
    conversation's in_training_data recomputes its turns_covered (the trigger of migration 0007).
    """
    affected = "SELECT DISTINCT conversation_id FROM message_log WHERE hash = ANY(:h)"
    connection.execute(
        sa.text(
            "UPDATE message_log ml SET in_training_data = EXISTS "
            f"(SELECT 1 FROM training_example t WHERE t.hash = ml.hash) WHERE ml.conversation_id IN ({affected})"
        ),
        {"h": hashes},
    )
    connection.execute(
        sa.text(
            "UPDATE conversation c SET in_training_data = NOT EXISTS "
            "(SELECT 1 FROM message_log ml WHERE ml.conversation_id = c.sender_id AND NOT ml.in_training_data) "
            f"WHERE c.sender_id IN ({affected})"
        ),
        {"h": hashes},
    )


# ----- the turns of stories and rules -------------------------------------------------------
def _user_keys(step: dict) -> list[str]:
    """The user keys a step matches: its intent, its end-to-end text, or those of its `or`."""
    if "or" in step:
        return [key for alternative in step["or"] if isinstance(alternative, dict) for key in _user_keys(alternative)]
    keys = [f"intent:{step['intent']}"] if "intent" in step else []
    if "user" in step:
        keys.append(f"text:{annotation.parse(step['user'])[0]}")
    return keys


def _action(step: dict) -> str | None:
    if "action" in step:
        return step["action"]
    if "bot" in step:
        return f"bot:{step['bot']}"
    return None


def _elements(steps: list[dict]) -> list[tuple[str, object]]:
    """The steps as ("user", keys) and ("action", name); the rest is not compared."""
    elements: list[tuple[str, object]] = []
    for step in steps:
        keys = _user_keys(step)
        if keys:
            elements.append(("user", keys))
        elif _action(step) is not None:
            elements.append(("action", _action(step)))
    return elements


def _ending_checkpoint(steps: list[dict]) -> str | None:
    return steps[-1]["checkpoint"] if steps and "checkpoint" in steps[-1] else None


def story_turns(blocks: list[dict]) -> set[tuple[str, tuple[str, ...]]]:
    """Every (user_key, actions) turn the stories and rules in `blocks` allow (with Rasa's own)."""
    starting: dict[str, list[dict]] = {}
    for block in blocks:
        steps = block.get("steps") or []
        if steps and "checkpoint" in steps[0]:
            starting.setdefault(steps[0]["checkpoint"], []).append(block)

    def continuations(checkpoint: str | None, depth: int = 0) -> set[tuple[str, ...]]:
        """The actions a turn open at the end of a block goes on with, after `checkpoint`."""
        if checkpoint is None or checkpoint not in starting or depth > MAX_CHECKPOINT_DEPTH:
            return {()}
        found: set[tuple[str, ...]] = set()
        for block in starting[checkpoint]:
            elements = _elements(block["steps"])
            leading = []
            for kind, value in elements:
                if kind == "user":
                    break
                leading.append(value)
            if len(leading) == len(elements):  # no user step: the turn may go on after its end too
                found |= {tuple(leading) + more for more in continuations(_ending_checkpoint(block["steps"]), depth + 1)}
            else:
                found.add(tuple(leading))
        return found

    turns = set(DEFAULT_TURNS)
    for block in blocks:
        steps = block.get("steps") or []
        elements = _elements(steps)
        for index, (kind, keys) in enumerate(elements):
            if kind != "user":
                continue
            actions = []
            for later_kind, value in elements[index + 1 :]:
                if later_kind == "user":
                    break
                actions.append(value)
            else:
                endings = continuations(_ending_checkpoint(steps))
                turns |= {(key, tuple(actions) + more) for key in keys for more in endings}
                continue
            turns |= {(key, tuple(actions)) for key in keys}
    return turns


def sync_story_turns(connection: Connection) -> bool:
    """Make story_turn the turns of the stored stories and rules; when they changed, recompute
    turns_covered of every conversation whose messages are all training data. Whether they did."""
    # One sync at a time: two would each replace what the other wrote.
    connection.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('rasax-story-turns'))"))
    blocks = [json.loads(s) for s in connection.execute(sa.text("SELECT story FROM story ORDER BY id")).scalars()]
    wanted = story_turns(blocks)
    stored = {(key, tuple(actions)) for key, actions in connection.execute(sa.text("SELECT user_key, actions FROM story_turn"))}
    if wanted == stored:
        return False
    connection.execute(sa.text("DELETE FROM story_turn"))
    rows = sorted(wanted)
    connection.execute(
        sa.text("INSERT INTO story_turn (user_key, actions) SELECT k, string_to_array(a, chr(31)) FROM unnest(:k, :a) AS t(k, a)"),
        {"k": [key for key, _ in rows], "a": [chr(31).join(actions) for _, actions in rows]},
    )
    connection.execute(sa.text("UPDATE conversation SET turns_covered = rasax_turns_covered(sender_id) WHERE in_training_data"))
    return True


def sync_at_start(engine: Engine) -> None:
    """story_turn as the stories say, also after a migration or a change of the definition above."""
    with engine.begin() as connection:
        sync_story_turns(connection)
