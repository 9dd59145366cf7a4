"""The NLU inbox (Rasa X's /projects/default/logs): user messages to turn into training data."""

from __future__ import annotations

from flask import Blueprint, g, jsonify

from . import with_total
from ..auth import requires
from ..context import backend
from ..params import float_arg, int_arg, json_body
from ..training_data import inbox, schemas
from ..training_data.rasa_yaml import MAX_EXAMPLE_LENGTH, MAX_NAME_LENGTH
from .training_data import INBOX, PROJECT, TRAINING, _transaction, text_arg

bp = Blueprint("nlu_inbox", __name__, url_prefix="/api")
FILTERS = ("intent", "minimumConfidence", "maximumConfidence", "text", "start", "until", "limit", "offset")


@bp.get(f"{PROJECT}/logs")
@requires("training_data.view")
def logs():
    intent, text = text_arg("intent", MAX_NAME_LENGTH), text_arg("text", MAX_EXAMPLE_LENGTH)
    filters = {
        "intent": intent,
        "text": text,
        "minimum": float_arg("minimumConfidence"),
        "maximum": float_arg("maximumConfidence"),
        "start": float_arg("start"),
        "until": float_arg("until"),
    }
    limit, offset = int_arg("limit", 100, 1, 10_000), int_arg("offset", 0)
    ctx = backend()

    def total() -> int:
        with ctx.engine.connect() as connection:
            return inbox.count(connection, **filters)

    # The total reads every inbox row (about 1 s at 300k messages): cached until a new event or
    # a change of ours (annotate, archive, training data), like the conversation totals.
    counted = ctx.cache.cached(ctx.engine, "inbox_total", filters, total)
    with ctx.engine.connect() as connection:
        return with_total(inbox.page(connection, limit=limit, offset=offset, **filters), counted)


@bp.put(f"{PROJECT}/logs/<int:log_id>")
@requires("training_data.edit")
def annotate_one(log_id: int):
    body = schemas.validate(json_body(), schemas.ANNOTATION_IN)
    with _transaction(TRAINING) as connection:
        return jsonify(inbox.annotate(connection, [{**body, "id": log_id}], g.principal.username)[0])


@bp.delete(f"{PROJECT}/logs/<int:log_id>")
@requires("training_data.edit")
def archive_one(log_id: int):
    with _transaction(INBOX) as connection:
        inbox.archive(connection, [log_id])
    return "", 204


@bp.post(f"{PROJECT}/logs/annotations")
@requires("training_data.edit")
def annotate_many():
    body = schemas.validate(json_body(list), schemas.BULK_ANNOTATIONS_IN)
    with _transaction(TRAINING) as connection:
        return jsonify(inbox.annotate(connection, body, g.principal.username))


@bp.post(f"{PROJECT}/logs/archive")
@requires("training_data.edit")
def archive_many():
    ids = schemas.validate(json_body(), schemas.IDS)["ids"]
    with _transaction(INBOX) as connection:
        return jsonify({"archived": inbox.archive(connection, ids)})
