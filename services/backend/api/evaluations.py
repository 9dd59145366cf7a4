"""NLU evaluation of a model on rasa-worker: PUT runs it, the report is stored, GET reads it.

The worker starts without a model (its endpoints have no model server, docs/design.md §4), and
Rasa 3.6's /model/test/intents?model= only loads a model from a model server or a local path.
So rasa-x has the worker load the model once (PUT /model with a model server URL pointing back
at rasa-x, checked by RASA_X_TOKEN like the model server), then posts the NLU data to
/model/test/intents. The loaded model is the worker's one shared state: a PostgreSQL advisory
lock makes load-and-test one at a time across rasa-x's processes and replicas.

`?holdout=0.2` evaluates on a held-back part of the NLU data instead of all of it: the examples
whose text hashes (SHA-256) below that fraction, the same ones on every run and every replica, so
evaluations of successive models compare. (rasa-x does not train without them: the part means
"unseen" for a model trained on other data, such as an upload.)

Synchronous, not a job like training: the worker only predicts, with a model it has loaded, so
the time grows with the number of examples evaluated, not with a training (seconds for hundreds
of examples; a held-back part keeps large projects short), within nginx's proxy_read_timeout
(300 s). Nothing is stored before Rasa's answer, and then in one transaction: a request cut off
(a rasa-x killed, a client gone) leaves nothing half-done to clean up, and the advisory lock is a
session lock that PostgreSQL releases with the dead connection. The caller PUTs again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math

import sqlalchemy as sa
from flask import Blueprint, g, jsonify, request

from .. import rasa_client
from ..auth import check_rasa_x_token, requires
from ..context import backend
from ..errors import ApiError, bad_request
from ..training_data import rasa_yaml, store
from ..training_data.schemas import NULLABLE_NUMBER, listing
from .models import _model_row, _send_model

bp = Blueprint("evaluations", __name__, url_prefix="/api/projects/default/evaluations")

_EVALUATION_LOCK = 0x5241_5845  # "RAXE"
# What is kept of each of Rasa's evaluations: per-label report (precision, recall, f1-score,
# support, confused_with), the averages and the misclassified examples, not every prediction.
KEPT = ("report", "accuracy", "f1_score", "precision", "errors", "confusion")
PARTS = ("intent_evaluation", "entity_evaluation", "response_selection_evaluation")
_PART = {"type": "object", "nullable": True}  # Rasa's own shape, per label; intents' with "confusion" added
SUMMARY_OUT = {
    "type": "object",
    "required": ["model", "data_version", "created_at", "requested_by", "holdout", "examples", "accuracy",
                 "f1_score", "precision"],
    "properties": {
        "model": {"type": "string"},
        "data_version": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        "created_at": {"type": "number"},
        "requested_by": {"type": "string", "nullable": True},
        "holdout": {**NULLABLE_NUMBER, "description": "the held-back fraction evaluated on; null: all the NLU data"},
        "examples": {"type": "integer", "nullable": True, "description": "how many examples were evaluated"},
        "accuracy": NULLABLE_NUMBER,
        "f1_score": NULLABLE_NUMBER,
        "precision": NULLABLE_NUMBER,
    },
    "additionalProperties": False,
}
EVALUATION_OUT = {
    **SUMMARY_OUT,
    "required": [*SUMMARY_OUT["required"], *PARTS],
    "properties": {**SUMMARY_OUT["properties"], **dict.fromkeys(PARTS, _PART)},
}
LIST_OUT = listing(SUMMARY_OUT)


def confusion(predictions: list[dict]) -> dict:
    """The confusion matrix of Rasa's intent predictions: matrix[i][j] counts the examples of
    labels[i] predicted as labels[j] (a missing prediction as "")."""
    pairs = [(p.get("intent") or "", p.get("predicted") or "") for p in predictions]
    labels = sorted({label for pair in pairs for label in pair})
    index = {label: i for i, label in enumerate(labels)}
    matrix = [[0] * len(labels) for _ in labels]
    for target, predicted in pairs:
        matrix[index[target]][index[predicted]] += 1
    return {"labels": labels, "matrix": matrix}


def _kept(result: dict) -> dict:
    intents = result.get("intent_evaluation")
    if intents and "predictions" in intents:
        result = {**result, "intent_evaluation": {**intents, "confusion": confusion(intents["predictions"])}}
    return {part: {k: v for k, v in (result.get(part) or {}).items() if k in KEPT} or None for part in PARTS}


def held_back(text: str, fraction: float) -> bool:
    """Whether an example is in the held-back part: by its text's hash, the same on every run."""
    return int(hashlib.sha256(text.encode()).hexdigest()[:13], 16) < fraction * 16 ** 13


