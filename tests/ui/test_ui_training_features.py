"""Synonyms, regexes and lookup tables in Chromium: add one of each, edit its values, delete it
after confirming; each step checked in the API."""

from __future__ import annotations

from playwright.sync_api import expect

from .conftest import log_in, screenshot

P = "/api/projects/default"
# part, its tab, what one is called, a name, values, the values after the edit
CASES = [
    ("synonyms", "Synonyms", "synonym", "New York", ["NYC", "big apple"], ["NYC", "the big apple", "ny"]),
    ("regexes", "Regexes", "regex", "zipcode", [r"\d{5}"], [r"\d{5}", r"\d{5}-\d{4}"]),
    ("lookup_tables", "Lookup tables", "lookup table", "city", ["Berlin", "Paris"], ["Berlin", "Paris", "Rome"]),
]


def _features(api, server, part) -> dict[str, list[str]]:
    response = api.get(f"{server}{P}/{part}", timeout=10)
    assert response.status_code == 200, response.text
    return {f["name"]: f["examples"] for f in response.json()}


def test_add_edit_and_delete_synonyms_regexes_and_lookup_tables(page, accounts, admin_api, server):
    log_in(page, *accounts["admin"])
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Training data").click()
    for part, tab, one, name, values, edited in CASES:
        page.get_by_role("navigation", name="Parts of the training data").get_by_role("link", name=tab).click()
        expect(page).to_have_url(f"{server}/training-data/{part}")
        expect(page.get_by_role("heading", name=tab, level=2)).to_be_visible()
        form = page.get_by_role("form", name=f"Add a {one}")
        form.locator("input[name=name]").fill(name)
        form.locator("textarea[name=values]").fill("\n".join(values) + "\n\n")
        form.get_by_role("button", name=f"Add {one}").click()
        expect(page.get_by_role("rowheader", name=name, exact=True)).to_be_visible()
        assert _features(admin_api, server, part)[name] == values

        # A second one of the same name is not added over the first: the page says to edit it.
        form.locator("input[name=name]").fill(name)
        form.locator("textarea[name=values]").fill("other")
        form.get_by_role("button", name=f"Add {one}").click()
        expect(page.get_by_role("status")).to_contain_text(f"The {one} “{name}” exists")
        assert _features(admin_api, server, part)[name] == values

        page.get_by_role("button", name=f"Edit the {one} “{name}”").click()
        edit = page.get_by_role("form", name=f"Edit the {one} “{name}”")
        expect(edit.get_by_role("textbox")).to_have_value("\n".join(values))
        edit.get_by_role("textbox").fill("\n".join(edited))
        edit.get_by_role("button", name="Save").click()
        expect(page.get_by_role("status")).to_contain_text(f"Saved the {one} “{name}”")
        assert _features(admin_api, server, part)[name] == edited
        if part == "synonyms":
            screenshot(page, "training-synonyms")

        page.get_by_role("button", name=f"Delete the {one} “{name}”").click()
        dialog = page.get_by_role("dialog", name=f"Delete the {one} “{name}”?")
        expect(dialog).to_contain_text(", ".join(edited))
        dialog.get_by_role("button", name="Delete").click()
        expect(page.get_by_role("rowheader", name=name, exact=True)).to_have_count(0)
        assert name not in _features(admin_api, server, part)
