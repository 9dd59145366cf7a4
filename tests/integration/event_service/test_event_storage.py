"""The real captured Rasa events through RabbitMQ and `python -m services.event_service` into
PostgreSQL: what lands in every table, redeliveries, the `rasa export` stream, bad input."""

from __future__ import annotations

import json

import pika
import sqlalchemy as sa

from services.common.amqp import connection_parameters
from services.common.config import rabbit_settings
from tests.integration.event_service.harness import (
    Message,
    assert_matches_oracle,
    fixture_messages,
    publish,
    text_hash,
    wait_for_events,
    wait_until,
)


def rows(engine, sql, **params):
    with engine.connect() as connection:
        return [tuple(r) for r in connection.execute(sa.text(sql), params)]


def test_fixture_events_fill_every_table_as_the_events_say(migrated_database, service_env, services):
    _, engine = migrated_database
    messages = fixture_messages()
    # alice said only "hi" (greet) and ... : put all her texts into the training data so that her
    # conversation is in_training_data and the others are not.
    alice_texts = {m.event.get("text") for m in messages if m.event["sender_id"] == "alice" and m.event["event"] == "user"}
    with engine.begin() as connection:
        for text in alice_texts:
            connection.execute(
                sa.text("INSERT INTO training_example (hash, text, intent) VALUES (:h, :t, 'x')"),
                {"h": text_hash(text), "t": text},
            )
    service = services(service_env)
    service.wait_consuming()
    assert publish(service_env, messages) == 123
    wait_for_events(engine, 123, service=service)

    assert_matches_oracle(engine, messages, alice_texts)
    # Spot checks against what the captured events say, independent of the oracle.
    alice = rows(
        engine,
        "SELECT number_user_messages, latest_input_channel, in_training_data, rasa_environment FROM conversation WHERE sender_id = 'alice'",
    )
    assert alice == [(2, "rest", True, "production")]
    assert rows(engine, "SELECT in_training_data FROM conversation WHERE sender_id = 'bob'") == [(False,)]
    # carol restarted: two sessions, only the first is a new user's.
    assert [r[0] for r in rows(engine, "SELECT is_new_user FROM conversation_session WHERE conversation_id = 'carol' ORDER BY session_start")] == [True, False]
    # The raw event is stored as received, with its environment and derived columns.
    bodies = {m.body.decode() for m in messages}
    stored = rows(engine, "SELECT data, type_name, rasa_environment FROM conversation_event")
    assert {r[0] for r in stored} == bodies
    assert all(r[1] == json.loads(r[0])["event"] for r in stored)
    assert all(r[2] == "production" for r in stored)
    user = rows(
        engine,
        """SELECT e.intent_name, e.data, m.text, m.hash, m.intent, m.confidence, m.model, m.conversation_id, m.time,
                  m.intent_ranking, m.entities
           FROM conversation_event e JOIN message_log m ON m.id = e.message_log_id AND m.event_id = e.id
           WHERE e.type_name = 'user'""",
    )
    assert len(user) == 18
    for intent_name, data, text, hash_, intent, confidence, model, conversation_id, time_, ranking, entities in user:
        event = json.loads(data)
        assert intent_name == intent == event["parse_data"]["intent"]["name"]
        assert text == event["text"] and hash_ == text_hash(event["text"])
        assert confidence == event["parse_data"]["intent"]["confidence"]
        assert model == event["metadata"]["model_id"] and conversation_id == event["sender_id"]
        assert time_ == event["timestamp"]
        assert json.loads(ranking) == event["parse_data"]["intent_ranking"]
        assert json.loads(entities) == event["parse_data"]["entities"]
    actions = rows(engine, "SELECT action_name, policy, data FROM conversation_event WHERE type_name = 'action'")
    assert all(a == json.loads(d)["name"] and p == json.loads(d)["policy"] for a, p, d in actions)
    slots = rows(engine, "SELECT slot_name, slot_value, data FROM conversation_event WHERE type_name = 'slot'")
    assert slots and all(n == json.loads(d)["name"] and json.loads(v) == json.loads(d)["value"] for n, v, d in slots)
    health = service.health()[1]
    assert health["events_stored"] == 123 and health["events_dead_lettered"] == 0