def _holdout_arg() -> float | None:
    raw = request.args.get("holdout")
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not 0 < value < 1:  # NaN fails too
        raise bad_request("'holdout' must be a fraction between 0 and 1, such as 0.2", "bad_holdout")
    return value


def _as_dict(row, full: bool) -> dict:
    report = json.loads(row.report)
    intents = report.get("intent_evaluation") or {}
    summary = {
        "model": row.name,
        "data_version": row.data_version,
        "created_at": row.created_at.timestamp(),
        "requested_by": row.requested_by,
        "holdout": report.get("holdout"),
        "examples": report.get("examples"),
        **{k: intents.get(k) for k in ("accuracy", "f1_score", "precision")},
    }
    return {**summary, **{part: report.get(part) for part in PARTS}} if full else summary


_SELECT = ("SELECT m.name, e.data_version, e.report, e.requested_by, e.created_at FROM nlu_evaluation e "
           "JOIN model m ON m.id = e.model_id")


@bp.put("/<name>")
@requires("models.evaluate")
def evaluate(name: str):
    holdout = _holdout_arg()
    ctx = backend()
    with ctx.engine.connect() as connection:
        model = _model_row(connection, name)
        project = store.load_project(connection)
    if not project.examples:
        raise ApiError(400, "there is no NLU data to evaluate on: import a project first", "no_training_data")
    examples = project.examples
    if holdout is not None:
        examples = [e for e in examples if held_back(e.text, holdout)]
        if not examples:
            raise bad_request(f"none of the {len(project.examples)} examples falls in a held-back part of {holdout:g}; "
                              "take a larger one", "bad_holdout")
    payload = rasa_yaml.dump_yaml(rasa_yaml.nlu_document(dataclasses.replace(project, examples=examples)))
    worker = rasa_client.worker(ctx.settings)
    url = f"{ctx.settings.rasa_x_host}{bp.url_prefix}/{name}/model"
    with ctx.engine.connect() as lock:
        lock.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": _EVALUATION_LOCK})
        try:
            worker.load_model(url, ctx.settings.rasa_x_token)
            result = worker.test_intents(payload)
        except rasa_client.RasaError as exc:
            raise rasa_client.as_api_error(exc) from None
        finally:
            lock.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": _EVALUATION_LOCK})
            lock.commit()
    with ctx.engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO nlu_evaluation (model_id, data_version, report, requested_by) VALUES (:m, :v, :r, :u) "
                "ON CONFLICT (model_id) DO UPDATE SET data_version = EXCLUDED.data_version, report = EXCLUDED.report, "
                "requested_by = EXCLUDED.requested_by, created_at = now()"
            ),
            {"m": model.id, "v": store.version_of(project), "u": g.principal.username,
             "r": json.dumps({**_kept(result), "holdout": holdout, "examples": len(examples)})},
        )
        row = connection.execute(sa.text(f"{_SELECT} WHERE m.id = :m"), {"m": model.id}).one()
    return jsonify(_as_dict(row, full=True))


@bp.delete("/<name>")
@requires("models.evaluate")
def delete_evaluation(name: str):
    with backend().engine.begin() as connection:
        deleted = connection.execute(
            sa.text("DELETE FROM nlu_evaluation e USING model m WHERE m.id = e.model_id AND m.name = :n"), {"n": name}
        ).rowcount
    if not deleted:
        raise ApiError(404, f"model {name!r} has no evaluation", "not_found")
    return "", 204


@bp.get("")
@requires("models.view")
def list_evaluations():
    with backend().engine.connect() as connection:
        rows = connection.execute(sa.text(f"{_SELECT} ORDER BY e.created_at DESC")).all()
    return jsonify([_as_dict(row, full=False) for row in rows])


@bp.get("/<name>")
@requires("models.view")
def get_evaluation(name: str):
    with backend().engine.connect() as connection:
        row = connection.execute(sa.text(f"{_SELECT} WHERE m.name = :n"), {"n": name}).first()
    if row is None:
        raise ApiError(404, f"model {name!r} has no evaluation", "not_found")
    return jsonify(_as_dict(row, full=True))


@bp.get("/<name>/model")
def model_for_the_worker(name: str):
    """The model file, for the worker's PUT /model (Rasa's model server protocol, RASA_X_TOKEN)."""
    check_rasa_x_token(request.args.get("token"))
    with backend().engine.connect() as connection:
        row = _model_row(connection, name)
    return _send_model(row, row.hash)
