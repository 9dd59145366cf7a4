"""Conversations: the list (exact total, filters as chips kept in the URL, pages) and one
conversation (turns, review status, tags, raw tracker, delete), each step checked in the API."""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, urlsplit

from playwright.sync_api import expect

from .conftest import log_in, screenshot


def _total(api, server, query: str = "") -> int:
    response = api.get(f"{server}/api/conversations?limit=1&{query}", timeout=10)
    assert response.status_code == 200, response.text
    return int(response.headers["X-Total-Count"])


def _expect_total(page, total: int) -> None:
    expect(page.locator("p.total")).to_have_text(f"{total:,} conversation{'' if total == 1 else 's'}")


def _query(page) -> dict[str, list[str]]:
    return parse_qs(urlsplit(page.url).query)


def _add_filter(page, label: str, value: str) -> None:
    page.get_by_label("Filter", exact=True).select_option(label=label)
    field = page.get_by_label("Value", exact=True)
    if field.evaluate("e => e.tagName") == "SELECT":
        field.select_option(label=value)
    else:
        field.fill(value)
    page.get_by_role("button", name="Add filter").click()


def test_list_total_filters_in_the_url_and_pages(page, accounts, admin_api, server, conversations):
    log_in(page, *accounts["admin"])
    page.goto("/conversations")
    everything = _total(admin_api, server)
    assert everything > 20  # the generated conversations fill more than one page
    _expect_total(page, everything)
    first_page = admin_api.get(f"{server}/api/conversations?limit=20", timeout=10).json()
    rows = page.get_by_role("table").get_by_role("rowheader")
    expect(rows).to_have_text([c["sender_id"] for c in first_page])
    screenshot(page, "conversations")

    # An intent some but not all conversations have, from the API's own facet list.
    intents = admin_api.get(f"{server}/api/conversationIntents", timeout=10).json()
    intent = min(intents, key=lambda i: _total(admin_api, server, f"intent={i}") or everything)
    _add_filter(page, "Intent", intent)
    expect(page.get_by_role("list", name="Active filters")).to_contain_text(f"Intent: {intent}")
    assert _query(page)["intent"] == [intent]
    filtered = _total(admin_api, server, f"intent={intent}")
    assert 0 < filtered < everything
    _expect_total(page, filtered)
    # The export is the filtered list, every page of it.
    with page.expect_download() as download:
        page.get_by_role("button", name="Export these as JSON").click()
    exported = json.loads(open(download.value.path()).read())
    listed = admin_api.get(f"{server}/api/conversations?intent={intent}&limit=1000", timeout=10).json()
    assert [c["sender_id"] for c in exported] == [c["sender_id"] for c in listed] and len(exported) == filtered

    _add_filter(page, "Review status", "Unread")
    assert _query(page)["review_status"] == ["unread"]
    expected = _total(admin_api, server, f"intent={intent}&review_status=unread")
    _expect_total(page, expected)
    screenshot(page, "conversations-filtered")

    # The URL is the view: a reload (or a shared link) shows the same filters and total.
    page.reload()
    chips = page.get_by_role("list", name="Active filters")
    expect(chips).to_contain_text(f"Intent: {intent}")
    expect(chips).to_contain_text("Review status: Unread")
    _expect_total(page, expected)

    page.get_by_role("button", name=f"Remove filter Intent: {intent}").click()
    assert "intent" not in _query(page) and _query(page)["review_status"] == ["unread"]
    _expect_total(page, _total(admin_api, server, "review_status=unread"))
    page.get_by_role("button", name="Clear all").click()
    assert _query(page) == {}

    page.get_by_role("button", name="Next page").click()
    assert _query(page)["page"] == ["2"]
    second = admin_api.get(f"{server}/api/conversations?limit=20&offset=20", timeout=10).json()
    expect(rows).to_have_text([c["sender_id"] for c in second])
    expect(page.get_by_text(f"Page 2 of {-(-everything // 20)}")).to_be_visible()
    page.go_back()
    expect(rows).to_have_text([c["sender_id"] for c in first_page])


