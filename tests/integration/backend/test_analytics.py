"""GET /api/statistics/analytics over conversations the real event service stored: every figure
is compared with what was published, and each chart's link (the conversation list filtered by
the same range, intent or action) counts the same conversations."""

from __future__ import annotations

import json
from collections import Counter, defaultdict

import pytest

from .conftest import bearer
from .model import conversation_as

DAY = 86400
DAY0 = 11574 * DAY  # 2001-09-09 00:00 UTC: nothing else the tests store is that old
END = DAY0 + 3 * DAY - 0.001  # the list's `until` is inclusive: the last millisecond of day 3
ORIGINALS = ("alice", "bob", "carol", "dave")


def _shifted(original: str, sender: str, first_event_at: float, edit=None) -> list[tuple[str, str | None]]:
    first = min(json.loads(body)["timestamp"] for body, _ in conversation_as(original, sender, 0.0))
    return conversation_as(original, sender, first_event_at - first, edit)


def _fallback(event):
    # The bot did not understand the first message: Rasa's FallbackClassifier and core fallback.
    if event["event"] == "user" and event["parse_data"]["intent"]["name"] == "greet":
        event["parse_data"]["intent"] = {"name": "nlu_fallback", "confidence": 0.3}
    if event["event"] == "action" and event["name"] == "utter_greet":
        event["name"] = "action_default_fallback"


@pytest.fixture(scope="module")
def published(event_service, app, tokens):
    messages = []
    for day in range(3):
        for i, original in enumerate(ORIGINALS[: day + 2]):
            edit = _fallback if (day, original) in ((0, "bob"), (2, "alice")) else None
            messages += _shifted(original, f"analytics-{day}-{original}", DAY0 + day * DAY + 3600 + 600 * i, edit)
    # One user back the next day: a second session of the same conversation (not a new user).
    messages += _shifted("alice", "analytics-0-alice", DAY0 + DAY + 7200)
    event_service.publish_and_wait(messages)
    events = [json.loads(body) for body, _ in messages]
    yield events
    # The database is the session's: later modules count every conversation in it.
    client = app.test_client()
    for sender in sorted({e["sender_id"] for e in events}):
        assert client.delete(f"/api/conversations/{sender}", headers=bearer(tokens["admin"])).status_code == 204


