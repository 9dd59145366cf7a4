"""Training data in Chromium: add examples, search them (kept in the URL), delete a range of
them at once after confirming; mark an example's entities while editing it; each step checked
in the API."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

from playwright.sync_api import expect

from .conftest import log_in, screenshot

P = "/api/projects/default"


def _examples(api, server, text: str) -> list[tuple[str, str]]:
    response = api.get(f"{server}{P}/training_examples", params={"text": text, "limit": 100}, timeout=10)
    return sorted((e["text"], e["intent"]) for e in response.json())


def test_add_search_and_bulk_delete_examples(page, accounts, admin_api, server):
    log_in(page, *accounts["admin"])
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Training data").click()
    form = page.get_by_role("form", name="Add an example")
    added = [(f"ui bulk example {n}", "inform") for n in range(4)]
    for text, intent in added:
        form.get_by_label("Example text").fill(text)
        form.get_by_label("Example intent").fill(intent)
        form.get_by_role("button", name="Add example").click()
        expect(page.get_by_role("rowheader", name=text)).to_be_visible()
    assert _examples(admin_api, server, "ui bulk example") == added

    page.get_by_label("Search examples").fill("ui bulk example")
    page.get_by_label("Search examples").press("Enter")
    expect(page).to_have_url(re.compile(r"[?&]text=ui\+bulk\+example"))
    assert parse_qs(urlsplit(page.url).query)["text"] == ["ui bulk example"]
    rows = page.get_by_role("table").locator("tbody tr")
    expect(rows).to_have_count(4)
    expect(page.get_by_role("status")).to_have_text(re.compile(r"^4 examples"))
    screenshot(page, "training-data")

    # Edit one in place: the API then has the new text and intent under the same id.
    first = admin_api.get(f"{server}{P}/training_examples", params={"text": "ui bulk example 0"}, timeout=10).json()[0]
    page.get_by_role("button", name="Edit “ui bulk example 0”").click()
    edit = page.get_by_role("form", name="Edit “ui bulk example 0”")
    edit.get_by_label("Text").fill("ui bulk example zero")
    edit.get_by_label("Intent").fill("greet")
    edit.get_by_role("button", name="Save").click()
    expect(page.get_by_role("rowheader", name="ui bulk example zero")).to_be_visible()
    changed = admin_api.get(f"{server}{P}/training_examples/{first['id']}", timeout=10).json()
    assert (changed["text"], changed["intent"]) == ("ui bulk example zero", "greet")
    added[0] = ("ui bulk example zero", "greet")

    shown = [rows.nth(i).locator("th").inner_text() for i in range(3)]
    rows.nth(0).get_by_role("checkbox").click()
    rows.nth(2).get_by_role("checkbox").click(modifiers=["Shift"])
    page.get_by_role("button", name="Delete selected (3)").click()
    dialog = page.get_by_role("dialog", name="Delete 3 examples?")
    dialog.get_by_role("button", name="Delete").click()
    expect(rows).to_have_count(1)
    left = _examples(admin_api, server, "ui bulk example")
    assert [text for text, _ in left] == sorted(set(t for t, _ in added) - set(shown))


def test_mark_the_entities_of_an_example_while_editing_it(page, accounts, admin_api, server):
    text = "ui book a table in Paris for two"
    created = admin_api.post(f"{server}{P}/training_examples", json={"text": text, "intent": "ui_book", "entities": [
        {"start": text.index("two"), "end": len(text), "entity": "count"}]}, timeout=10)
    assert created.status_code == 201, created.text
    log_in(page, *accounts["admin"])
    page.goto("/training-data?text=ui+book+a+table")
    row = page.get_by_role("row", name=text)
    expect(row.get_by_role("cell").filter(has_text="count")).to_have_text("two count")
    page.get_by_role("button", name=f"Edit “{text}”").click()
    edit = page.get_by_role("form", name=f"Edit “{text}”")
    field = edit.get_by_label("Select the words of an entity")
    field.focus()
    field.press("Home")
    for _ in range(text.index("Paris")):
        field.press("ArrowRight")
    for _ in range(len("Paris")):
        field.press("Shift+ArrowRight")
    edit.get_by_label("Entity", exact=True).fill("city")
    edit.get_by_label("Role", exact=True).fill("destination")
    edit.get_by_role("button", name="Mark entity").click()
    # Editing the text keeps the entities whose words stay where they were.
    edit.get_by_label("Text", exact=True).fill(text + " people")
    expect(edit.get_by_role("list", name=f"Entities marked in “{text} people”")).to_contain_text("“Paris” city (role: destination)")
    screenshot(page, "training-example-entities")
    edit.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_contain_text(f"Saved “{text} people”")
    saved = admin_api.get(f"{server}{P}/training_examples/{created.json()['id']}", timeout=10).json()
    start = text.index("Paris")
    assert saved["text"] == text + " people"
    assert saved["entities"] == [
        {"start": start, "end": start + 5, "entity": "city", "value": "Paris", "role": "destination"},
        {"start": text.index("two"), "end": len(text), "entity": "count", "value": "two"},
    ]
    admin_api.delete(f"{server}{P}/training_examples/{created.json()['id']}", timeout=10)
