"""A conversation as a Rasa end-to-end test story (`tests/*.yml`): the "test" step of
conversation-driven development. Rasa's format: rasa.com/docs/rasa/testing-your-assistant.

User turns keep their text with the predicted entities written in (Rasa's annotation syntax) and
the predicted intent; a message that named its intent (`/greet`) is just `intent`. Actions the
bot ran, slots it set and forms it activated follow in order; Rasa's own bookkeeping
(action_listen, the session start) is left out, as `rasa interactive` leaves it out of stories.
"""

from __future__ import annotations

from .training_data import annotation, rasa_yaml
from .training_data.inbox import predicted_entities

SKIPPED_ACTIONS = {"action_listen", "action_session_start", "action_unlikely_intent"}


def _user_step(event: dict) -> dict | None:
    parse = event.get("parse_data") or {}
    intent = (parse.get("intent") or {}).get("name") or None
    text = event.get("text") or ""
    if text.startswith("/") or not text.strip():
        return {"intent": intent} if intent else None
    entities = predicted_entities(text, parse.get("entities"))
    try:
        annotation.check_entities(text, entities)
        shown = annotation.render(text, entities)
    except annotation.AnnotationError:  # spans Rasa's YAML cannot write: the text alone
        shown = text
    return {"user": shown, **({"intent": intent} if intent else {})}


def story_steps(events: list[dict]) -> list[dict]:
    steps: list[dict] = []
    for event in events:
        kind = event.get("event")
        step = None
        if kind == "user":
            step = _user_step(event)
        elif kind == "action" and event.get("name") and event["name"] not in SKIPPED_ACTIONS:
            step = {"action": event["name"]}
        elif kind == "slot" and event.get("name"):
            step = {"slot_was_set": [{event["name"]: event.get("value")}]}
        elif kind == "active_loop":
            step = {"active_loop": event.get("name")}
        if step:
            steps.append(step)
    # Slots set by the session start, before anyone spoke, are not part of what the user did.
    while steps and "slot_was_set" in steps[0]:
        steps.pop(0)
    return steps


def as_test_story(sender_id: str, events: list[dict]) -> str:
    document = {"version": rasa_yaml.FORMAT_VERSION,
                "stories": [{"story": f"conversation {sender_id}", "steps": story_steps(events)}]}
    return rasa_yaml.dump_yaml(document)
