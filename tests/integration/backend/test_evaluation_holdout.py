"""NLU evaluation: the stored report (per-intent figures, confusion matrix, misclassified
examples), the held-back part (?holdout=), deleting an evaluation. Real PostgreSQL; the worker is
the stand-in, which evaluates the NLU data it is sent as Rasa 3.6's /model/test/intents answers
(tests/integration/backend/rasa_stand_in.py). Real Rasa's evaluation: tests/e2e/test_closing_the_loop.py.
"""

from __future__ import annotations

import hashlib
import re

from .conftest import bearer
from .rasa_stand_in import nlu_examples
from .test_training_jobs import (  # noqa: F401  (fixtures)
    EVALUATIONS, admin, app, client, database, env, model, stand_in, trained_data,
)


def _evaluated_texts(stand_in) -> list[str]:
    """The example texts of the last NLU data the worker was asked to evaluate."""
    body = [r for r in stand_in.requests if r["path"] == "/model/test/intents"][-1]["body"]
    return [text for text, _ in nlu_examples(body)]


def test_a_report_stores_per_intent_figures_the_confusion_matrix_and_the_misclassified(
        client, admin, stand_in, trained_data, model):
    assert client.put(f"{EVALUATIONS}/{model}", headers=admin).status_code == 200
    texts = _evaluated_texts(stand_in)
    wrong = texts[0]
    stand_in.predicted = {wrong: "__other__"}
    try:
        response = client.put(f"{EVALUATIONS}/{model}", headers=admin)
    finally:
        stand_in.predicted = {}
    assert response.status_code == 200
    report = response.json
    assert report["holdout"] is None and report["examples"] == len(texts) and report["accuracy"] < 1
    intents = report["intent_evaluation"]
    assert [e["text"] for e in intents["errors"]] == [wrong]
    wrong_intent = intents["errors"][0]["intent"]
    assert intents["report"][wrong_intent]["recall"] < 1 and {"precision", "f1-score", "support"} <= set(
        intents["report"][wrong_intent])
    labels, matrix = intents["confusion"]["labels"], intents["confusion"]["matrix"]
    assert "__other__" in labels and sum(map(sum, matrix)) == len(texts)
    assert matrix[labels.index(wrong_intent)][labels.index("__other__")] == 1
    assert client.get(f"{EVALUATIONS}/{model}", headers=admin).json == report


def test_a_held_back_part_is_the_same_examples_every_time(client, admin, stand_in, trained_data, model):
    assert client.put(f"{EVALUATIONS}/{model}", headers=admin).status_code == 200
    everything = _evaluated_texts(stand_in)
    response = client.put(f"{EVALUATIONS}/{model}?holdout=0.3", headers=admin)
    assert response.status_code == 200
    part = _evaluated_texts(stand_in)
    # The examples whose text (without Rasa's entity markup) hashes (SHA-256) below the fraction.
    def plain(text: str) -> str:
        return re.sub(r"\[([^\]]+)\](?:\{[^}]*\}|\([^)]*\))", r"\1", text)

    expected = [t for t in everything if int(hashlib.sha256(plain(t).encode()).hexdigest(), 16) / 16 ** 64 < 0.3]
    assert 0 < len(part) < len(everything) and sorted(part) == sorted(expected)
    assert response.json["holdout"] == 0.3 and response.json["examples"] == len(part)
    assert client.put(f"{EVALUATIONS}/{model}?holdout=0.3", headers=admin).status_code == 200
    assert _evaluated_texts(stand_in) == part
    listed = client.get(EVALUATIONS, headers=admin).json
    assert {"model": model, "holdout": 0.3, "examples": len(part)}.items() <= next(
        e for e in listed if e["model"] == model).items()


def test_a_bad_holdout_is_400_and_changes_nothing(client, admin, stand_in, trained_data, model):
    calls = len(stand_in.requests)
    for bad in ("0", "1", "-0.5", "1.5", "abc", "nan", "inf", ""):
        response = client.put(f"{EVALUATIONS}/{model}?holdout={bad}", headers=admin)
        assert response.status_code == 400 and response.json["reason"] == "bad_holdout", bad
    # A part so small that no example falls in it says so.
    response = client.put(f"{EVALUATIONS}/{model}?holdout=1e-12", headers=admin)
    assert response.status_code == 400 and "held-back" in response.json["message"]
    assert len(stand_in.requests) == calls
    assert client.get(f"{EVALUATIONS}/{model}", headers=admin).status_code == 404


def test_an_evaluation_can_be_deleted_by_who_may_evaluate(client, admin, stand_in, trained_data, model, database):
    from services.backend.users import create_user

    assert client.put(f"{EVALUATIONS}/{model}", headers=admin).status_code == 200
    settings = client.application.extensions["rasax"].settings
    with database[1].begin() as connection:
        create_user(connection, "eval-viewer", "eval-viewer-pw-123", ["annotator"], settings.password_salt,
                    if_absent=True)
    viewer = bearer(client.post("/api/auth", json={"username": "eval-viewer", "password": "eval-viewer-pw-123"})
                    .json["access_token"])
    assert client.delete(f"{EVALUATIONS}/{model}", headers=viewer).status_code == 403
    assert client.delete(f"{EVALUATIONS}/{model}", headers=admin).status_code == 204
    assert client.get(f"{EVALUATIONS}/{model}", headers=admin).status_code == 404
    assert model not in {e["model"] for e in client.get(EVALUATIONS, headers=admin).json}
    assert client.delete(f"{EVALUATIONS}/{model}", headers=admin).status_code == 404
    # The model itself stays.
    assert model in {m["model"] for m in client.get("/api/models", headers=admin).json}