def test_redelivered_and_exported_events_add_nothing(migrated_database, service_env, services):
    _, engine = migrated_database
    messages = fixture_messages()
    service = services(service_env)
    service.wait_consuming()
    publish(service_env, messages)
    wait_for_events(engine, 123, service=service)
    before = rows(engine, "SELECT * FROM conversation ORDER BY sender_id")
    stats_before = rows(engine, "SELECT sum(total_events), sum(total_user_messages) FROM conversation_statistic")

    # The same events again: once as redeliveries, once as `rasa export` publishes them (the
    # tracker's dicts with sender_id added last, so keys come in another order).
    exported = []
    for m in messages:
        event = m.event
        sender = event.pop("sender_id")
        event["sender_id"] = sender
        exported.append(Message(json.dumps(event).encode(), None, {"rasa-export-process-id": "9f1c"}))
    publish(service_env, messages + exported)
    wait_until(lambda: service.health()[1]["duplicates_ignored"] == 246, 60, "the duplicates to be consumed")

    assert rows(engine, "SELECT count(*) FROM conversation_event") == [(123,)]
    assert rows(engine, "SELECT count(*) FROM message_log") == [(18,)]
    assert rows(engine, "SELECT * FROM conversation ORDER BY sender_id") == before
    assert rows(engine, "SELECT sum(total_events), sum(total_user_messages) FROM conversation_statistic") == stats_before
    assert service.health()[1]["exported_events_received"] == 123

    # An export of a conversation never streamed live is imported like live events.
    new = [Message(json.dumps({**m.event, "sender_id": "imported-" + m.event["sender_id"]}).encode(), None,
                   {"rasa-export-process-id": "77aa"}) for m in messages[:63]]
    publish(service_env, new)
    wait_for_events(engine, 186, service=service)
    assert rows(engine, "SELECT count(*) FROM conversation WHERE sender_id LIKE 'imported-%'") == [(4,)]


def test_bad_messages_go_to_the_dead_letter_queue_and_never_block(migrated_database, service_env, services):
    _, engine = migrated_database
    service = services(service_env)
    service.wait_consuming()
    good = fixture_messages()[:12]
    bad = [
        (b"\xff\xfe not utf-8", "body is not UTF-8"),
        (b"not json at all", "body is not JSON"),
        (b"[1, 2, 3]", "body is not a JSON object"),
        (b'{"hello": "world"}', "not a Rasa event: no valid 'event' type"),
        (json.dumps({"event": "user", "timestamp": 1.0, "text": "hi"}).encode(), "not a Rasa event: missing sender_id"),
        (json.dumps({"event": "bot", "sender_id": "x"}).encode(), "not a Rasa event: missing or invalid timestamp"),
        (json.dumps({"event": "bot", "sender_id": "x" * 300, "timestamp": 1.0}).encode(), "sender_id longer than 255 characters"),
        (b'{"event": "bot", "sender_id": "x", "timestamp": NaN}', "not a Rasa event: missing or invalid timestamp"),
        (b"[" * 100_000 + b"]" * 100_000, "body nests too deeply"),
        (b'{"event": "bot", "sender_id": "x", "timestamp": 1, "deep": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
         "body nests too deeply"),
        (json.dumps({"event": "bot", "sender_id": "x", "timestamp": 1.0, "text": "y" * 2_000_000}).encode(), "body of"),
    ]
    # Good and bad interleaved: the good ones behind each bad one must still be stored.
    mixed = []
    for i, message in enumerate(good):
        mixed.append(message)
        if i < len(bad):
            mixed.append(Message(bad[i][0], "production", {"custom": "kept"}))
    publish(service_env, mixed)
    wait_for_events(engine, 12, service=service)
    wait_until(lambda: service.health()[1]["events_dead_lettered"] == len(bad), 30, "dead letters to be counted")

    rabbit = rabbit_settings(service_env)
    connection = pika.BlockingConnection(connection_parameters(rabbit))
    channel = connection.channel()
    dead = []
    while True:
        method, properties, body = channel.basic_get(f"{rabbit.queue}_dead_letter", auto_ack=True)
        if method is None:
            break
        dead.append((body, properties))
    main_queue = channel.queue_declare(rabbit.queue, durable=True, passive=True).method.message_count
    connection.close()
    assert main_queue == 0
    assert sorted(body for body, _ in dead) == sorted(body for body, _ in bad)
    reasons = {body: props.headers["x-rasax-dead-letter-reason"] for body, props in dead}
    for body, reason in bad:
        assert reasons[body].startswith(reason), (reasons[body], reason)
    assert all(props.headers["custom"] == "kept" and props.app_id == "production" for _, props in dead)
    assert service.process.poll() is None
    log = service.log()
    assert log.count('"dead-lettered a message"') == len(bad)


def test_text_postgresql_refuses_is_cleaned_not_lost(migrated_database, service_env, services):
    """NUL characters and lone surrogates are valid JSON escapes but not PostgreSQL text."""
    _, engine = migrated_database
    service = services(service_env)
    service.wait_consuming()
    event = json.loads(fixture_messages()[3].body)
    assert event["event"] == "user"
    event.update(sender_id="nul", text="a\u0000b\ud800c", input_channel="x" * 400)
    event["parse_data"]["intent"]["name"] = "i\u0000"
    body = json.dumps(event).encode()
    publish(service_env, [Message(body)])
    wait_for_events(engine, 1, service=service)
    assert rows(engine, "SELECT data FROM conversation_event") == [(body.decode(),)]
    assert rows(engine, "SELECT text, intent FROM message_log") == [("ab\ufffdc", "i")]
    assert rows(engine, "SELECT length(latest_input_channel) FROM conversation") == [(255,)]
