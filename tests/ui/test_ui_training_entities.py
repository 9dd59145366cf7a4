"""Entity marking by selecting text in Chromium, in the NLU inbox and in a conversation's
"correct intent": select words (here with Shift+arrows, as a keyboard user does), name the
entity with a role or group, save; the training example in the API has the entity at the
selected characters with their value."""

from __future__ import annotations

from urllib.parse import quote

from playwright.sync_api import expect

from .conftest import log_in, screenshot

P = "/api/projects/default"


def _example(api, server, text: str) -> dict:
    found = [e for e in api.get(f"{server}{P}/training_examples", params={"text": text}, timeout=10).json() if e["text"] == text]
    assert len(found) == 1, found
    return found[0]


def _select(field, text: str, start: int, end: int, backwards: bool = False) -> None:
    """Select text[start:end] in the read-only field with the keyboard."""
    field.focus()
    if backwards:
        field.press("End")
        for _ in range(len(text) - end):
            field.press("ArrowLeft")
        for _ in range(end - start):
            field.press("Shift+ArrowLeft")
    else:
        field.press("Home")
        for _ in range(start):
            field.press("ArrowRight")
        for _ in range(end - start):
            field.press("Shift+ArrowRight")


def test_mark_an_entity_in_the_inbox(page, accounts, admin_api, server, conversations):
    log_in(page, *accounts["admin"])
    waiting = admin_api.get(f"{server}{P}/logs?limit=50", timeout=10).json()
    entry = next(e for e in waiting if e["text"].startswith("I am sad #"))
    text = entry["text"]
    page.get_by_role("navigation", name="Main").get_by_role("link", name="NLU inbox").click()
    row = page.locator("tr[data-entry]").filter(has=page.get_by_role("rowheader", name=text, exact=True))
    # "e" on the message's row opens its marker with the message field focused.
    row.focus()
    page.keyboard.press("e")
    expect(row.get_by_role("button", name=f"Entities of “{text}”")).to_have_attribute("aria-expanded", "true")
    marker = page.get_by_role("group", name=f"Entities of “{text}”")
    expect(marker.get_by_label("Select the words of an entity")).to_be_focused()
    _select(marker.get_by_label("Select the words of an entity"), text, 4, 9)  # " sad ": the spaces are left out
    expect(marker).to_contain_text("Selected “sad” (characters 5–8)")
    marker.get_by_label("Entity", exact=True).fill("ui_mood")
    marker.get_by_label("Role", exact=True).fill("felt")
    marker.get_by_role("button", name="Mark entity").click()
    expect(marker.get_by_role("list", name=f"Entities marked in “{text}”")).to_contain_text("“sad” ui_mood (role: felt)")
    expect(row.get_by_role("rowheader").locator("mark")).to_have_text("sad")
    expect(row.get_by_role("cell").filter(has_text="ui_mood")).to_have_text("sad ui_mood (role: felt)")
    screenshot(page, "inbox-entities")

    # Esc closes the marker, back on the row; "c" confirms the message with the marked entity.
    page.keyboard.press("Escape")
    expect(marker).to_have_count(0)
    expect(row).to_be_focused()
    page.keyboard.press("c")
    expect(row).to_have_count(0)
    example = _example(admin_api, server, text)
    assert example["intent"] == entry["intent"]
    assert example["entities"] == [{"start": 5, "end": 8, "entity": "ui_mood", "value": "sad", "role": "felt"}]


def test_mark_an_entity_when_correcting_a_conversation(page, accounts, admin_api, server, conversations):
    sender = next(s for i, s in enumerate(conversations) if i % 4 == 3 and i > 16)  # one of dave's copies
    messages = admin_api.get(f"{server}/api/conversations/{quote(sender, safe='')}/messages", timeout=10).json()["messages"]
    text = next(m["text"] for m in messages if m["type"] == "user" and m["text"].startswith("are you a bot?"))
    log_in(page, *accounts["admin"])
    page.goto(f"/conversations/{quote(sender, safe='')}")
    page.get_by_role("button", name=f"Correct intent of “{text}”").click()
    form = page.get_by_role("form", name=f"Correct “{text}”")
    form.get_by_label(f"Intent of “{text}”").fill("ui_ask_bot")
    marker = form.get_by_role("group", name=f"Entities of “{text}”")
    _select(marker.get_by_label("Select the words of an entity"), text, 10, 13, backwards=True)
    expect(marker).to_contain_text("Selected “bot” (characters 10–13)")
    marker.get_by_label("Entity", exact=True).fill("ui_agent")
    marker.get_by_label("Group", exact=True).fill("2")
    marker.get_by_label("Group", exact=True).press("Enter")  # names the entity; does not submit the correction
    expect(marker.get_by_role("list", name=f"Entities marked in “{text}”")).to_contain_text("“bot” ui_agent (group: 2)")
    expect(form).to_be_visible()
    screenshot(page, "conversation-entities")
    form.get_by_role("button", name="Save to training data").click()
    expect(page.locator("li.turn.user", has_text=text).first).to_contain_text("corrected to ui_ask_bot")

    example = _example(admin_api, server, text)
    assert example["intent"] == "ui_ask_bot"
    assert example["entities"] == [{"start": 10, "end": 13, "entity": "ui_agent", "value": "bot", "group": "2"}]
    corrected = [m for m in admin_api.get(f"{server}/api/conversations/{quote(sender, safe='')}/messages", timeout=10).json()["messages"]
                 if m["text"] == text]
    assert corrected and all(m["corrected_intent"] == "ui_ask_bot" for m in corrected)
