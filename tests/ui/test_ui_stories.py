"""Stories and rules in their YAML editors in Chromium: add, a syntax error named by line and
nothing saved, the API's refusal shown, edit, delete after confirming; checked in the API."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from .conftest import log_in, screenshot

STORY = """- story: ui happy path
  steps:
  - intent: greet
  - action: utter_greet
"""


def _stories(api, server) -> dict[str, dict]:
    return {s["story"]: s for s in api.get(f"{server}/api/stories", timeout=10).json()}


def test_add_fix_edit_and_delete_a_story_and_add_a_rule(page, accounts, admin_api, server):
    log_in(page, *accounts["admin"])
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Stories and rules").click()
    new = page.get_by_role("textbox", name="Story: New story")
    new.fill(STORY)
    page.get_by_role("button", name="Add story").click()
    expect(page.get_by_role("status")).to_have_text("Story “ui happy path” added")
    saved = _stories(admin_api, server)["ui happy path"]
    assert saved["steps"] == [{"intent": "greet"}, {"action": "utter_greet"}]

    editor = page.get_by_role("textbox", name="Story: ui happy path")
    expect(editor).to_have_value(STORY)
    editor.fill(STORY + "  - intent: [mood_great\n")
    form = page.get_by_role("form", name="Story: ui happy path")
    form.get_by_role("button", name="Save story").click()
    expect(form.get_by_role("alert")).to_have_text(re.compile(r"^line \d+: .*end with a \]"))
    expect(editor).to_have_attribute("aria-invalid", "true")
    screenshot(page, "stories-error")
    assert _stories(admin_api, server)["ui happy path"]["steps"] == saved["steps"]

    editor.fill(STORY + "  - intent: mood_great\n  - action: utter_happy\n")
    form.get_by_role("button", name="Save story").click()
    expect(page.get_by_role("status")).to_have_text("Story “ui happy path” saved")
    assert _stories(admin_api, server)["ui happy path"]["steps"][-2:] == [{"intent": "mood_great"}, {"action": "utter_happy"}]

    # The API refuses a second story of the same name; the page shows its reason.
    page.get_by_role("textbox", name="Story: New story").fill(STORY)
    page.get_by_role("button", name="Add story").click()
    refusal = page.get_by_role("form", name="Story: New story").get_by_role("alert")
    expect(refusal).to_contain_text("ui happy path")
    assert len([s for s in admin_api.get(f"{server}/api/stories", timeout=10).json() if s["story"] == "ui happy path"]) == 1
    screenshot(page, "stories")

    page.get_by_role("form", name="Story: ui happy path").get_by_role("button", name="Delete story").click()
    page.get_by_role("dialog", name="Delete the story “ui happy path”?").get_by_role("button", name="Delete").click()
    expect(page.get_by_role("status")).to_have_text("Story “ui happy path” deleted")
    assert "ui happy path" not in _stories(admin_api, server)

    page.get_by_role("tab", name="Rules").click()
    expect(page.get_by_role("tabpanel", name="Rules")).to_be_visible()
    page.get_by_role("textbox", name="Rule: New rule").fill("- rule: ui say goodbye\n  steps:\n  - intent: goodbye\n  - action: utter_goodbye\n")
    page.get_by_role("button", name="Add rule").click()
    expect(page.get_by_role("status")).to_have_text("Rule “ui say goodbye” added")
    rules = {r["rule"]: r for r in admin_api.get(f"{server}/api/rules", timeout=10).json()}
    assert rules["ui say goodbye"]["steps"] == [{"intent": "goodbye"}, {"action": "utter_goodbye"}]
