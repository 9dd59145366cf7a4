"""Share your bot in Chromium: an admin makes a link (checked in the API), a guest opens it on a
phone-sized screen without an account and gets a guest session of the backend's.

The chat itself goes through nginx to Rasa's `rasa` channel (/api/chat), which this test's
backend-only set-up does not run: the page must say that the bot did not answer.
"""

from __future__ import annotations

import time

import requests
from playwright.sync_api import expect

from .conftest import log_in, screenshot


def test_make_a_share_link_and_open_it_as_a_guest(page, browser, accounts, admin_api, server):
    log_in(page, *accounts["admin"])
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Share your bot").click()
    form = page.get_by_role("form", name="Create a share link")
    form.get_by_label("Bot name").fill("Moodbot")
    form.get_by_label("Description").fill("Cheers you up")
    form.get_by_label("Link expires after").select_option(label="1 day")
    form.get_by_role("button", name="Generate link").click()
    expect(page.get_by_role("status")).to_have_text("A new link is ready; earlier links no longer work")
    made = admin_api.get(f"{server}/api/chatToken", timeout=10).json()
    assert (made["bot_name"], made["description"]) == ("Moodbot", "Cheers you up")
    assert abs(made["expires"] - (time.time() + 86400)) < 300
    link = f"{server}/guest/{made['chat_token']}?bot=Moodbot"
    expect(page.get_by_label("Share link", exact=True)).to_have_value(link)
    page.get_by_role("button", name="Copy link").click()
    expect(page.get_by_role("status")).to_have_text("Link copied")
    assert page.evaluate("navigator.clipboard.readText()") == link
    screenshot(page, "share")

    guest = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    try:
        chat = guest.new_page()
        with chat.expect_response("**/api/auth/jwt") as exchanged:
            chat.goto(link)
        expect(chat.get_by_role("heading", name="Chat with Moodbot")).to_be_visible()
        token = exchanged.value.json()["access_token"]
        me = requests.get(f"{server}/api/user", headers={"Authorization": f"Bearer {token}"}, timeout=10).json()
        assert me["roles"] == ["guest"]
        assert requests.get(f"{server}/api/conversations", headers={"Authorization": f"Bearer {token}"}, timeout=10).status_code == 403
        box = chat.get_by_label("Your message")
        expect(box).to_be_enabled()
        box.fill("hello")
        chat.get_by_role("button", name="Send").click()
        expect(chat.get_by_role("list", name="Messages")).to_contain_text("hello")
        expect(chat.get_by_role("alert")).to_have_text("The bot did not answer; try again shortly.")
        screenshot(chat, "guest-chat-phone")

        chat.goto(f"{server}/guest/not-a-token")
        expect(chat.get_by_role("alert")).to_have_text("This link is not valid or has expired: ask for a new one.")
        expect(chat.get_by_label("Your message")).to_be_disabled()
    finally:
        guest.close()
