"""Models in Chromium: train (the job's progress and outcome, Rasa's own error when it refuses),
then evaluate the trained model (per-intent table, confusion matrix heat map, misclassified
examples), each step checked against the API.

The browser tier has no real Rasa: rasa-worker is the stand-in of
tests/integration/backend/rasa_stand_in.py, answering /model/train and /model/test/intents as
Rasa 3.6 does, on the port the UI server's RASA_WORKER_HOST names. Real Rasa trains and
evaluates in tests/e2e/test_closing_the_loop.py.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from tests.integration.backend.rasa_stand_in import StandIn

from .conftest import log_in, screenshot

P = "/api/projects/default"
# The NLU data evaluated: three intents, two examples the stand-in predicts wrongly.
EXAMPLES = {"ui_eval_greet": [f"ui eval hello {n}" for n in range(5)],
            "ui_eval_bye": [f"ui eval goodbye {n}" for n in range(3)],
            "ui_eval_affirm": [f"ui eval yes indeed {n}" for n in range(2)]}
MISPREDICTED = {"ui eval hello 3": "ui_eval_bye", "ui eval yes indeed 1": "ui_eval_greet"}


@pytest.fixture(scope="module")
def worker(backend_env, server):
    stand_in = StandIn(backend_env["RASA_TOKEN"], port=urlsplit(backend_env["RASA_WORKER_HOST"]).port)
    yield stand_in
    stand_in.close()


@pytest.fixture(scope="module")
def nlu_data(admin_api, server):
    body = [{"text": text, "intent": intent} for intent, texts in EXAMPLES.items() for text in texts]
    response = admin_api.post(f"{server}{P}/training_examples", json=body, timeout=10)
    assert response.status_code == 201, response.text
    yield
    ids = [e["id"] for e in response.json()]
    admin_api.post(f"{server}{P}/training_examples/bulk_delete", json={"ids": ids}, timeout=10)


def _job(admin_api, server, model: str) -> dict:
    jobs = admin_api.get(f"{server}{P}/models/jobs", timeout=10).json()
    return next(j for j in jobs if j["model"] == model)


def _open_models(page, accounts):
    log_in(page, *accounts["admin"])
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Models").click()
    expect(page.get_by_role("heading", name="Models", exact=True)).to_be_visible()


def test_train_a_model_follow_the_job_and_see_it_active(page, accounts, admin_api, server, worker, nlu_data):
    worker.mode, worker.delay = "train", 2.5  # long enough to watch the job run
    _open_models(page, accounts)
    form = page.get_by_role("form", name="Train a model")
    form.get_by_label("Model name").fill("ui-trained")
    form.get_by_label("Make it active when trained").check()
    form.get_by_role("button", name="Train model").click()

    row = page.get_by_role("table", name="Training jobs").get_by_role("row").filter(has_text="ui-trained")
    expect(row).to_contain_text(re.compile("queued|running"))
    expect(page.get_by_role("status")).to_have_text(re.compile(r"Training job #\d+: (queued|running)"))
    expect(row).to_contain_text("finished", timeout=30_000)
    expect(row).to_contain_text("Trained ui-trained, tagged production")
    expect(page.get_by_role("status")).to_have_text(re.compile(r"Training job #\d+: Trained ui-trained, tagged production"))
    expect(page.get_by_role("rowheader", name="ui-trained", exact=True)).to_be_visible()

    job = _job(admin_api, server, "ui-trained")
    assert job["status"] == "finished" and job["tag"] == "production" and job["requested_by"] == "admin"
    assert row.get_by_role("rowheader").inner_text() == f"#{job['id']}"
    models = {m["model"]: m["tags"] for m in admin_api.get(f"{server}/api/models", timeout=10).json()}
    assert models["ui-trained"] == ["production"]
    # What was trained is the current data, the examples above among it.
    (sent,) = [r for r in worker.trainings() if "ui eval hello 0" in r["body"]][-1:]
    assert "ui_eval_affirm" in sent["body"]
    screenshot(page, "models-training")


def test_a_training_rasa_refuses_shows_rasas_reason(page, accounts, admin_api, server, worker, nlu_data):
    worker.mode, worker.delay = "refuse", 0.0
    try:
        _open_models(page, accounts)
        form = page.get_by_role("form", name="Train a model")
        form.get_by_label("Model name").fill("ui-refused")
        form.get_by_role("button", name="Train model").click()
        row = page.get_by_role("table", name="Training jobs").get_by_role("row").filter(has_text="ui-refused")
        expect(row).to_contain_text("failed", timeout=30_000)
        job = _job(admin_api, server, "ui-refused")
        assert job["status"] == "failed" and "does not contain valid YAML" in job["error"]
        expect(row).to_contain_text(f"Failed: {job['error']}")
        expect(page.get_by_role("status")).to_contain_text(job["error"])
        assert "ui-refused" not in {m["model"] for m in admin_api.get(f"{server}/api/models", timeout=10).json()}
    finally:
        worker.mode = "train"


def test_evaluate_a_model_per_intent_confusion_matrix_and_errors(page, accounts, admin_api, server, worker, nlu_data):
    worker.mode, worker.predicted = "train", dict(MISPREDICTED)
    _open_models(page, accounts)
    page.get_by_role("button", name="Evaluate ui-trained").click()
    report = page.get_by_role("region", name="Evaluation of ui-trained")
    expect(report).to_be_visible(timeout=30_000)
    expect(page).to_have_url(re.compile(r"/models\?evaluation=ui-trained$"))

    evaluation = admin_api.get(f"{server}{P}/evaluations/ui-trained", timeout=10).json()
    intents = evaluation["intent_evaluation"]
    expect(page.get_by_role("status")).to_have_text(f"ui-trained evaluated: accuracy {round(evaluation['accuracy'] * 100)}%")
    expect(report).to_contain_text(f"{evaluation['examples']} examples, the training data version {evaluation['data_version'][:8]}")
    # The per-intent table is the API's report, line by line.
    table = report.get_by_role("table", name="Per-intent results")
    for intent in EXAMPLES:
        line = intents["report"][intent]
        cells = table.get_by_role("row", name=intent, exact=False).filter(has=page.get_by_role("rowheader", name=intent, exact=True))
        expect(cells.get_by_role("cell")).to_have_text(
            [f"{line['precision']:.2f}", f"{line['recall']:.2f}", f"{line['f1-score']:.2f}", str(line["support"])])
    assert intents["report"]["ui_eval_greet"]["support"] == 5 and intents["report"]["ui_eval_greet"]["recall"] == 0.8

    # The heat map: the diagonal holds the rest of each intent's support, each error its cell.
    heatmap = report.get_by_role("img", name="Intent confusion matrix")
    expect(heatmap).to_be_visible()

    def cell(true: str, predicted: str):
        return heatmap.locator(f'g.cell[data-true="{true}"][data-predicted="{predicted}"] > text')

    errors = intents["errors"]
    assert sorted((e["text"], e["intent_prediction"]["name"]) for e in errors) == sorted(MISPREDICTED.items())
    expect(cell("ui_eval_greet", "ui_eval_bye")).to_have_text("1")
    expect(cell("ui_eval_affirm", "ui_eval_greet")).to_have_text("1")
    expect(cell("ui_eval_greet", "ui_eval_greet")).to_have_text("4")
    expect(cell("ui_eval_bye", "ui_eval_bye")).to_have_text("3")
    expect(cell("ui_eval_bye", "ui_eval_greet")).to_have_text("0")

    misclassified = report.get_by_role("table", name="Misclassified examples").get_by_role("rowheader")
    expect(misclassified).to_have_text([e["text"] for e in errors])
    screenshot(page, "models-evaluation")

    # The report is in the URL: opened again from it, it shows the stored evaluation.
    page.goto("/models?evaluation=ui-trained")
    expect(page.get_by_role("region", name="Evaluation of ui-trained").get_by_role("table", name="Misclassified examples")
           .get_by_role("rowheader")).to_have_count(len(errors))
    page.get_by_role("button", name="Report of ui-trained").click()
    expect(page.get_by_role("region", name="Evaluation of ui-trained")).to_have_count(0)
    expect(page).to_have_url(re.compile(r"/models$"))
