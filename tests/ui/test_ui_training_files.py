"""Upload and download of the Rasa YAML files in Chromium: the downloaded .tar.gz holds what the
API exports; a good nlu.yml merged, a bad one refused with the API's file/line/expectation shown
and nothing stored; a rules.yml replacing the rules after confirming; each checked in the API."""

from __future__ import annotations

import io
import re
import tarfile

import yaml
from playwright.sync_api import expect

from .conftest import log_in, screenshot

P = "/api/projects/default"
NLU = """version: "3.1"
nlu:
- intent: ui_order_pizza
  examples: |
    - ui file upload: a [margherita](pizza) please
    - ui file upload: two [large]{"entity": "size", "role": "first"} ones
"""
BAD_NLU = """version: "3.1"
nlu:
- intent: ui_broken
  examples: |
    - ui file upload: fine
    - ui file upload: a [pepperoni](pizza please
"""
RULES = """version: "3.1"
rules:
- rule: ui uploaded rule
  steps:
  - intent: goodbye
  - action: utter_goodbye
"""


def _members(data: bytes) -> dict[str, object]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        return {m.name: yaml.safe_load(archive.extractfile(m).read()) for m in archive if m.isfile()}


def _examples(api, server, text: str) -> dict[str, dict]:
    return {e["text"]: e for e in api.get(f"{server}{P}/training_examples", params={"text": text, "limit": 100}, timeout=10).json()}


def _upload(page, name: str, content: str, mode: str = "Merge into the training data") -> None:
    form = page.get_by_role("form", name="Upload training data")
    form.get_by_label("Rasa files (.yml, or one .tar.gz/.zip)").set_input_files(
        {"name": name, "mimeType": "application/x-yaml", "buffer": content.encode()})
    form.get_by_label(mode).check()
    form.get_by_role("button", name="Upload").click()


def test_upload_and_download_the_rasa_files(page, accounts, admin_api, server, tmp_path):
    log_in(page, *accounts["admin"])
    page.goto("/training-data")
    page.get_by_role("navigation", name="Parts of the training data").get_by_role("link", name="Upload and download").click()

    _upload(page, "nlu.yml", NLU)
    result = page.get_by_role("status")
    expect(result).to_contain_text("Imported (merge: nlu): 2 examples")
    stored = _examples(admin_api, server, "ui file upload")
    pizza, size = "ui file upload: a margherita please", "ui file upload: two large ones"
    assert stored[pizza]["entities"] == [
        {"start": pizza.index("margherita"), "end": pizza.index(" please"), "entity": "pizza", "value": "margherita"}]
    assert stored[size]["entities"] == [
        {"start": size.index("large"), "end": size.index(" ones"), "entity": "size", "value": "large", "role": "first"}]
    assert {e["intent"] for e in stored.values()} == {"ui_order_pizza"}

    # A file with an entity annotation that does not parse: the API's message (file, line, what
    # was expected) is shown and nothing of the file is stored.
    _upload(page, "broken-nlu.yml", BAD_NLU)
    alert = page.get_by_role("alert")
    expect(alert).to_have_text(re.compile(r"^broken-nlu\.yml, line \d+: "))
    screenshot(page, "training-upload-error")
    assert "ui file upload: fine" not in _examples(admin_api, server, "ui file upload")

    # Replacing asks first; then the rules are exactly the uploaded ones.
    _upload(page, "rules.yml", RULES, mode="Replace the parts they carry")
    page.get_by_role("dialog", name="Replace training data?").get_by_role("button", name="Replace").click()
    expect(page.get_by_role("status")).to_contain_text("Imported (replace: rules): 0 examples")
    rules = admin_api.get(f"{server}/api/rules", timeout=10).json()
    assert [(r["rule"], r["steps"]) for r in rules] == [("ui uploaded rule", [{"intent": "goodbye"}, {"action": "utter_goodbye"}])]

    with page.expect_download() as download:
        page.get_by_role("button", name="Download the project (.tar.gz)").click()
    assert download.value.suggested_filename == "training-data.tar.gz"
    saved = tmp_path / "export.tar.gz"
    download.value.save_as(saved)
    exported = admin_api.get(f"{server}{P}/export", timeout=30)
    assert exported.status_code == 200
    members = _members(saved.read_bytes())
    assert members == _members(exported.content)
    assert {"data/nlu.yml", "data/rules.yml", "domain.yml", "config.yml"} <= set(members)
    assert members["data/rules.yml"]["rules"][0]["rule"] == "ui uploaded rule"


def test_an_annotator_downloads_but_is_offered_no_upload(page, accounts, server):
    from .conftest import api_session

    annotator = api_session(server, *accounts["annotator"])
    refused = annotator.post(f"{server}{P}/import", files={"files": ("nlu.yml", NLU.encode())}, timeout=10)
    assert refused.status_code == 403, refused.text
    log_in(page, *accounts["annotator"])
    page.goto("/training-data/files")
    expect(page.get_by_role("heading", name="Upload and download")).to_be_visible()
    expect(page.get_by_role("form", name="Upload training data")).to_have_count(0)
    with page.expect_download() as download:
        page.get_by_role("button", name="Download the project (.tar.gz)").click()
    assert _members(open(download.value.path(), "rb").read()) == _members(annotator.get(f"{server}{P}/export", timeout=30).content)