def test_one_conversation_review_tags_raw_tracker(page, accounts, admin_api, server, conversations):
    sender = conversations[-1]  # the newest: on the first page
    api_url = f"{server}/api/conversations/{sender}"
    log_in(page, *accounts["admin"])
    page.goto("/conversations")
    page.get_by_role("link", name=sender, exact=True).click()
    expect(page.get_by_role("heading", name=f"Conversation {sender}")).to_be_visible()

    events = admin_api.get(api_url, timeout=10).json()["events"]
    user_turns = [e for e in events if e["event"] == "user"]
    turns = page.locator("li.turn.user")
    expect(turns.locator("p.text")).to_have_text([e["text"] for e in user_turns])
    expect(turns.locator(".intent")).to_have_text([e["parse_data"]["intent"]["name"] for e in user_turns])
    expect(turns.locator(".confidence")).to_have_text(
        [f"{round(e['parse_data']['intent']['confidence'] * 100)}%" for e in user_turns])
    actions = [e for e in events if e["event"] == "action" and e["name"] != "action_listen"]
    expect(page.locator("li.action .action-name")).to_have_text([e["name"] for e in actions])
    expect(page.locator("li.turn.bot p.text")).to_have_text([e["text"] for e in events if e["event"] == "bot" and e.get("text")])

    page.get_by_role("button", name="Mark reviewed").click()
    expect(page.get_by_role("button", name="Mark reviewed")).to_have_attribute("aria-pressed", "true")
    assert admin_api.get(api_url, timeout=10).json()["review_status"] == "reviewed"
    page.get_by_role("button", name="Save for later").click()
    expect(page.get_by_role("button", name="Save for later")).to_have_attribute("aria-pressed", "true")
    assert admin_api.get(api_url, timeout=10).json()["review_status"] == "saved_for_later"

    page.get_by_label("New tag").fill("needs-work")
    page.get_by_label("Colour").fill("#aa3300")
    page.get_by_role("button", name="Add tag").click()
    expect(page.get_by_role("list", name="Tags of this conversation")).to_contain_text("needs-work")
    tags = admin_api.get(f"{api_url}/tags", timeout=10).json()
    assert [(t["value"], t["color"]) for t in tags] == [("needs-work", "#aa3300")]
    screenshot(page, "conversation")
    page.get_by_role("button", name="Remove tag needs-work").click()
    expect(page.get_by_role("list", name="Tags of this conversation")).to_contain_text("No tags")
    assert admin_api.get(f"{api_url}/tags", timeout=10).json() == []

    page.get_by_role("tab", name="Raw tracker").click()
    panel = page.get_by_role("tabpanel")
    expect(panel).to_contain_text(f'"sender_id": "{sender}"')
    assert json.loads(panel.inner_text()) == admin_api.get(f"{api_url}/tracker", timeout=10).json()
    screenshot(page, "conversation-tracker")

    page.get_by_role("tab", name="Test story").click()
    story = admin_api.get(f"{api_url}/test_story", timeout=10)
    assert story.status_code == 200
    expect(page.get_by_label("Test story YAML")).to_have_text(story.text.rstrip("\n"))
    with page.expect_download() as download:
        page.get_by_role("link", name="Download the test story").click()
    assert open(download.value.path()).read() == story.text


def test_delete_a_conversation_after_confirming(page, accounts, admin_api, server, conversations):
    sender = conversations[-3]
    api_url = f"{server}/api/conversations/{sender}"
    log_in(page, *accounts["admin"])
    page.goto(f"/conversations/{sender}")
    page.get_by_role("button", name="Delete conversation").click()
    dialog = page.get_by_role("dialog", name="Delete this conversation?")
    expect(dialog).to_contain_text(sender)
    screenshot(page, "conversation-delete")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    assert admin_api.get(api_url, timeout=10).status_code == 200

    page.get_by_role("button", name="Delete conversation").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    expect(page).to_have_url(re.compile(r"/conversations$"))
    assert admin_api.get(api_url, timeout=10).status_code == 404
    expect(page.get_by_role("link", name=sender, exact=True)).to_have_count(0)


def test_flag_a_message_and_correct_its_intent_into_the_training_data(page, accounts, admin_api, server, conversations):
    sender = conversations[-2]
    api_url = f"{server}/api/conversations/{sender}"
    log_in(page, *accounts["admin"])
    page.goto(f"/conversations/{sender}")
    first_user = next(m for m in admin_api.get(f"{api_url}/messages", timeout=10).json()["messages"] if m["type"] == "user")
    text = first_user["text"]

    page.get_by_role("button", name=f"Flag “{text}”").click()
    expect(page.get_by_role("button", name=f"Unflag “{text}”")).to_have_attribute("aria-pressed", "true")
    flagged = next(m for m in admin_api.get(f"{api_url}/messages", timeout=10).json()["messages"] if m["text"] == text)
    assert flagged["is_flagged"] is True
    assert sender in [c["sender_id"] for c in admin_api.get(f"{server}/api/conversations?is_flagged=true&limit=100", timeout=10).json()]

    page.get_by_role("button", name=f"Correct intent of “{text}”").click()
    page.get_by_label(f"Intent of “{text}”").fill("ui_corrected_intent")
    page.get_by_role("button", name="Save to training data").click()
    expect(page.locator("li.turn.user").first).to_contain_text("corrected to ui_corrected_intent")
    screenshot(page, "conversation-corrected")
    corrected = next(m for m in admin_api.get(f"{api_url}/messages", timeout=10).json()["messages"] if m["text"] == text)
    assert corrected["corrected_intent"] == "ui_corrected_intent"
    examples = admin_api.get(f"{server}/api/projects/default/training_examples", params={"text": text}, timeout=10).json()
    assert [(e["text"], e["intent"]) for e in examples if e["text"] == text] == [(text, "ui_corrected_intent")]

    page.get_by_role("button", name=f"Unflag “{text}”").click()
    expect(page.get_by_role("button", name=f"Flag “{text}”")).to_have_attribute("aria-pressed", "false")
    assert not next(m for m in admin_api.get(f"{api_url}/messages", timeout=10).json()["messages"] if m["text"] == text)["is_flagged"]
