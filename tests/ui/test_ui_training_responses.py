"""Responses in Chromium: add one with two variations and buttons, edit it (a variation and a
button less, a button more), delete it after confirming; each step checked in the API."""

from __future__ import annotations

from playwright.sync_api import expect

from .conftest import log_in, screenshot


def _responses(api, server) -> dict[str, list[dict]]:
    response = api.get(f"{server}/api/responses", timeout=10)
    assert response.status_code == 200, response.text
    return {r["name"]: r["variations"] for r in response.json()}


def test_add_edit_and_delete_a_response_with_variations_and_buttons(page, accounts, admin_api, server):
    # A variation with keys the editor does not show keeps them through an edit.
    kept = admin_api.put(f"{server}/api/responses/utter_ui_kept", json=[{"text": "on slack", "channel": "slack"}], timeout=10)
    assert kept.status_code == 200, kept.text
    log_in(page, *accounts["admin"])
    page.goto("/training-data/responses")
    add = page.get_by_role("form", name="Add a response")
    add.get_by_label("Response name").fill("utter_ui_mood")
    add.get_by_label("Text of variation 1").fill("How are you?")
    add.get_by_role("button", name="Add a button to variation 1").click()
    add.get_by_label("Button 1 title").fill("great")
    add.get_by_label("Button 1 payload").fill("/mood_great")
    add.get_by_role("button", name="Add a button to variation 1").click()
    add.get_by_label("Button 2 title").fill("sad")
    add.get_by_label("Button 2 payload").fill("/mood_sad")
    add.get_by_role("button", name="Add a variation").click()
    add.get_by_label("Text of variation 2").fill("How do you feel?")
    add.get_by_role("button", name="Add response").click()
    expect(page.get_by_role("status")).to_contain_text("Added the response utter_ui_mood")
    assert _responses(admin_api, server)["utter_ui_mood"] == [
        {"text": "How are you?", "buttons": [{"title": "great", "payload": "/mood_great"}, {"title": "sad", "payload": "/mood_sad"}]},
        {"text": "How do you feel?"},
    ]
    shown = page.get_by_role("article", name="utter_ui_mood")
    expect(shown.get_by_role("list", name="Buttons").get_by_role("listitem")).to_have_text(["great /mood_great", "sad /mood_sad"])
    screenshot(page, "training-responses")

    page.get_by_role("button", name="Edit the response utter_ui_mood").click()
    edit = page.get_by_role("form", name="Edit the response utter_ui_mood")
    edit.get_by_role("button", name="Remove variation 2").click()
    edit.get_by_role("button", name="Remove button 1").click()
    edit.get_by_label("Button 1 title").fill("not good")
    edit.get_by_role("button", name="Add a button to variation 1").click()
    edit.get_by_label("Button 2 title").fill("fine")
    edit.get_by_label("Button 2 payload").fill('/mood_great{"level": 2}')
    edit.get_by_role("button", name="Save response").click()
    expect(page.get_by_role("status")).to_contain_text("Saved the response utter_ui_mood")
    assert _responses(admin_api, server)["utter_ui_mood"] == [
        {"text": "How are you?", "buttons": [{"title": "not good", "payload": "/mood_sad"}, {"title": "fine", "payload": '/mood_great{"level": 2}'}]},
    ]

    # Editing text only leaves the keys the editor does not show (here the channel) as they were.
    page.get_by_role("button", name="Edit the response utter_ui_kept").click()
    other = page.get_by_role("form", name="Edit the response utter_ui_kept")
    expect(other).to_contain_text("Also kept as they are: channel")
    other.get_by_label("Text of variation 1").fill("on slack, edited")
    other.get_by_role("button", name="Save response").click()
    expect(page.get_by_role("status")).to_contain_text("Saved the response utter_ui_kept")
    assert _responses(admin_api, server)["utter_ui_kept"] == [{"text": "on slack, edited", "channel": "slack"}]

    # The API's refusal is shown in the form: a variation with nothing in it.
    add.get_by_label("Response name").fill("utter_ui_empty")
    add.get_by_role("button", name="Add response").click()
    expect(add.get_by_role("alert")).to_be_visible()
    assert "utter_ui_empty" not in _responses(admin_api, server)

    for name in ("utter_ui_mood", "utter_ui_kept"):
        page.get_by_role("button", name=f"Delete the response {name}").click()
        page.get_by_role("dialog", name=f"Delete the response {name}?").get_by_role("button", name="Delete").click()
        expect(page.get_by_role("article", name=name)).to_have_count(0)
        assert name not in _responses(admin_api, server)
