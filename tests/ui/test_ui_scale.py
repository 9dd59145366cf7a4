"""The UI at scale: the first page of 100,000 conversations, timed in the browser (target under
1 s; the figure is printed), and a conversation of 2,000+ events that opens at its newest turn.

The 100k conversations are written with bench/api.py's SQL generator (rows as the event service
stores them, 4 events each) into a database of this module, served by a second rasa-x.
"""

from __future__ import annotations

import time

import pytest
import requests
from playwright.sync_api import expect

from services.common.config import database_settings
from services.common.db import create_engine
from services.db_migration.migrator import COMPLETED, Migrator
from tests.conftest import create_database, db_env, drop_database
from tests.integration.backend.model import conversation_as

from tests.integration.backend.serving import serving

from .conftest import api_session, log_in, screenshot

LARGE = 100_000
FIRST_PAGE_TARGET = 1.0  # seconds, the target; the assertion leaves room for a loaded machine
ANALYTICS_TARGET = 2.0  # seconds for the analytics of all 100k conversations, computed (not cached)


@pytest.fixture(scope="module")
def large_server(backend_env, ui_dist):
    from bench.api import generate

    name = create_database("rasax_ui_100k")
    engine = create_engine(database_settings(db_env(name)))
    try:
        assert Migrator(engine).run().status == COMPLETED
        started = time.monotonic()
        generate(engine, LARGE, 4)
        print(f"\n  {LARGE:,} conversations generated in {time.monotonic() - started:.0f} s")
        # Its own Redis db: the cache's keys must not meet the other server's.
        with serving({**backend_env, **db_env(name), "REDIS_DB": "1"}, "rasa-x-100k") as served:
            url = served.url
            yield url
    finally:
        engine.dispose()
        drop_database(name)


def test_first_page_of_100k_conversations(browser, large_server, accounts):
    context = browser.new_context(base_url=large_server, viewport={"width": 1280, "height": 800})
    page = context.new_page()
    try:
        log_in(page, *accounts["admin"])
        page.goto("/account")
        rows = page.get_by_role("table").get_by_role("rowheader")
        timings = []
        for _ in range(3):  # the first load fills the server's cache; the median is reported
            page.goto("/account")
            expect(page.get_by_role("heading", name="Account")).to_be_visible()
            started = time.monotonic()
            page.get_by_role("navigation", name="Main").get_by_role("link", name="Conversations").click()
            expect(page.locator("p.total")).to_have_text(f"{LARGE:,} conversations")
            expect(rows).to_have_count(20)
            timings.append(time.monotonic() - started)
        first, median = timings[0], sorted(timings)[1]
        print(f"\n  first page of {LARGE:,} conversations in the browser: {first * 1000:.0f} ms cold, "
              f"{median * 1000:.0f} ms median of 3 (target {FIRST_PAGE_TARGET * 1000:.0f} ms)")
        newest = requests.get(f"{large_server}/api/conversations?limit=20", timeout=10,
                              headers={"Authorization": f"Bearer {page.evaluate('sessionStorage.getItem(`rasax.token`)')}"}).json()
        expect(rows).to_have_text([c["sender_id"] for c in newest])
        assert median < 3 * FIRST_PAGE_TARGET, timings
        page.get_by_role("button", name="Next page").click()
        expect(page.get_by_text(f"Page 2 of {LARGE // 20:,}".replace(",", ""))).to_be_visible()
    finally:
        context.close()


def test_analytics_of_100k_conversations(large_server, accounts):
    # bench/api.py's conversations: number i (from 1) at 1.7e9 + 60 i (2023-11-14 on), four events each.
    http = api_session(large_server, *accounts["admin"])
    query = {"from": 1.7e9, "to": 1.7e9 + (LARGE + 1) * 60, "bucket": "day"}
    timings = []
    for _ in range(2):  # computed, then from the cache
        started = time.monotonic()
        response = http.get(f"{large_server}/api/statistics/analytics", params=query, timeout=60)
        timings.append(time.monotonic() - started)
        assert response.status_code == 200, response.text
    data = response.json()
    print(f"\n  analytics of {LARGE:,} conversations, {len(data['series'])} days: {timings[0] * 1000:.0f} ms computed, "
          f"{timings[1] * 1000:.0f} ms cached (target {ANALYTICS_TARGET * 1000:.0f} ms)")
    assert data["totals"]["conversations"] == sum(b["conversations"] for b in data["series"]) == LARGE
    assert len(data["series"]) == int(query["to"] // 86400) - int(query["from"] // 86400) + 1
    top = data["top_intents"][0]
    listed = http.get(f"{large_server}/api/conversations", timeout=30,
                      params={"intent": top["name"], "start": query["from"], "until": query["to"], "limit": 1})
    assert int(listed.headers["X-Total-Count"]) == top["conversations"]
    assert timings[0] < 3 * ANALYTICS_TARGET, timings


def test_a_conversation_of_2000_events_opens_at_its_newest_turn(page, accounts, event_service, admin_api, server):
    sender = "ui-long-conversation"
    # bob's captured conversation 160 times over as one sender, each copy 100 s after the last.
    messages = [m for k in range(160) for m in conversation_as("bob", sender, -1e6 + 100.0 * k)]
    event_service.publish_and_wait(messages)
    events = admin_api.get(f"{server}/api/conversations/{sender}", timeout=30).json()["events"]
    assert len(events) >= 2000

    log_in(page, *accounts["admin"])
    started = time.monotonic()
    page.goto(f"/conversations/{sender}")
    turns = page.get_by_role("list", name="Events")
    last_user = page.locator("li.turn.user").last
    expect(last_user).to_be_in_viewport()
    print(f"\n  a conversation of {len(events):,} events opened at its newest turn in {(time.monotonic() - started) * 1000:.0f} ms")
    newest_text = [e for e in events if e["event"] == "user"][-1]["text"]
    expect(last_user.locator("p.text")).to_have_text(newest_text)
    expect(page.locator("li.turn.user").first).not_to_be_in_viewport()
    expect(turns.locator("> li").last).to_be_in_viewport()
    assert turns.evaluate("e => e.scrollHeight > 3 * e.clientHeight")  # the rest is above, a scroll away
    screenshot(page, "conversation-long")

    # Only the newest page is read at first; scrolling up reads the pages before it, keeping the
    # turn that was at the top where it was, until the first event of the conversation is shown.
    user_texts = [e["text"] for e in events if e["event"] == "user"]
    user_turns = page.locator("li.turn.user p.text")
    shown = user_turns.count()
    assert 0 < shown < len(user_texts) and user_turns.all_inner_texts() == user_texts[-shown:]
    pages = 0
    while page.locator("li.earlier").count():
        turns.evaluate("e => { e.scrollTop = 0 }")
        page.wait_for_function("n => document.querySelectorAll('li.turn.user').length > n", arg=shown)
        added = user_turns.count() - shown
        expect(user_turns.nth(added)).to_be_in_viewport()  # the turn that was at the top
        expect(user_turns.first).not_to_be_in_viewport()
        shown, pages = shown + added, pages + 1
    assert pages >= 5, "a page at a time"
    assert user_turns.all_inner_texts() == user_texts
