"""Paging a conversation's events newest first (GET /api/conversations/<id>?events_limit= and
.../events?before=), over events stored by the real event service."""

from __future__ import annotations

from urllib.parse import quote

from .model import conversation_as

SENDER = "paging/visitor 1"  # a '/' and a space: the id travels encoded


def _all_events(client, admin) -> list[dict]:
    response = client.get(f"/api/conversations/{quote(SENDER, safe='')}", headers=admin)
    assert response.status_code == 200, response.json
    assert response.json["events_earlier"] is None
    return response.json["events"]


def test_pages_walk_back_to_the_first_event_and_new_events_shift_nothing(client, admin, event_service):
    event_service.publish_and_wait([m for k in range(3) for m in conversation_as("bob", SENDER, 5e5 + 100.0 * k)])
    events = _all_events(client, admin)
    assert len(events) > 30
    base = f"/api/conversations/{quote(SENDER, safe='')}"

    first = client.get(f"{base}?events_limit=7", headers=admin).json
    assert first["events"] == events[-7:] and first["events_earlier"]
    assert first["n_user_messages"] > 0  # the summary is unchanged
    walked, cursor = first["events"], first["events_earlier"]
    # Newer events arrive during the walk: the pages before the cursor stay the same.
    event_service.publish_and_wait(conversation_as("bob", SENDER, 6e5))
    while cursor:
        page = client.get(f"{base}/events", query_string={"before": cursor, "limit": 7}, headers=admin)
        assert page.status_code == 200, page.json
        assert 0 < len(page.json["events"]) <= 7
        walked, cursor = page.json["events"] + walked, page.json["earlier"]
    assert walked == events

    now = _all_events(client, admin)
    assert len(now) > len(events)
    newest = client.get(f"{base}/events?limit=5", headers=admin).json
    assert newest["events"] == now[-5:] and newest["earlier"]
    assert client.get(f"{base}/events?limit=5000", headers=admin).json == {"events": now, "earlier": None}


def test_bad_paging_is_a_400_and_an_unknown_conversation_a_404(client, admin):
    base = f"/api/conversations/{quote(SENDER, safe='')}"
    for query in ("before=yesterday", "before=12.5", "before=12.5:x", "before=nan:3", "limit=0", "limit=5001", "limit=ten"):
        response = client.get(f"{base}/events?{query}", headers=admin)
        assert response.status_code == 400, (query, response.json)
        assert response.json["message"]
    assert client.get(f"{base}?events_limit=0", headers=admin).status_code == 400
    assert client.get("/api/conversations/nobody-at-all/events", headers=admin).status_code == 404
