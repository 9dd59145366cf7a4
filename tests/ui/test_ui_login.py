"""Log in and out through the real backend; the role decides the navigation."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from .conftest import api_session, log_in, screenshot


def test_the_ui_is_served_at_root_and_client_routes_while_api_paths_stay_the_apis(server):
    import requests

    for path in ("/", "/conversations", "/conversations/a%2Fb", "/models?x=1"):
        response = requests.get(server + path, timeout=10)
        assert response.status_code == 200 and "text/html" in response.headers["Content-Type"], path
        assert '<div id="app"></div>' in response.text
        assert response.headers["Cache-Control"] == "no-cache"
    asset = re.search(r'src="(/assets/[^"]+\.js)"', requests.get(server + "/", timeout=10).text).group(1)
    served = requests.get(server + asset, timeout=10)
    assert served.status_code == 200 and "immutable" in served.headers["Cache-Control"]
    assert requests.get(server + "/api/no-such-route", timeout=10).json()["reason"] == "not_found"
    assert requests.delete(server + "/api/health", timeout=10).status_code == 405
    assert requests.get(server + "/assets/../../app.py", timeout=10).status_code in (200, 404)
    assert "create_app" not in requests.get(server + "/assets/%2e%2e/%2e%2e/app.py", timeout=10).text


def test_log_in_with_a_wrong_then_the_right_password_then_log_out(page, accounts, server):
    username, password = accounts["admin"]
    page.goto("/")
    expect(page.get_by_role("heading", name="Log in to Rasa X")).to_be_visible()
    screenshot(page, "login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("password")

    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link")).to_have_text(
        ["Conversations", re.compile(r"^NLU inbox, \d+ waiting$"), "Training data", "Stories and rules", "Models",
         "Analytics", "Users", "Talk to your bot", "Share your bot"])
    expect(page).to_have_url(re.compile(r"/conversations$"))
    # The token the page holds is a real session of the backend's, for this user.
    token = page.evaluate("sessionStorage.getItem('rasax.token')")
    import requests

    me = requests.get(f"{server}/api/user", headers={"Authorization": f"Bearer {token}"}, timeout=10).json()
    assert me["username"] == username and me["roles"] == ["admin"]

    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", name="Log in to Rasa X")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('rasax.token')") is None
    page.goto("/users")
    expect(page.get_by_role("heading", name="Log in to Rasa X")).to_be_visible()


def test_an_annotator_sees_no_users_screen_and_a_direct_link_says_no_permission(page, accounts, server):
    username, password = accounts["annotator"]
    log_in(page, username, password)
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link")).to_have_text(
        ["Conversations", re.compile(r"^NLU inbox, \d+ waiting$"), "Training data", "Stories and rules", "Models",
         "Analytics", "Talk to your bot"])
    page.goto("/users")
    expect(page.get_by_role("heading", name="No permission")).to_be_visible()
    screenshot(page, "no-permission")
    # What the page decided is what the API enforces.
    annotator = api_session(server, username, password)
    assert annotator.get(f"{server}/api/users", timeout=10).status_code == 403
    assert annotator.get(f"{server}/api/conversations", timeout=10).status_code == 200
