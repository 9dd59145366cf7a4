"""The account page in Chromium: the own API token, a password change checked by logging in."""

from __future__ import annotations

from playwright.sync_api import expect

from .conftest import USER_PASSWORD, api_session, log_in, screenshot


def test_see_the_api_token_and_change_the_password(page, accounts, db_engine, settings, server):
    from services.backend.users import create_user

    with db_engine.begin() as connection:
        create_user(connection, "ui-account", USER_PASSWORD, ["tester"], settings.password_salt, if_absent=True)
    own = api_session(server, "ui-account", USER_PASSWORD)
    token = own.get(f"{server}/api/user", timeout=10).json()["api_token"]

    log_in(page, "ui-account", USER_PASSWORD)
    page.get_by_role("link", name="ui-account (tester)").click()
    expect(page.get_by_role("heading", name="Account")).to_be_visible()
    expect(page.get_by_label("API token")).not_to_have_text(token)
    page.get_by_role("button", name="Show token").click()
    expect(page.get_by_label("API token")).to_have_text(token)

    page.get_by_label("Current password").fill("not-my-password")
    page.get_by_label("New password", exact=True).fill("a-new-password-2")
    page.get_by_label("New password again").fill("a-new-password-2")
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_role("alert")).to_have_text("the old password is wrong")

    page.get_by_label("Current password").fill(USER_PASSWORD)
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_role("status")).to_have_text("Password changed")
    screenshot(page, "account")
    login = own.post(f"{server}/api/auth", json={"username": "ui-account", "password": "a-new-password-2"}, timeout=10)
    assert login.status_code == 200
    assert own.post(f"{server}/api/auth", json={"username": "ui-account", "password": USER_PASSWORD}, timeout=10).status_code == 401
