"""From one AMQP message body to one storable Rasa event, or the reason it cannot be stored.

Pure functions, no I/O: the consumer calls `parse_event` for every delivery and dead-letters
what raises `BadEvent`. Everything that reaches PostgreSQL is checked here first (sizes, column
widths, text PostgreSQL rejects), so that one bad message never fails a whole batch.
"""

from __future__ import annotations

import hashlib
import json
import math

import orjson

from services.common.amqp import DEFAULT_RASA_ENVIRONMENT
from services.common.text_hash import text_hash

# Real Rasa events are a few KiB; a body this large is a mistake or an attack, and storing it
# would slow every conversation query that reads it.
MAX_BODY_BYTES = 1024 * 1024
# Width of the String(255) columns of the schema.
MAX_NAME = 255
# The slot facet (services.common.facets.SLOTS) has the JSON value in its primary key: a B-tree
# entry must stay well under PostgreSQL's ~2.7 KB limit. Larger values are still stored in
# conversation_event.slot_value.
MAX_SLOT_FACET = 1024


class BadEvent(ValueError):
    """The message is not a storable Rasa event; `str()` is the dead-letter reason."""


class Event:
    """One Rasa event with the fields the derived tables need."""

    __slots__ = (
        "sender_id",
        "type_name",
        "timestamp",
        "data",
        "environment",
        "dedupe_key",
        "intent_name",
        "action_name",
        "policy",
        "slot_name",
        "slot_value",
        "confidence",
        "input_channel",
        "text",
        "entity_names",
        "entities_json",
        "intent_ranking_json",
        "model",
        # A user event's: the key of message_log.hash and training_example.hash.
        "text_hash",
        # Set by the store once the event is inserted.
        "event_id",
        "message_log_id",
    )

    def __init__(self, sender_id: str, type_name: str, timestamp: float, data: str, environment: str, dedupe_key: bytes):
        self.sender_id = sender_id
        self.type_name = type_name
        self.timestamp = timestamp
        self.data = data
        self.environment = environment
        self.dedupe_key = dedupe_key
        self.intent_name = None
        self.action_name = None
        self.policy = None
        self.slot_name = None
        self.slot_value = None
        # The intent confidence of a user event, the action confidence of an action event.
        self.confidence = None
        self.input_channel = None
        self.text = None
        self.entity_names = ()
        self.entities_json = None
        self.intent_ranking_json = None
        self.model = None
        self.event_id = self.message_log_id = self.text_hash = None


def dedupe_key(event: dict, fast: bool = True) -> bytes:
    """sha256 of the event's canonical JSON (keys sorted, no spaces).

    Rasa gives events no id, and the AMQP message_id is not something a publisher promises.
    The content identifies an event: Rasa's float timestamps make two real events differ, and
    the same event published twice (a redelivery, a `rasa export` of what was streamed live,
    whose keys come in another order) has the same content. The AMQP properties are left out
    for that reason. `fast=False` is the form for bodies orjson cannot read (see _load):
    a given body always takes the same path, so its key never changes.
    """
    if fast:
        canonical = orjson.dumps(event, option=orjson.OPT_SORT_KEYS)
    else:
        canonical = json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode()
    return hashlib.sha256(canonical).digest()


# orjson reads integers beyond 64 bits as floats, which could make two events one key: bodies
# with a run of 19+ digits take the exact path. (translate + `in` is ~10× faster than a regex.)
_DIGITS_AS_9 = bytes(0x39 if 0x30 <= i <= 0x39 else 0x20 for i in range(256))
_LONG_NUMBER = b"9" * 19


def _load(body: bytes) -> tuple[object, bool]:
    """(parsed JSON, whether orjson read it). The standard library takes what orjson refuses
    (lone surrogate escapes, NaN) or would read lossily (huge integers)."""
    if _LONG_NUMBER not in body.translate(_DIGITS_AS_9):
        try:
            return orjson.loads(body), True
        except (orjson.JSONDecodeError, RecursionError):
            pass
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadEvent("body is not UTF-8") from None
    try:
        return json.loads(text), False
    except RecursionError:
        # orjson (>= 3.9.15) refuses past 1024 levels too, so every such body lands here.
        raise BadEvent("body nests too deeply") from None
    except ValueError:
        raise BadEvent("body is not JSON") from None


