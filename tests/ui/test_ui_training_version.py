"""The marker of changes since the last model in Chromium: the API's data version against the one
the newest trained model records; a change of the data in the UI turns it to "changed", undoing
the change turns it back (the version is a hash of the content); checked in the API."""

from __future__ import annotations


import sqlalchemy as sa
from playwright.sync_api import expect

from tests.integration.backend.test_served import model_archive

from .conftest import log_in, screenshot

P = "/api/projects/default"
MODEL = "ui-data-version-model"


def _version(api, server) -> str:
    response = api.get(f"{server}{P}/data_version", timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["version"]


def test_marker_of_changes_since_the_last_model(page, accounts, admin_api, server, db_engine):
    log_in(page, *accounts["admin"])
    page.goto("/training-data")
    marker = page.locator(".data-version")
    trained = [m for m in admin_api.get(f"{server}/api/models", timeout=10).json() if m["data_version"]]
    if not trained:  # (other tests of the session may have trained models already)
        expect(marker).to_have_text("No model has been trained on this data yet.")
    else:
        expect(marker).to_contain_text(trained[0]["model"])

    # A model trained by rasa-x records the data version its job took (training_jobs.py); here
    # an uploaded model is given the current one, as the job's store_model(data_version=) does,
    # and the newest training time, so that it is the last trained model.
    upload = admin_api.post(f"{server}/api/models", files={"model": (f"{MODEL}.tar.gz", model_archive(MODEL, 1000))}, timeout=30)
    assert upload.status_code == 201, upload.text
    version = _version(admin_api, server)
    with db_engine.begin() as connection:
        connection.execute(sa.text("UPDATE model SET data_version = :v, trained_at = (SELECT max(trained_at) + 1 FROM model) "
                                   "WHERE name = :n"), {"v": version, "n": MODEL})
    try:
        page.reload()
        expect(marker).to_contain_text(f"Up to date: model {MODEL}")
        expect(marker).to_have_attribute("data-version", version)

        form = page.get_by_role("form", name="Add an example")
        form.get_by_label("Example text").fill("ui data version example")
        form.get_by_label("Example intent").fill("greet")
        form.get_by_role("button", name="Add example").click()
        expect(marker).to_contain_text(f"Changed since the last model: {MODEL}")
        changed = _version(admin_api, server)
        assert changed != version
        expect(marker).to_have_attribute("data-version", changed)
        screenshot(page, "training-changed-marker")

        page.get_by_role("button", name="Delete “ui data version example”").click()
        page.get_by_role("dialog", name="Delete 1 example?").get_by_role("button", name="Delete").click()
        expect(marker).to_contain_text(f"Up to date: model {MODEL}")
        assert _version(admin_api, server) == version
    finally:
        admin_api.delete(f"{server}/api/models/{MODEL}", timeout=10)
