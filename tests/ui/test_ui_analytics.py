"""The Analytics page in Chromium: the period's totals, conversations, users, sessions and
fallback rate over time and the top intents and actions, as GET /api/statistics/analytics gives
them; a chart's bar and a top intent open the conversation list of the same conversations."""

from __future__ import annotations

import re
import time
from datetime import datetime, timezone
from urllib.parse import parse_qs, urlsplit

from playwright.sync_api import expect

from .conftest import log_in, screenshot

DAY = 86400


def _range(days: int) -> tuple[float, float]:
    """The page's period: whole UTC days ending today (frontend/src/pages/analytics.tsx range)."""
    today = int(time.time() // DAY * DAY)
    return today - (days - 1) * DAY, today + DAY - 0.001


def _analytics(api, server, days: int, bucket: str) -> dict:
    start, end = _range(days)
    response = api.get(f"{server}/api/statistics/analytics", params={"from": start, "to": end, "bucket": bucket}, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def _listed(api, server, query: dict) -> int:
    response = api.get(f"{server}/api/conversations", params={**query, "limit": 1}, timeout=30)
    return int(response.headers["X-Total-Count"])


def _total_text(n: int) -> str:
    return f"{n:,} conversation{'' if n == 1 else 's'}"


def test_analytics_shows_the_apis_figures_and_links_to_the_conversations(page, accounts, admin_api, server, conversations):
    log_in(page, *accounts["admin"])
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Analytics").click()
    expect(page.get_by_role("heading", name="Analytics")).to_be_visible()
    data = _analytics(admin_api, server, 30, "day")
    totals = data["totals"]
    # The UI tests' conversations are of the last 30 days (some may have been deleted by then).
    assert totals["conversations"] > len(conversations) // 2
    assert totals["conversations"] == _listed(admin_api, server, {"start": data["from"], "until": data["to"]})

    figures = page.get_by_role("definition")
    expect(figures).to_have_text([str(totals["conversations"]), str(totals["users"]), str(totals["new_users"]),
                                  str(totals["sessions"]),
                                  "—" if totals["fallback_rate"] is None else f"{round(totals['fallback_rate'] * 100)}%"])
    chart = page.get_by_role("group", name="Conversations by their latest message")
    bars = chart.get_by_role("link")
    expect(bars).to_have_count(len(data["series"]))
    shown = [int(v) for v in chart.locator("rect[data-value]").evaluate_all("rs => rs.map(r => r.dataset.value)")]
    assert shown == [b["conversations"] for b in data["series"]]
    expect(page.get_by_role("group", name="Top intents").get_by_role("link")).to_have_count(len(data["top_intents"]))
    screenshot(page, "analytics")

    # The busiest day's bar opens the list of that day's conversations: the same number.
    busiest = max(data["series"], key=lambda b: b["conversations"])
    day = datetime.fromtimestamp(busiest["start"], timezone.utc).strftime("%Y-%m-%d")
    chart.get_by_role("link", name=f"{day}: {busiest['conversations']} conversations").click()
    expect(page.locator("p.total")).to_have_text(_total_text(busiest["conversations"]))
    query = {k: v[0] for k, v in parse_qs(urlsplit(page.url).query).items()}
    assert urlsplit(page.url).path == "/conversations" and float(query["start"]) == busiest["start"]
    assert _listed(admin_api, server, query) == busiest["conversations"]

    # The top intent opens the conversations holding it, in the same period.
    page.go_back()
    top = data["top_intents"][0]
    page.get_by_role("group", name="Top intents").get_by_role("link", name=f"{top['name']}: {top['conversations']} conversations").click()
    expect(page.locator("p.total")).to_have_text(_total_text(top["conversations"]))
    expect(page.get_by_role("list", name="Active filters").get_by_text(f"Intent: {top['name']}")).to_be_visible()
    query = {k: v[0] for k, v in parse_qs(urlsplit(page.url).query).items()}
    assert query["intent"] == top["name"] and _listed(admin_api, server, query) == top["conversations"]


def test_the_period_and_bucket_are_in_the_url(page, accounts, admin_api, server, conversations):
    log_in(page, *accounts["admin"])
    page.goto("/analytics")
    page.get_by_role("button", name="Last 7 days").click()
    page.get_by_role("combobox", name=re.compile("^Bars per")).select_option("hour")
    expect(page).to_have_url(re.compile(r"/analytics\?days=7&bucket=hour$"))
    data = _analytics(admin_api, server, 7, "hour")
    assert len(data["series"]) == 7 * 24
    chart = page.get_by_role("group", name="Users and sessions by when the session started")
    expect(chart.get_by_role("link")).to_have_count(7 * 24)
    sessions = chart.locator("rect[data-value]:nth-of-type(4)")  # after the hover area: users, new users, sessions
    assert [int(v) for v in sessions.evaluate_all("rs => rs.map(r => r.dataset.value)")] == [b["sessions"] for b in data["series"]]
    # 90 days by the hour would be more buckets than the API gives: the page goes by day instead.
    page.get_by_role("button", name="Last 90 days").click()
    expect(page).to_have_url(re.compile(r"/analytics\?days=90&bucket=day$"))
    expect(page.get_by_role("option", name="hour")).to_be_disabled()
    expect(page.get_by_role("group", name="Conversations by their latest message").get_by_role("link")).to_have_count(90)


def test_an_annotator_sees_analytics(page, accounts):
    log_in(page, *accounts["annotator"])
    page.goto("/analytics")
    expect(page.get_by_role("heading", name="Analytics")).to_be_visible()
    expect(page.get_by_role("group", name="Top actions")).to_be_visible()