def _expected(events: list[dict], bucket: int) -> dict:
    by_sender = defaultdict(list)
    for event in events:
        by_sender[event["sender_id"]].append(event)
    series = defaultdict(Counter)
    intents, actions = Counter(), Counter()
    for sender, evs in by_sender.items():
        key = int(max(e["timestamp"] for e in evs) // bucket * bucket)
        series[key]["conversations"] += 1
        names = {e["parse_data"]["intent"]["name"] for e in evs if e["event"] == "user"}
        acts = {e["name"] for e in evs if e["event"] == "action"}
        series[key]["fallback_conversations"] += "nlu_fallback" in names or "action_default_fallback" in acts
        intents.update(names)
        actions.update(acts - {"action_listen", "action_session_start"})
        starts = sorted(e["timestamp"] for e in evs if e["event"] == "session_started")
        users_in = set()
        for n, start in enumerate(starts):
            key = int(start // bucket * bucket)
            series[key]["sessions"] += 1
            series[key]["new_users"] += n == 0
            if key not in users_in:
                users_in.add(key)
                series[key]["users"] += 1
    top = lambda c: [{"name": n, "conversations": k} for n, k in sorted(c.items(), key=lambda x: (-x[1], x[0]))[:10]]
    return {"series": series, "top_intents": top(intents), "top_actions": top(actions),
            "users": len({e["sender_id"] for e in events if e["event"] == "session_started"})}


def _analytics(client, admin, **query):
    response = client.get("/api/statistics/analytics", query_string=query, headers=admin)
    assert response.status_code == 200, response.json
    return response.json


def _total(client, admin, **query) -> int:
    response = client.get("/api/conversations", query_string={**query, "limit": 1}, headers=admin)
    assert response.status_code == 200, response.json
    return int(response.headers["X-Total-Count"])


def test_daily_figures_are_what_was_published(client, admin, published):
    expected = _expected(published, DAY)
    result = _analytics(client, admin, **{"from": DAY0, "to": END, "bucket": "day"})
    assert (result["from"], result["to"], result["bucket"]) == (DAY0, END, "day")
    assert [(b["start"], b["end"]) for b in result["series"]] == [(DAY0, DAY0 + DAY), (DAY0 + DAY, DAY0 + 2 * DAY), (DAY0 + 2 * DAY, END)]
    figures = ("conversations", "fallback_conversations", "sessions", "users", "new_users")
    for b in result["series"]:
        assert {f: b[f] for f in figures} == {f: expected["series"][int(b["start"])][f] for f in figures}, b
    # The data makes each figure tell something: conversations on every day, a returning user.
    assert [b["conversations"] for b in result["series"]] == [1, 4, 4]  # analytics-0-alice last active on day 2
    assert result["series"][1]["sessions"] > result["series"][1]["new_users"]
    totals = result["totals"]
    assert totals["conversations"] == 9 and totals["fallback_conversations"] == 2 and totals["fallback_rate"] == 2 / 9
    assert totals["sessions"] == sum(b["sessions"] for b in result["series"]) == sum(
        e["event"] == "session_started" for e in published)
    assert totals["users"] == expected["users"] == 9 and totals["new_users"] == 9
    assert result["top_intents"] == expected["top_intents"] and result["top_actions"] == expected["top_actions"]
    assert result["fallback"] == {"intent": "nlu_fallback", "action": "action_default_fallback"}


def test_each_chart_links_to_a_list_of_the_same_conversations(client, admin, published):
    result = _analytics(client, admin, **{"from": DAY0, "to": END, "bucket": "day"})
    for b in result["series"]:
        # The UI links a bucket to start=<start>&until=<end - 1 ms> (until is inclusive).
        until = b["end"] if b["end"] == END else b["end"] - 0.001
        assert _total(client, admin, start=b["start"], until=until) == b["conversations"]
    for top, parameter in (("top_intents", "intent"), ("top_actions", "action")):
        for line in result[top]:
            assert _total(client, admin, start=DAY0, until=END, **{parameter: line["name"]}) == line["conversations"], line
    # Both fallback conversations hold both of Rasa's fallbacks (see _fallback).
    fallbacks = result["totals"]["fallback_conversations"]
    assert _total(client, admin, start=DAY0, until=END, intent="nlu_fallback") == fallbacks == 2
    assert _total(client, admin, start=DAY0, until=END, action="action_default_fallback") == fallbacks


def test_hourly_and_weekly_buckets_add_up_to_the_same_totals(client, admin, published):
    daily = _analytics(client, admin, **{"from": DAY0, "to": END, "bucket": "day"})
    for bucket, seconds in (("hour", 3600), ("week", 7 * DAY)):
        result = _analytics(client, admin, **{"from": DAY0, "to": END, "bucket": bucket})
        # Weeks begin on Monday (ISO), and 2001-09-09 was a Sunday: the range spans two weeks.
        assert len(result["series"]) == (72 if bucket == "hour" else 2)
        if bucket == "week":
            assert result["series"][0]["end"] == result["series"][1]["start"] == DAY0 + DAY
        assert all(b["end"] - b["start"] <= seconds for b in result["series"])
        for figure in ("conversations", "sessions", "new_users", "fallback_conversations"):
            assert sum(b[figure] for b in result["series"]) == daily["totals"][figure]
        assert result["totals"] == daily["totals"]


def test_an_empty_range_has_zero_buckets_and_no_rate(client, admin, published):
    result = _analytics(client, admin, **{"from": DAY0 - 2 * DAY, "to": DAY0 - 0.001})
    assert [b["conversations"] for b in result["series"]] == [0, 0]
    assert result["totals"]["fallback_rate"] is None and result["top_intents"] == []


@pytest.mark.parametrize("query", [{"bucket": "month"}, {"from": "yesterday"}, {"from": DAY0, "to": DAY0},
                                   {"from": DAY0, "to": DAY0 + 200 * DAY, "bucket": "hour"}, {"to": "inf"}])
def test_bad_ranges_are_400(client, admin, query):
    response = client.get("/api/statistics/analytics", query_string=query, headers=admin)
    assert response.status_code == 400 and response.json["message"], response.json
