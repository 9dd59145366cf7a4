"""X-Total-Count stays exact while events keep arriving, and is not recounted when they only
touch recent conversations (services/backend/conversation_total.py).

A hot side of 3 conversations makes the fixture conversations mostly cold. Every total is
checked against the number of conversations the list itself returns and a plain count(*).
"""

from __future__ import annotations

import secrets
import uuid

import pytest
import sqlalchemy as sa

from services.backend import conversation_total
from services.backend.conversation_total import _aspects
from services.backend.conversation_query import ConversationFilter, count_conversations

from services.event_service.aggregate import statistic_shard

from .model import conversation_as

QUERIES = {
    "": ConversationFilter(),
    "intent=mood_great": ConversationFilter(intents=["mood_great"]),
    "intent=late_intent": ConversationFilter(intents=["late_intent"]),
    "rasa_environment=worker": ConversationFilter(rasa_environments=["worker"]),
}
NEW, OLD_A, OLD_B, IMPORTED = "total-new", "total-old-a", "total-old-b", "total-imported"


def _bob_as(sender: str, shift: float) -> list[tuple[str, str | None]]:
    return conversation_as("bob", sender, shift)


@pytest.fixture
def total_app(settings, stored_events, monkeypatch):
    from services.backend import create_app

    monkeypatch.setattr(conversation_total, "HOT_SIZE", 3)
    return create_app(settings, cache_prefix=f"rasax-test-{uuid.uuid4().hex[:8]}")


def _check_totals(client, admin, db_engine) -> dict[str, int]:
    totals = {}
    for query, f in QUERIES.items():
        response = client.get(f"/api/conversations?{query}&limit=1000", headers=admin)
        assert response.status_code == 200, response.json
        with db_engine.connect() as connection:
            counted = count_conversations(connection, f)
        total = int(response.headers["X-Total-Count"])
        assert total == len(response.json) == counted, (query, total, len(response.json), counted)
        totals[query] = total
    return totals


def _entries(app) -> dict[str, dict]:
    cache = app.extensions["rasax"].cache
    return {query: cache.read("conversation_count", f.count_key(), _aspects(f))[1] for query, f in QUERIES.items()}


def _cold_sides(entries: dict[str, dict]) -> dict[str, tuple]:
    return {query: (entry["cut"], entry["cold"]) for query, entry in entries.items()}


def test_totals_stay_exact_and_survive_events_for_recent_conversations(total_app, admin, event_service, db_engine):
    app, client = total_app, total_app.test_client()
    event_service.publish_and_wait(_bob_as(OLD_A, -1e6) + _bob_as(OLD_B, -1e6 + 10))
    try:
        _run(client, admin, app, event_service, db_engine)
    finally:
        for sender in (NEW, OLD_A, OLD_B, IMPORTED):
            client.delete(f"/api/conversations/{sender}", headers=admin)


def _run(client, admin, app, event_service, db_engine):
    base = _check_totals(client, admin, db_engine)
    entries = _entries(app)
    assert all(entry and entry["cold"] > 0 for query, entry in entries.items() if base[query] > 3)

    # A new conversation, in two parts: the second brings the intent mood_great.
    new = _bob_as(NEW, 400_000)
    split = next(i for i, (body, _) in enumerate(new) if '"mood_great"' in body)
    event_service.publish_and_wait(new[:split])
    totals = _check_totals(client, admin, db_engine)
    assert totals == {**base, "": base[""] + 1}
    event_service.publish_and_wait(new[split:])
    totals = _check_totals(client, admin, db_engine)
    assert totals == {**base, "": base[""] + 1, "intent=mood_great": base["intent=mood_great"] + 1}
    # Only the hot side was counted again: the cold counts stand, with the cut they were made at
    # (a full count would have cut later: NEW is now the most recent conversation).
    assert _cold_sides(_entries(app)) == _cold_sides(entries)

    # A cold conversation that comes back to life leaves the cold side: counted afresh.
    event_service.publish_and_wait(_bob_as(OLD_A, 500_000)[-3:])
    assert _check_totals(client, admin, db_engine) == totals
    assert _entries(app)[""]["cut"] > entries[""]["cut"]

    # A conversation that arrives with old timestamps joins the cold side: counted too.
    event_service.publish_and_wait(_bob_as(IMPORTED, -2e6))
    totals = _check_totals(client, admin, db_engine)
    assert totals[""] == base[""] + 2 and totals["intent=mood_great"] == base["intent=mood_great"] + 2

    # An event of a cold conversation that commits after a newer one (its id is lower than
    # ids the cache has seen) is not missed.
    late = db_engine.connect()
    transaction = late.begin()
    late.execute(
        sa.text(
            "INSERT INTO conversation_event (conversation_id, type_name, timestamp, intent_name, data, rasa_environment, dedupe_key) "
            "VALUES (:s, 'user', 1.0, 'late_intent', '{}', 'production', :k)"
        ),
        {"s": OLD_B, "k": secrets.token_bytes(16)},
    )
    late.execute(sa.text("INSERT INTO conversation_intent_metadata VALUES (:s, 'late_intent')"), {"s": OLD_B})
    # A counter row of its own, so the event service never waits for this open transaction.
    late.execute(
        sa.text("INSERT INTO conversation_statistic AS s (rasa_environment, shard, total_user_messages, total_events) "
                "VALUES ('production', :shard, 1, 1) ON CONFLICT (rasa_environment, shard) DO UPDATE "
                "SET total_user_messages = s.total_user_messages + 1, total_events = s.total_events + 1"),
        {"shard": (statistic_shard(NEW) + 1) % 16},
    )  # fmt: skip
    try:
        event_service.publish_and_wait(_bob_as(NEW, 600_000)[-2:])
        app.extensions["rasax"].cache.invalidate("conversations")  # entries made now: above the late id
        assert _check_totals(client, admin, db_engine)["intent=late_intent"] == 0
        transaction.commit()
    finally:
        late.close()
    totals = _check_totals(client, admin, db_engine)
    assert totals["intent=late_intent"] == 1

    # The backend's own changes show at once; the totals that do not depend on them stand.
    before = _cold_sides(_entries(app))
    response = client.put(f"/api/conversations/{OLD_B}/reviewStatus", json={"review_status": "saved_for_later"}, headers=admin)
    assert response.status_code == 200
    listed = client.get("/api/conversations?review_status=saved_for_later&limit=1000", headers=admin)
    assert OLD_B in {c["sender_id"] for c in listed.json}
    assert int(listed.headers["X-Total-Count"]) == len(listed.json)
    assert _check_totals(client, admin, db_engine) == totals
    assert _cold_sides(_entries(app)) == before
    client.put(f"/api/conversations/{OLD_B}/reviewStatus", json={"review_status": "unread"}, headers=admin)
    assert int(client.get("/api/conversations?review_status=saved_for_later", headers=admin).headers["X-Total-Count"]) == (
        int(listed.headers["X-Total-Count"]) - 1
    )
    assert client.delete(f"/api/conversations/{IMPORTED}", headers=admin).status_code == 204
    assert _check_totals(client, admin, db_engine)[""] == totals[""] - 1
