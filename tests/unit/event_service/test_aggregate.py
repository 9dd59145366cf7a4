"""The pure aggregation of a batch into per-conversation changes, without a database.

The event pool is the real captured Rasa events of tests/fixtures; the expected tables come
from the integration tests' independent oracle, which recomputes them naively from the events.
"""

from __future__ import annotations

import json
from collections import defaultdict

from hypothesis import given, settings
from hypothesis import strategies as st

from services.common.counters import COUNTERS, EVENTS
from services.common.facets import ACTIONS, ENTITIES, INPUT_CHANNELS, INTENTS, POLICIES, SLOTS
from services.event_service.aggregate import aggregate, unique_events
from services.common.text_hash import text_hash
from services.event_service.parsing import MAX_SLOT_FACET, parse_event
from tests.integration.event_service.harness import expected_tables, fixture_messages

MESSAGES = fixture_messages()
POOL = [parse_event(message.body, message.app_id) for message in MESSAGES]
TEXTS = sorted({e.text for e in POOL if e.type_name == "user"})
# The oracle's name of each facet.
ORACLE_FACET = {INTENTS: "intent", ACTIONS: "action", ENTITIES: "entity", POLICIES: "policy",
                INPUT_CHANNELS: "input_channel", SLOTS: "slot"}  # fmt: skip


def _event(**fields):
    return parse_event(json.dumps({"sender_id": "s", "timestamp": 1.0, **fields}).encode())


def test_the_captured_conversations_aggregate_to_what_the_oracle_computes():
    training_texts = set(TEXTS[::2])
    changes = aggregate(POOL, {text_hash(t) for t in training_texts})
    expected = expected_tables(MESSAGES, training_texts)

    conversations = {
        c.sender_id: {
            "rasa_environment": c.environment,
            "number_user_messages": c.user_messages,
            "latest_input_channel": c.channel,
            "first_event_time": c.first_time,
            "latest_event_time": c.latest_time,
            "minimum_action_confidence": c.min_action,
            "maximum_action_confidence": c.max_action,
            "minimum_intent_confidence": c.min_intent,
            "maximum_intent_confidence": c.max_intent,
            "in_training_data": c.in_training_data,
        }
        for c in changes.conversations
    }
    assert conversations == expected["conversations"]
    assert {ORACLE_FACET[facet]: set(rows) for facet, rows in changes.facet_rows.items()} == expected["facets"]
    # The oracle's counters: user messages, bot messages, events.
    assert [c.column for c in COUNTERS] == ["total_user_messages", "total_bot_messages", "total_events"]
    totals = defaultdict(lambda: (0, 0, 0))
    for s in changes.statistics:
        totals[s.environment] = tuple(map(sum, zip(totals[s.environment], s.counts)))
    assert dict(totals) == expected["statistics"]
    starts = {(sender, start) for sender, start in expected["sessions"]}
    assert {(sender, start) for sender, start, _ in changes.session_starts} == starts
    first_event = {sender: c["first_event_time"] for sender, c in expected["conversations"].items()}
    assert dict(changes.earliest) == first_event


def test_every_list_is_sorted_in_the_stores_lock_order():
    changes = aggregate(reversed(POOL), set())
    senders = [c.sender_id for c in changes.conversations]
    assert senders == sorted(senders) and len(senders) == len(set(senders))
    shards = [(s.environment, s.shard) for s in changes.statistics]
    assert shards == sorted(shards)
    assert all(rows == sorted(rows) for rows in changes.facet_rows.values())
    keys = [e.dedupe_key for e in unique_events(reversed(POOL))]
    assert keys == sorted(keys)


def test_one_event_per_dedupe_key_and_the_first_arrival_wins():
    first = parse_event(POOL[0].data.encode(), "worker")
    again = parse_event(POOL[0].data.encode(), "production")
    assert first.dedupe_key == again.dedupe_key  # the environment is not the event's content
    assert unique_events([first, again]) == [first]
    assert aggregate([first, again, first], set()).statistics[0].counts[COUNTERS.index(EVENTS)] == 1


def test_a_slot_value_too_large_for_the_facet_index_gives_no_facet_row():
    small = _event(event="slot", name="city", value="x" * 10)
    large = _event(event="slot", name="notes", value="x" * MAX_SLOT_FACET, timestamp=2.0)
    assert aggregate([small, large], set()).facet_rows == {SLOTS: [("s", "city", json.dumps("x" * 10))]}


def test_two_session_starts_at_one_time_keep_the_first_environment_in_sort_order():
    def start(environment: str, marker: int):
        body = {"sender_id": "s", "event": "session_started", "timestamp": 5.0, "metadata": {"n": marker}}
        return parse_event(json.dumps(body).encode(), environment)

    production = start("production", 0)
    # Bodies that differ are two starts; the worker's comes first in key order, so the rule,
    # not the key order, decides.
    worker = next(event for event in map(lambda n: start("worker", n), range(1, 100)) if event.dedupe_key < production.dedupe_key)
    for order in ([worker, production], [production, worker]):
        assert aggregate(order, set()).session_starts == [("s", 5.0, "production")]


def test_of_first_events_at_one_time_the_first_environment_in_sort_order_is_the_conversations():
    production = parse_event(json.dumps({"sender_id": "s", "event": "user", "timestamp": 1.0}).encode(), "production")
    # A worker event that comes first in key order, so the rule, not the key order, decides.
    worker = next(
        event
        for event in (
            parse_event(json.dumps({"sender_id": "s", "event": "bot", "timestamp": 1.0, "text": str(i)}).encode(), "worker")
            for i in range(100)
        )
        if event.dedupe_key < production.dedupe_key
    )
    for order in ([worker, production], [production, worker]):
        assert aggregate(order, set()).conversations[0].environment == "production"


def test_a_conversation_is_in_the_training_data_only_when_every_user_message_is():
    hi, bye = _event(event="user", text="hi"), _event(event="user", text="bye", timestamp=2.0)
    assert aggregate([hi, bye], {text_hash("hi"), text_hash("bye")}).conversations[0].in_training_data
    assert not aggregate([hi, bye], {text_hash("hi")}).conversations[0].in_training_data


@st.composite
def batch_and_redelivery(draw):
    """A batch of pool events, and the same events in another order with some repeated."""
    batch = draw(st.lists(st.sampled_from(POOL), min_size=1, max_size=80))
    repeated = draw(st.lists(st.sampled_from(batch), max_size=40))
    redelivered = draw(st.permutations(batch + repeated))
    trained = draw(st.sets(st.sampled_from([text_hash(t) for t in TEXTS])))
    return batch, redelivered, trained


@settings(max_examples=300, deadline=None)
@given(batch_and_redelivery())
def test_any_order_and_any_duplication_gives_the_same_derived_rows(case):
    batch, redelivered, trained = case
    assert aggregate(redelivered, trained) == aggregate(batch, trained)
