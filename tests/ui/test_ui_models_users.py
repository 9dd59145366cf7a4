"""Models (upload, make active, delete) and Users (create, change role, delete) in Chromium,
each step checked against the API."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.integration.backend.test_served import model_archive

from .conftest import log_in, screenshot


def _models(admin_api, server) -> dict[str, list[str]]:
    return {m["model"]: m["tags"] for m in admin_api.get(f"{server}/api/models", timeout=10).json()}


def test_upload_a_model_make_it_active_and_delete_it(page, accounts, admin_api, server, tmp_path):
    log_in(page, *accounts["admin"])
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Models").click()
    expect(page.get_by_role("heading", name="Models")).to_be_visible()
    for name in ("ui-first", "ui-second"):
        page.get_by_label("Model file (.tar.gz)").set_input_files(
            {"name": f"{name}.tar.gz", "mimeType": "application/gzip", "buffer": model_archive(name, 20_000)})
        page.get_by_role("button", name="Upload model").click()
        expect(page.get_by_role("rowheader", name=name)).to_be_visible()
    assert {"ui-first", "ui-second"} <= set(_models(admin_api, server))

    page.get_by_role("row", name="ui-first").get_by_role("button", name="Make active").click()
    expect(page.get_by_role("status")).to_have_text("ui-first is now in production")
    assert _models(admin_api, server)["ui-first"] == ["production"]
    page.get_by_role("row", name="ui-second").get_by_role("button", name="Make active").click()
    expect(page.get_by_role("row", name="ui-second")).to_contain_text("production")
    models = _models(admin_api, server)
    assert models["ui-second"] == ["production"] and models["ui-first"] == []
    screenshot(page, "models")

    page.get_by_role("button", name="Delete model ui-first").click()
    dialog = page.get_by_role("dialog", name="Delete this model?")
    dialog.get_by_role("button", name="Delete").click()
    expect(page.get_by_role("rowheader", name="ui-first")).to_have_count(0)
    assert "ui-first" not in _models(admin_api, server)
    assert admin_api.get(f"{server}/api/models/ui-first", timeout=10).status_code == 404


def test_an_annotator_sees_models_without_changing_them(page, accounts):
    log_in(page, *accounts["annotator"])
    page.goto("/models")
    expect(page.get_by_role("heading", name="Models")).to_be_visible()
    expect(page.get_by_role("button", name="Upload model")).to_have_count(0)


def test_create_a_user_change_the_role_and_delete_it(page, accounts, admin_api, server):
    log_in(page, *accounts["admin"])
    page.goto("/users")
    form = page.get_by_role("form", name="Create a user")
    form.get_by_label("Username").fill("ui-made")
    form.get_by_label("Password").fill("a-long-password-1")
    form.get_by_label("Role").select_option("annotator")
    form.get_by_role("button", name="Create user").click()
    expect(page.get_by_role("rowheader", name="ui-made")).to_be_visible()
    made = admin_api.get(f"{server}/api/users", timeout=10).json()
    assert next(u for u in made if u["username"] == "ui-made")["roles"] == ["annotator"]
    # The new account logs in with the password typed in the form.
    assert admin_api.post(f"{server}/api/auth", json={"username": "ui-made", "password": "a-long-password-1"},
                          timeout=10).status_code == 200

    page.get_by_label("Role of ui-made").select_option("tester")
    expect(page.get_by_role("status")).to_have_text("ui-made is now tester")
    made = admin_api.get(f"{server}/api/users", timeout=10).json()
    assert next(u for u in made if u["username"] == "ui-made")["roles"] == ["tester"]
    screenshot(page, "users")

    page.get_by_role("button", name="Reset the password of ui-made").click()
    page.get_by_label("New password for ui-made").fill("another-password-3")
    page.get_by_role("button", name="Set password").click()
    expect(page.get_by_role("status")).to_have_text("ui-made has a new password")
    assert admin_api.post(f"{server}/api/auth", json={"username": "ui-made", "password": "another-password-3"},
                          timeout=10).status_code == 200

    page.get_by_role("button", name="Delete user ui-made").click()
    page.get_by_role("dialog", name="Delete this user?").get_by_role("button", name="Delete").click()
    expect(page.get_by_role("rowheader", name="ui-made")).to_have_count(0)
    assert all(u["username"] != "ui-made" for u in admin_api.get(f"{server}/api/users", timeout=10).json())
