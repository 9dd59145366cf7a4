"""The test data and what each conversation should look like, derived from the events alone.

The published stream is the captured fixtures of tests/fixtures plus variants the fixture
README allows (other sender ids and timestamps) with a few fields changed so that every filter
has something to tell apart: another environment ("worker"), another input channel, an entity.
`expected_conversations()` computes each conversation's facts straight from those events, as an
independent model of the derived tables (docs/design.md §5): the tests compare the backend's answers with it.
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass, field

from tests.conftest import FIXTURES_DIR

WORKER_PREFIX = "w-"
WORKER_SHIFT = 100_000.0  # seconds: the variant conversations happen later
# The moodbot is sure of everything; the variants are less so, for the confidence filters.
WORKER_CONFIDENCE_SCALE = {"xmode-1": 0.55, "xmode-2": 0.8}
CORRECTION_SENDER = "correction-target"
CORRECTION_TEXT = "a sentence only this conversation ever says"


def _fixture(name: str) -> list[tuple[dict, str | None]]:
    path = os.path.join(FIXTURES_DIR, name)
    with open(path) as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    return [(json.loads(row["body"]), row.get("app_id")) for row in rows]


def conversation_as(original: str, sender: str, shift: float, edit=None) -> list[tuple[str, str | None]]:
    """The captured conversation of `original` as a new one of `sender`, `shift` seconds later;
    `edit(event)` may change each copied event further."""
    events = []
    for event, app_id in _fixture("rasa-3.6.21-pika-events.jsonl"):
        if event["sender_id"] == original:
            event = copy.deepcopy(event)
            event["sender_id"] = sender
            event["timestamp"] += shift
            if edit:
                edit(event)
            events.append((json.dumps(event), app_id))
    return events


def _events() -> list[tuple[dict, str | None]]:
    plain = _fixture("rasa-3.6.21-pika-events.jsonl")
    production = _fixture("rasa-3.6.21-pika-events-app_id-production.jsonl")
    worker = []
    for event, _ in production:
        event = copy.deepcopy(event)
        scale = WORKER_CONFIDENCE_SCALE.get(event["sender_id"], 1.0)
        event["sender_id"] = WORKER_PREFIX + event["sender_id"]
        if event["event"] == "action" and event.get("confidence") is not None:
            event["confidence"] *= scale
        if event["event"] == "user":
            event["parse_data"]["intent"]["confidence"] *= scale
        event["timestamp"] += WORKER_SHIFT
        if event["event"] == "user":
            event["input_channel"] = "socketio"
            if event["parse_data"]["intent"]["name"] in ("mood_great", "mood_unhappy"):
                mood = event["parse_data"]["intent"]["name"].split("_")[1]
                event["parse_data"]["entities"] = [
                    {"entity": "mood", "value": mood, "start": 0, "end": len(event["text"]), "extractor": "RegexEntityExtractor"}
                ]
        worker.append((event, "worker"))
    # A conversation of its own for the intent correction test: its text is unique.
    correction = []
    first_user = True
    for event, app_id in plain:
        if event["sender_id"] != "alice":
            continue
        event = copy.deepcopy(event)
        event["sender_id"] = CORRECTION_SENDER
        event["timestamp"] += 2 * WORKER_SHIFT
        if event["event"] == "user" and first_user:
            first_user = False
            event["text"] = event["parse_data"]["text"] = CORRECTION_TEXT
        correction.append((event, app_id))
    return plain + production + worker + correction


def published_messages() -> list[tuple[str, str | None]]:
    return [(json.dumps(event), app_id) for event, app_id in _events()]


@dataclass
class Expected:
    sender_id: str
    environment: str = "production"
    intents: set = field(default_factory=set)
    actions: set = field(default_factory=set)
    policies: set = field(default_factory=set)
    entities: set = field(default_factory=set)
    input_channels: set = field(default_factory=set)
    slots: set = field(default_factory=set)  # (name, value as Python JSON text)
    texts: list = field(default_factory=list)
    user_messages: int = 0
    action_confidences: list = field(default_factory=list)
    intent_confidences: list = field(default_factory=list)
    timestamps: list = field(default_factory=list)

    @property
    def latest_event_time(self) -> float:
        return max(self.timestamps)

    @property
    def minimum_action_confidence(self):
        return min(self.action_confidences) if self.action_confidences else None

    @property
    def minimum_intent_confidence(self):
        return min(self.intent_confidences) if self.intent_confidences else None


def expected_conversations() -> dict[str, Expected]:
    result: dict[str, Expected] = {}
    for event, app_id in _events():
        c = result.setdefault(event["sender_id"], Expected(event["sender_id"]))
        c.environment = app_id or "production"
        c.timestamps.append(event["timestamp"])
        kind = event["event"]
        if kind == "user":
            c.user_messages += 1
            c.texts.append(event["text"])
            c.intents.add(event["parse_data"]["intent"]["name"])
            c.intent_confidences.append(event["parse_data"]["intent"]["confidence"])
            c.entities.update(e["entity"] for e in event["parse_data"]["entities"])
            c.input_channels.add(event["input_channel"])
        elif kind == "action":
            c.actions.add(event["name"])
            if event.get("policy"):
                c.policies.add(event["policy"])
            if event.get("confidence") is not None:
                c.action_confidences.append(event["confidence"])
        elif kind == "slot":
            c.slots.add((event["name"], json.dumps(event["value"], sort_keys=True)))
    return result


def user_events(sender_id: str) -> list[dict]:
    return [event for event, _ in _events() if event["sender_id"] == sender_id and event["event"] == "user"]