def clean_text(value) -> str | None:
    """A string PostgreSQL accepts: no NUL, no lone surrogates (from `\\ud800` escapes)."""
    if value is None:
        return None
    if not isinstance(value, str):
        value = json.dumps(value)
    if "\x00" in value:
        value = value.replace("\x00", "")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = "".join("\ufffd" if "\ud800" <= ch <= "\udfff" else ch for ch in value)
    return value


def _name(value) -> str | None:
    """A name column value (intent, action, entity, ...): text, at most 255 characters."""
    if value is None or value == "":
        return None
    return clean_text(value)[:MAX_NAME]


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def parse_event(body: bytes, app_id: str | None = None) -> Event:
    """Parse and check one message body. Raises BadEvent with a one-line reason."""
    if len(body) > MAX_BODY_BYTES:
        raise BadEvent(f"body of {len(body)} bytes exceeds the limit of {MAX_BODY_BYTES}")
    raw, fast = _load(body)
    if not isinstance(raw, dict):
        raise BadEvent("body is not a JSON object")
    type_name = raw.get("event")
    if not isinstance(type_name, str) or not type_name or len(type_name) > MAX_NAME:
        raise BadEvent("not a Rasa event: no valid 'event' type")
    sender_id = raw.get("sender_id")
    if not isinstance(sender_id, str) or not sender_id:
        raise BadEvent("not a Rasa event: missing sender_id")
    if len(sender_id) > MAX_NAME:
        raise BadEvent(f"sender_id longer than {MAX_NAME} characters")
    if clean_text(sender_id) != sender_id:
        raise BadEvent("sender_id contains characters PostgreSQL cannot store")
    timestamp = _number(raw.get("timestamp"))
    if timestamp is None:
        raise BadEvent("not a Rasa event: missing or invalid timestamp")
    try:
        key = dedupe_key(raw, fast)
    except (ValueError, TypeError, RecursionError):  # orjson.JSONEncodeError is a TypeError
        raise BadEvent("body holds NaN or Infinity, or nests deeper than 254 levels") from None
    try:
        text = body.decode("utf-8")  # orjson checked it already; this is the stored copy
    except UnicodeDecodeError:
        raise BadEvent("body is not UTF-8") from None

    event = Event(sender_id, type_name, timestamp, text, clean_text(app_id)[:MAX_NAME] if app_id else DEFAULT_RASA_ENVIRONMENT, key)
    metadata = raw.get("metadata")
    if type_name == "user":
        _user_fields(event, raw, metadata)
    elif type_name == "action":
        event.action_name = _name(raw.get("name"))
        event.policy = _name(raw.get("policy"))
        event.confidence = _number(raw.get("confidence"))
    elif type_name == "slot":
        event.slot_name = _name(raw.get("name"))
        event.slot_value = clean_text(json.dumps(raw.get("value")))
    return event


def _user_fields(event: Event, raw: dict, metadata) -> None:
    parse_data = raw.get("parse_data")
    if not isinstance(parse_data, dict):
        parse_data = {}
    intent = parse_data.get("intent")
    if isinstance(intent, dict):
        event.intent_name = _name(intent.get("name"))
        event.confidence = _number(intent.get("confidence"))
    entities = parse_data.get("entities")
    if isinstance(entities, list):
        names = {_name(e.get("entity")) for e in entities if isinstance(e, dict)}
        names.discard(None)
        event.entity_names = tuple(sorted(names))
        event.entities_json = clean_text(_json_text(entities))
    ranking = parse_data.get("intent_ranking")
    if ranking is not None:
        event.intent_ranking_json = clean_text(_json_text(ranking))
    event.input_channel = _name(raw.get("input_channel"))
    text = raw.get("text")
    event.text = clean_text(text) if text is not None else ""
    event.text_hash = text_hash(event.text)
    if isinstance(metadata, dict):
        event.model = _name(metadata.get("model_id"))


def _json_text(value) -> str:
    try:
        return orjson.dumps(value).decode()
    except (TypeError, orjson.JSONEncodeError):  # surrogates, NaN, huge integers
        return json.dumps(value)
