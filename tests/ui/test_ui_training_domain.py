"""The domain and the config in their YAML editors in Chromium: a syntax error named by its line
and nothing sent, the API's 400 shown beside the editor and nothing stored, a valid change
stored; each checked in the API."""

from __future__ import annotations

import re

import yaml
from playwright.sync_api import expect

from .conftest import log_in, screenshot

P = "/api/projects/default"


def test_edit_the_domain_and_the_config_with_validation_messages(page, accounts, admin_api, server):
    log_in(page, *accounts["admin"])
    page.goto("/training-data")
    page.get_by_role("navigation", name="Parts of the training data").get_by_role("link", name="Domain").click()
    editor = page.get_by_role("textbox", name="domain.yml")
    form = page.get_by_role("form", name="Edit domain.yml")
    before = admin_api.get(f"{server}/api/domain", timeout=10).json()
    expect(editor).not_to_have_value("Loading…")
    assert yaml.safe_load(editor.input_value()) == before

    # A YAML syntax error: the line is named, nothing reaches the API.
    editor.fill("version: '3.1'\nintents:\n- greet\n- [broken\n")
    form.get_by_role("button", name="Save domain.yml").click()
    expect(form.get_by_role("alert")).to_have_text(re.compile(r"^line \d+: "))
    expect(editor).to_have_attribute("aria-invalid", "true")
    assert admin_api.get(f"{server}/api/domain", timeout=10).json() == before

    # Valid YAML the API refuses (intents must be a list): its message is shown, nothing stored.
    editor.fill("version: '3.1'\nintents: greet\n")
    form.get_by_role("button", name="Save domain.yml").click()
    expect(form.get_by_role("alert")).to_contain_text("intents")
    screenshot(page, "training-domain-error")
    assert admin_api.get(f"{server}/api/domain", timeout=10).json() == before

    changed = {**before, "version": "3.1", "intents": [*(before.get("intents") or []), "ui_domain_intent"],
               "slots": {**(before.get("slots") or {}), "ui_city": {"type": "text", "mappings": [{"type": "from_entity", "entity": "city"}]}}}
    editor.fill(yaml.safe_dump(changed, sort_keys=False))
    form.get_by_role("button", name="Save domain.yml").click()
    expect(form.get_by_role("status")).to_have_text("domain.yml saved")
    expect(form.get_by_role("alert")).to_have_count(0)
    stored = admin_api.get(f"{server}/api/domain", timeout=10).json()
    assert "ui_domain_intent" in stored["intents"]
    assert stored["slots"]["ui_city"] == {"type": "text", "mappings": [{"type": "from_entity", "entity": "city"}]}

    page.get_by_role("navigation", name="Parts of the training data").get_by_role("link", name="Config").click()
    editor = page.get_by_role("textbox", name="config.yml")
    form = page.get_by_role("form", name="Edit config.yml")
    expect(editor).not_to_have_value("Loading…")
    config = admin_api.get(f"{server}{P}/config", timeout=10).json()
    assert yaml.safe_load(editor.input_value()) == config

    editor.fill("language: en\npipeline: fast\n")
    form.get_by_role("button", name="Save config.yml").click()
    expect(form.get_by_role("alert")).to_contain_text("pipeline")
    assert admin_api.get(f"{server}{P}/config", timeout=10).json() == config

    wanted = {"recipe": "default.v1", "language": "de",
              "pipeline": [{"name": "WhitespaceTokenizer"}, {"name": "DIETClassifier", "epochs": 5}],
              "policies": [{"name": "RulePolicy"}]}
    editor.fill(yaml.safe_dump(wanted, sort_keys=False))
    form.get_by_role("button", name="Save config.yml").click()
    expect(form.get_by_role("status")).to_have_text("config.yml saved")
    screenshot(page, "training-config")
    stored = admin_api.get(f"{server}{P}/config", timeout=10).json()
    assert {k: stored[k] for k in wanted} == wanted
    admin_api.put(f"{server}{P}/config", json=config, timeout=10).raise_for_status()
