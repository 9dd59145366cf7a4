"""Message body → storable event: the checks that keep one bad message from failing a batch,
and the dedupe key that makes storage exactly-once."""

from __future__ import annotations

import json

import pytest

from services.event_service.parsing import MAX_BODY_BYTES, BadEvent, dedupe_key, parse_event
from services.event_service.aggregate import STATISTIC_SHARDS, statistic_shard

USER = {
    "sender_id": "alice",
    "event": "user",
    "timestamp": 1795528263.184209,
    "metadata": {"model_id": "m1"},
    "text": "hi",
    "parse_data": {
        "intent": {"name": "greet", "confidence": 0.9},
        "entities": [{"entity": "city", "value": "Berlin"}, {"entity": "city", "value": "Rome"}, {"entity": "day"}],
        "intent_ranking": [{"name": "greet", "confidence": 0.9}],
    },
    "input_channel": "rest",
    "message_id": "f5c2",
}


def body(event) -> bytes:
    return json.dumps(event).encode()


def test_user_event_fields():
    event = parse_event(body(USER), None)
    assert (event.sender_id, event.type_name, event.timestamp, event.environment) == ("alice", "user", USER["timestamp"], "production")
    assert (event.intent_name, event.confidence, event.input_channel, event.text, event.model) == ("greet", 0.9, "rest", "hi", "m1")
    assert event.entity_names == ("city", "day")
    assert json.loads(event.entities_json) == USER["parse_data"]["entities"]
    assert event.data == body(USER).decode()


def test_action_and_slot_fields_and_environment_from_app_id():
    action = parse_event(body({"sender_id": "a", "event": "action", "timestamp": 1, "name": "utter_greet",
                               "policy": "RulePolicy", "confidence": 1}), "worker")
    assert (action.action_name, action.policy, action.confidence, action.environment) == ("utter_greet", "RulePolicy", 1.0, "worker")
    slot = parse_event(body({"sender_id": "a", "event": "slot", "timestamp": 1, "name": "s", "value": [1, None]}))
    assert (slot.slot_name, json.loads(slot.slot_value)) == ("s", [1, None])


def test_dedupe_key_ignores_key_order_but_not_content():
    reordered = dict(reversed(list(USER.items())))
    assert dedupe_key(USER) == dedupe_key(reordered)
    assert parse_event(body(USER)).dedupe_key == parse_event(body(reordered), "production").dedupe_key
    assert dedupe_key(USER) != dedupe_key({**USER, "timestamp": USER["timestamp"] + 1e-6})
    assert dedupe_key(USER) != dedupe_key({**USER, "sender_id": "bob"})


@pytest.mark.parametrize(
    "raw, reason",
    [
        (b"\xff", "body is not UTF-8"),
        (b"{", "body is not JSON"),
        (b"[" * 50_000, "body nests too deeply"),
        (b'"text"', "body is not a JSON object"),
        (b'{"sender_id": "a", "timestamp": 1}', "not a Rasa event: no valid 'event' type"),
        (b'{"event": "bot", "timestamp": 1}', "not a Rasa event: missing sender_id"),
        (b'{"event": "bot", "sender_id": 5, "timestamp": 1}', "not a Rasa event: missing sender_id"),
        (b'{"event": "bot", "sender_id": "a", "timestamp": "1"}', "not a Rasa event: missing or invalid timestamp"),
        (b'{"event": "bot", "sender_id": "a", "timestamp": true}', "not a Rasa event: missing or invalid timestamp"),
        (b'{"event": "bot", "sender_id": "a", "timestamp": 1, "x": NaN}', "body holds NaN or Infinity"),
        (b'{"event": "bot", "sender_id": "a", "timestamp": 1, "x": ' + b"[" * 300 + b"]" * 300 + b"}", "body holds NaN"),
        (b'{"event": "bot", "sender_id": "a\\u0000", "timestamp": 1}', "sender_id contains characters"),
        (body({"event": "bot", "sender_id": "a" * 256, "timestamp": 1}), "sender_id longer than 255"),
        (b" " * (MAX_BODY_BYTES + 1), "body of"),
    ],
)
def test_bad_bodies_are_refused_with_a_reason(raw, reason):
    with pytest.raises(BadEvent) as excinfo:
        parse_event(raw)
    assert str(excinfo.value).startswith(reason)


def test_text_postgresql_refuses_is_cleaned():
    event = parse_event(body({**USER, "text": "a\u0000b\ud800", "input_channel": "c" * 300}))
    assert event.text == "ab\ufffd"
    assert event.input_channel == "c" * 255


def test_statistic_shard_is_stable_and_spread():
    assert statistic_shard("alice") == statistic_shard("alice") == 7  # crc32: same in every process
    assert len({statistic_shard(f"user-{i}") for i in range(200)}) == STATISTIC_SHARDS


def test_events_differing_only_in_a_huge_integer_keep_apart():
    # orjson would read both as the same float; such bodies take the exact path.
    a = parse_event(b'{"event": "bot", "sender_id": "a", "timestamp": 1, "n": 123456789012345678901234567890}')
    b = parse_event(b'{"event": "bot", "sender_id": "a", "timestamp": 1, "n": 123456789012345678901234567891}')
    assert a.dedupe_key != b.dedupe_key


def test_events_orjson_refuses_are_still_stored():
    event = parse_event(b'{"event": "user", "sender_id": "a", "timestamp": 1, "text": "x\\ud800"}')
    assert event.text == "x\ufffd"
