"""The NLU inbox in Chromium: the badge's count, keyboard triage (move, confirm, change intent,
archive), bulk selection with shift-click and a confirmation; each step checked in the API."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from .conftest import log_in, screenshot

P = "/api/projects/default"


def _inbox(api, server) -> tuple[list[dict], int]:
    response = api.get(f"{server}{P}/logs?limit=50", timeout=10)
    assert response.status_code == 200, response.text
    return response.json(), int(response.headers["X-Total-Count"])


def _example(api, server, text: str) -> list[dict]:
    return [e for e in api.get(f"{server}{P}/training_examples", params={"text": text}, timeout=10).json() if e["text"] == text]


def test_triage_with_the_keyboard_and_in_bulk(page, accounts, admin_api, server, conversations):
    log_in(page, *accounts["admin"])
    entries, total = _inbox(admin_api, server)
    assert total >= 8
    inbox_link = page.get_by_role("navigation", name="Main").get_by_role("link", name=re.compile("^NLU inbox"))
    expect(inbox_link).to_have_text(f"NLU inbox, {total} waiting")
    inbox_link.click()
    rows = page.locator("table.inbox tbody tr")
    expect(rows.locator("th")).to_have_text([e["text"] for e in entries])
    expect(page.get_by_role("button", name=re.compile("^Confirm")).first).to_have_text("Confirm c")
    screenshot(page, "inbox")
    # 50 at a time: the rest on request, in the API's order.
    assert total > 50
    expect(page.get_by_text(f"Showing 50 of {total}.")).to_be_visible()
    page.get_by_role("button", name=f"Show {min(50, total - 50)} more").click()
    everything = admin_api.get(f"{server}{P}/logs?limit=100", timeout=10).json()
    expect(rows.locator("th")).to_have_text([e["text"] for e in everything])

    # Arrow down to the second message, confirm its predicted intent with "c".
    rows.nth(0).focus()
    page.keyboard.press("ArrowDown")
    expect(rows.nth(1)).to_be_focused()
    second = entries[1]
    page.keyboard.press("c")
    expect(rows.locator("th", has_text=second["text"])).to_have_count(0)
    assert [e["intent"] for e in _example(admin_api, server, second["text"])] == [second["intent"]]
    expect(inbox_link).to_have_text(f"NLU inbox, {total - 1} waiting")

    # "i" moves to the intent field of the current message; Enter saves the changed intent.
    first = entries[0]
    rows.nth(0).focus()
    page.keyboard.press("i")
    field = page.get_by_label(f"Intent of “{first['text']}”")
    expect(field).to_be_focused()
    field.fill("ask_for_help")
    field.press("Enter")
    expect(rows.locator("th", has_text=first["text"])).to_have_count(0)
    assert [e["intent"] for e in _example(admin_api, server, first["text"])] == ["ask_for_help"]

    # "a" archives: the text leaves the inbox and is no training example.
    rows.nth(0).focus()
    archived = rows.nth(0).locator("th").inner_text()
    page.keyboard.press("a")
    expect(rows.locator("th", has_text=archived)).to_have_count(0)
    remaining, _ = _inbox(admin_api, server)
    assert archived not in [e["text"] for e in remaining] and _example(admin_api, server, archived) == []

    # Click the first checkbox, shift-click the third: three selected; archive them after confirming.
    texts = [e["text"] for e in remaining[:3]]
    rows.nth(0).get_by_role("checkbox").click()
    rows.nth(2).get_by_role("checkbox").click(modifiers=["Shift"])
    expect(page.get_by_role("checkbox", checked=True)).to_have_count(3)
    page.get_by_role("button", name="Archive selected (3)").click()
    dialog = page.get_by_role("dialog", name="Archive 3 messages?")
    for text in texts:
        expect(dialog).to_contain_text(text)
    screenshot(page, "inbox-bulk-archive")
    dialog.get_by_role("button", name="Archive").click()
    expect(page.get_by_role("status")).to_contain_text("3 messages archived")
    after, left = _inbox(admin_api, server)
    assert not set(texts) & {e["text"] for e in after}
    expect(inbox_link).to_have_text(f"NLU inbox, {left} waiting")
    assert left == total - 6
