"""Training jobs: train the current training data on rasa-worker (services/backend/training_jobs.py)."""

from __future__ import annotations

from flask import Blueprint, current_app, g, jsonify

from . import with_total
from .. import rasa_client, training_jobs
from ..auth import requires
from ..context import backend
from ..errors import ApiError
from ..params import int_arg, json_body
from ..training_data.schemas import NULLABLE_NUMBER, NULLABLE_STRING, validate

bp = Blueprint("jobs", __name__, url_prefix="/api/projects/default/models/jobs")

_MODEL_NAME = {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$"}  # as models.py checks it
JOB_IN = {
    "type": "object",
    "properties": {
        "model_name": _MODEL_NAME,
        "tag": {**_MODEL_NAME, "description": "tag the trained model, e.g. production: Rasa pulls it"},
    },
    "additionalProperties": False,
}
JOB_OUT = {
    "type": "object",
    "required": ["id", "status", "model", "tag", "data_version", "requested_by", "attempts", "error", "retryable",
                 "created_at", "started_at", "finished_at"],
    "properties": {
        "id": {"type": "integer"},
        "status": {"type": "string", "enum": ["queued", "running", "finished", "failed"]},
        "model": {"type": "string"},
        "tag": NULLABLE_STRING,
        "data_version": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        "requested_by": NULLABLE_STRING,
        "attempts": {"type": "integer", "minimum": 0},
        "error": NULLABLE_STRING,
        "retryable": {"type": "boolean"},
        "created_at": {"type": "number"},
        "started_at": NULLABLE_NUMBER,
        "finished_at": NULLABLE_NUMBER,
    },
    "additionalProperties": False,
}


@bp.post("")
@requires("models.train")
def create_job():
    body = validate(json_body(), JOB_IN)
    ctx = backend()
    try:
        # Refuse at once, storing nothing, when the worker is not there to train.
        rasa_client.worker(ctx.settings).ping()
    except rasa_client.RasaError as exc:
        raise rasa_client.as_api_error(exc) from None
    with ctx.engine.begin() as connection:
        job = training_jobs.enqueue(connection, ctx.settings.rasa_worker_host, g.principal.username,
                                    model_name=body.get("model_name"), tag=body.get("tag"))
    training_jobs.runner(current_app._get_current_object()).kick()
    return jsonify(training_jobs.as_dict(job)), 202


@bp.get("")
@requires("models.view")
def list_jobs():
    limit, offset = int_arg("limit", 50, 1, 1000), int_arg("offset", 0)
    with backend().engine.begin() as connection:
        # A job whose rasa-x stopped shows as failed the moment anyone looks, not later.
        training_jobs.fail_stale(connection)
        rows, total = training_jobs.listing(connection, limit, offset)
    if any(row.status == "queued" for row in rows):
        training_jobs.runner(current_app._get_current_object()).kick()
    return with_total([training_jobs.as_dict(row) for row in rows], total)


@bp.get("/<int:job_id>")
@requires("models.view")
def get_job(job_id: int):
    with backend().engine.begin() as connection:
        training_jobs.fail_stale(connection)
        row = training_jobs.get(connection, job_id)
    if row is None:
        raise ApiError(404, f"no training job {job_id}", "not_found")
    return jsonify(training_jobs.as_dict(row))


@bp.post("/<int:job_id>/retry")
@requires("models.train")
def retry_job(job_id: int):
    ctx = backend()
    with ctx.engine.begin() as connection:
        training_jobs.fail_stale(connection)
        row = training_jobs.retry(connection, job_id)
        busy = training_jobs.worker_busy_error(ctx.settings)
        if busy is not None:
            raise busy  # and the retry is rolled back
    training_jobs.runner(current_app._get_current_object()).kick()
    return jsonify(training_jobs.as_dict(row)), 202
