"""Per-conversation routes for any sender id, and a health probe that does not re-read the
migration scripts."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest

from .test_total import _bob_as

SENDERS = ["user/with/slashes", "tags", "slotNames"]


@pytest.fixture(scope="module")
def odd_senders(event_service, stored_events):
    event_service.publish_and_wait([m for i, s in enumerate(SENDERS) for m in _bob_as(s, 700_000 + i)])
    return SENDERS


@pytest.mark.parametrize("sender", SENDERS)
@pytest.mark.parametrize("encode", [True, False], ids=["encoded", "raw"])
def test_every_per_conversation_route_takes_any_sender_id(client, admin, odd_senders, sender, encode):
    path = f"/api/conversations/{quote(sender, safe='') if encode else sender}"
    tracker = client.get(f"{path}/tracker", headers=admin)
    assert tracker.status_code == 200 and tracker.json["sender_id"] == sender
    messages = client.get(f"{path}/messages", headers=admin)
    assert messages.status_code == 200 and messages.json["sender_id"] == sender
    user = next(m for m in messages.json["messages"] if m["type"] == "user")

    flagged = client.put(f"{path}/messages/{user['timestamp']}/flag", headers=admin)
    assert flagged.status_code == 200 and flagged.json["sender_id"] == sender
    assert client.delete(f"{path}/messages/{user['timestamp']}/flag", headers=admin).status_code == 200
    review = client.put(f"{path}/reviewStatus", json={"review_status": "saved_for_later"}, headers=admin)
    assert review.status_code == 200 and review.json["sender_id"] == sender
    client.put(f"{path}/reviewStatus", json={"review_status": "unread"}, headers=admin)

    added = client.post(f"{path}/tags", json=[{"value": "odd-sender", "color": "#123456"}], headers=admin)
    assert added.status_code in (200, 201), added.json
    tags = client.get(f"{path}/tags", headers=admin).json
    tag_id = next(t["id"] for t in tags if t["value"] == "odd-sender")
    assert client.delete(f"{path}/tags/{tag_id}", headers=admin).status_code == 204
    assert all(t["value"] != "odd-sender" for t in client.get(f"{path}/tags", headers=admin).json)

    if sender in ("tags", "slotNames"):
        # The fixed names keep their meaning for a plain GET: the tag list, the slot names.
        assert isinstance(client.get(path, headers=admin).json, list)
    else:
        one = client.get(path, headers=admin)
        assert one.status_code == 200 and one.json["sender_id"] == sender


def test_deleting_conversations_with_odd_sender_ids(client, admin, odd_senders):
    for sender in odd_senders:
        assert client.delete(f"/api/conversations/{quote(sender, safe='')}", headers=admin).status_code == 204
        assert client.get(f"/api/conversations/{quote(sender, safe='')}/tracker", headers=admin).status_code == 404
    listed = {c["sender_id"] for c in client.get("/api/conversations?limit=1000", headers=admin).json}
    assert not listed & set(odd_senders)


def test_health_does_not_read_the_migration_scripts_on_each_probe(client, monkeypatch):
    from alembic.script import ScriptDirectory

    def unreadable(*args, **kwargs):
        raise AssertionError("the migration scripts were read during a health probe")

    monkeypatch.setattr(ScriptDirectory, "from_config", unreadable)
    response = client.get("/api/health")
    assert response.status_code == 200, response.json
    migration = response.json["database"]["migration"]
    assert migration["status"] == "completed" and migration["current_revision"] == migration["target_revision"]
    assert json.loads(response.data)["status"] == "ok"
