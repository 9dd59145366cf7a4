"""NLU evaluation of a model on rasa-worker: PUT runs it, the report is stored, GET reads it.

The worker starts without a model (its endpoints have no model server, docs/design.md §4), and
Rasa 3.6's /model/test/intents?model= only loads a model from a model server or a local path.
So rasa-x has the worker load the model once (PUT /model with a model server URL pointing back
at rasa-x, checked by RASA_X_TOKEN like the model server), then posts the NLU data to
/model/test/intents. The loaded model is the worker's one shared state: a PostgreSQL advisory
lock makes load-and-test one at a time across rasa-x's processes and replicas.
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from flask import Blueprint, g, jsonify, request

from .. import rasa_client
from ..auth import check_rasa_x_token, requires
from ..context import backend
from ..errors import ApiError
from ..training_data import rasa_yaml, store
from ..training_data.schemas import NULLABLE_NUMBER, listing
from .models import _model_row, _send_model

bp = Blueprint("evaluations", __name__, url_prefix="/api/projects/default/evaluations")

_EVALUATION_LOCK = 0x5241_5845  # "RAXE"
# What is kept of each of Rasa's evaluations: per-label report (precision, recall, f1-score,
# support, confused_with), the averages and the misclassified examples, not every prediction.
KEPT = ("report", "accuracy", "f1_score", "precision", "errors")
PARTS = ("intent_evaluation", "entity_evaluation", "response_selection_evaluation")
_PART = {"type": "object", "nullable": True}  # Rasa's own shape, per label
SUMMARY_OUT = {
    "type": "object",
    "required": ["model", "data_version", "created_at", "requested_by", "accuracy", "f1_score", "precision"],
    "properties": {
        "model": {"type": "string"},
        "data_version": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        "created_at": {"type": "number"},
        "requested_by": {"type": "string", "nullable": True},
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


def _kept(result: dict) -> dict:
    return {part: {k: v for k, v in (result.get(part) or {}).items() if k in KEPT} or None for part in PARTS}


def _as_dict(row, full: bool) -> dict:
    report = json.loads(row.report)
    intents = report.get("intent_evaluation") or {}
    summary = {
        "model": row.name,
        "data_version": row.data_version,
        "created_at": row.created_at.timestamp(),
        "requested_by": row.requested_by,
        **{k: intents.get(k) for k in ("accuracy", "f1_score", "precision")},
    }
    return {**summary, **report} if full else summary


_SELECT = ("SELECT m.name, e.data_version, e.report, e.requested_by, e.created_at FROM nlu_evaluation e "
           "JOIN model m ON m.id = e.model_id")


@bp.put("/<name>")
@requires("models.evaluate")
def evaluate(name: str):
    ctx = backend()
    with ctx.engine.connect() as connection:
        model = _model_row(connection, name)
        project = store.load_project(connection)
    if not project.examples:
        raise ApiError(400, "there is no NLU data to evaluate on: import a project first", "no_training_data")
    payload = rasa_yaml.dump_yaml(rasa_yaml.nlu_document(project))
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
            {"m": model.id, "v": store.version_of(project), "r": json.dumps(_kept(result)), "u": g.principal.username},
        )
        row = connection.execute(sa.text(f"{_SELECT} WHERE m.id = :m"), {"m": model.id}).one()
    return jsonify(_as_dict(row, full=True))


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
