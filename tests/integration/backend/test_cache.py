"""The Redis cache: served from Redis, invalidated by new events and by review actions, and
the API keeps working, with the same answers, when Redis goes away."""

from __future__ import annotations

import copy
import json
import time
import uuid

import redis
import sqlalchemy as sa

from services.common.config import load_settings

from .conftest import PrivateRedis
from .model import _fixture

LATE = "late-arrival"


def _late_events() -> list[tuple[str, str | None]]:
    events = []
    for event, app_id in _fixture("rasa-3.6.21-pika-events.jsonl"):
        if event["sender_id"] == "bob":
            event = copy.deepcopy(event)
            event["sender_id"] = LATE
            event["timestamp"] += 300_000
            events.append((json.dumps(event), app_id))
    return events


def _by_id(client, headers, query="limit=1000"):
    response = client.get(f"/api/conversations?{query}", headers=headers)
    assert response.status_code == 200
    return {c["sender_id"]: c for c in response.json}


def test_reads_come_from_the_cache_until_events_or_review_actions_change_them(
    client, admin, app, event_service, db_engine, private_redis
):
    events = _late_events()
    users = [body for body, _ in events if json.loads(body)["event"] == "user"]
    split = next(i for i, (body, _) in enumerate(events) if body == users[-1])
    event_service.publish_and_wait(events[:split])
    first = _by_id(client, admin)[LATE]
    assert first["n_user_messages"] == len(users) - 1
    prefix = app.extensions["rasax"].cache.prefix
    stored = redis.Redis(port=private_redis.port, password=private_redis.password)
    assert stored.keys(f"{prefix}:conversations:*")
    counts_before = len(stored.keys(f"{prefix}:conversation_count:*"))
    pages = [_by_id(client, admin, f"intent=greet&limit=2&offset={o}&sort_by_latest_event_time={s}") for o, s in ((0, "true"), (2, "true"), (0, "false"))]
    assert len({frozenset(p) for p in pages}) == 3
    # Paging and re-sorting share one cached total.
    assert len(stored.keys(f"{prefix}:conversation_count:*")) == counts_before + 1

    # A change behind the backend's back is not seen: the answer comes from Redis...
    with db_engine.begin() as connection:
        connection.execute(sa.text("UPDATE conversation SET review_status = 'saved_for_later' WHERE sender_id = :s"), {"s": LATE})
    assert _by_id(client, admin)[LATE]["review_status"] == "unread"

    # ...until the event service stores a new event, which makes the entry outdated at once.
    statistics_before = client.get("/api/statistics", headers=admin).json
    event_service.publish_and_wait(events[split:])
    fresh = _by_id(client, admin)[LATE]
    assert fresh["n_user_messages"] == len(users)
    assert fresh["review_status"] == "saved_for_later"
    statistics_after = client.get("/api/statistics", headers=admin).json
    assert statistics_after["user_messages"] == statistics_before["user_messages"] + 1

    # The backend's own changes invalidate too.
    client.put(f"/api/conversations/{LATE}/reviewStatus", json={"review_status": "reviewed"}, headers=admin)
    assert _by_id(client, admin)[LATE]["review_status"] == "reviewed"
    assert _by_id(client, admin, "review_status=reviewed&limit=1000").keys() == {LATE}

    # Deleting the conversation takes it, its messages and its counts away.
    assert client.delete(f"/api/conversations/{LATE}", headers=admin).status_code == 204
    assert LATE not in _by_id(client, admin)
    assert client.get(f"/api/conversations/{LATE}", headers=admin).status_code == 404
    final = client.get("/api/statistics", headers=admin).json
    assert final["user_messages"] == statistics_after["user_messages"] - len(users)
    assert final["conversations"] == statistics_after["conversations"] - 1
    with db_engine.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM message_log WHERE conversation_id = :s"), {"s": LATE}).scalar() == 0
    assert client.delete(f"/api/conversations/{LATE}", headers=admin).status_code == 404


def test_the_api_works_without_redis(backend_env, stored_events, tokens):
    from services.backend import create_app

    own = PrivateRedis().start()
    try:
        settings = load_settings({**backend_env, "REDIS_PORT": str(own.port), "REDIS_PASSWORD": own.password})
        app = create_app(settings, cache_prefix=f"rasax-test-{uuid.uuid4().hex[:8]}")
        client = app.test_client()
        admin = {"Authorization": f"Bearer {tokens['admin']}"}
        with_cache = _by_id(client, admin)
        assert client.get("/api/health").json["cache"]["status"] == "ok"
        own.stop()

        started = time.monotonic()
        without = _by_id(client, admin)
        assert without == with_cache
        assert client.get("/api/statistics", headers=admin).status_code == 200
        assert client.get("/api/conversationIntents", headers=admin).status_code == 200
        sender = next(iter(without))
        response = client.put(f"/api/conversations/{sender}/reviewStatus", json={"review_status": "saved_for_later"}, headers=admin)
        assert response.status_code == 200
        assert _by_id(client, admin)[sender]["review_status"] == "saved_for_later"
        client.put(f"/api/conversations/{sender}/reviewStatus", json={"review_status": "unread"}, headers=admin)
        # Wrong passwords are still refused (the per-address counter lives in Redis; the per-user lock does not).
        assert client.post("/api/auth", json={"username": "admin", "password": "wrong-password"}).status_code == 401
        assert time.monotonic() - started < 2, "Redis being down must not make every request wait for a timeout"
        health = client.get("/api/health")
        assert health.status_code == 200 and health.json["cache"]["status"] == "unavailable"
    finally:
        own.close()


def test_a_database_outage_is_a_503_not_a_500(app, admin, monkeypatch):
    import sqlalchemy as sa

    ctx = app.extensions["rasax"]
    # A pool that can only reach a port nobody listens on: what the app sees while PostgreSQL restarts.
    url = ctx.engine.url.set(port=1)
    broken = sa.create_engine(url, connect_args={"connect_timeout": 1})
    monkeypatch.setattr(ctx, "engine", broken)
    try:
        response = app.test_client().get("/api/conversations?limit=1&intent=nothing-cached", headers=admin)
        assert response.status_code == 503 and response.json["reason"] == "database_unavailable"
        assert app.test_client().get("/api/health").status_code == 503
    finally:
        broken.dispose()
