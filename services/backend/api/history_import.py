"""POST /api/conversations/import: `rasax-deploy conversations import` over HTTP, for admins.

The backend reads a PostgreSQL tracker store it can reach (SQLite files live on a host: the
CLI mounts them) and stores its events through the event service's path
(services/event_service/tracker_import.py). A request works for at most `max_seconds` (by default
well within nginx's proxy timeout of 300 s for /api); an import that needs longer answers with
`complete: false` and `last_row`, and the next request passes that `last_row` as `after` to go
on from there. Whatever a cut request committed stays and is recognised again, so repeating a
request is always safe.
"""

from __future__ import annotations

import threading

import jsonschema
from flask import Blueprint, jsonify

from services.common.amqp import DEFAULT_RASA_ENVIRONMENT
from services.event_service import tracker_import as ti

from ..auth import requires
from ..context import backend
from ..errors import ApiError, bad_request
from ..params import json_body

bp = Blueprint("history_import", __name__, url_prefix="/api")

DEFAULT_MAX_SECONDS = 50
_NAME = {"type": "string", "minLength": 1, "maxLength": 255}
IMPORT_IN = {
    "type": "object",
    "additionalProperties": False,
    "required": ["tracker_store"],
    "properties": {
        "tracker_store": {"type": "string", "minLength": 1, "maxLength": 2048,
                          "description": "postgresql://USER@HOST:PORT/DATABASE, as the backend reaches it"},
        "password": {"type": "string", "maxLength": 1024, "description": "the tracker store's, if not in the URL"},
        "conversations": {"type": "array", "items": _NAME, "maxItems": 10000},
        "since": {"type": "number"},
        "until": {"type": "number"},
        "after": {"type": "array", "prefixItems": [_NAME, {"type": "integer"}], "minItems": 2, "maxItems": 2,
                  "items": False, "description": "the last_row of a previous answer: go on after it"},
        "dry_run": {"type": "boolean"},
        "environment": _NAME,
        "max_seconds": {"type": "integer", "minimum": 1, "maximum": 3600},
    },
}
_COUNT = {"type": "integer", "minimum": 0}
IMPORT_OUT = {
    "type": "object",
    "required": ["tracker_store", "dry_run", "complete", "interrupted", "events_selected", "conversations_selected",
                 "events_read", "conversations_done", "stored", "skipped_duplicate", "refused", "refused_reasons",
                 "refused_rows", "seconds", "events_per_second", "last_row"],
    "properties": {
        "tracker_store": {"type": "string"}, "dry_run": {"type": "boolean"}, "complete": {"type": "boolean"},
        "interrupted": {"type": "boolean"},
        **{name: _COUNT for name in ("events_selected", "conversations_selected", "events_read", "conversations_done",
                                     "stored", "skipped_duplicate", "refused")},
        "refused_reasons": {"type": "object", "additionalProperties": _COUNT},
        "refused_rows": {"type": "array", "items": {"type": "object", "properties": {
            "row_id": {"type": ["integer", "null"]}, "sender_id": {"type": ["string", "null"]},
            "reason": {"type": "string"}}}},
        "seconds": {"type": "number"}, "events_per_second": {"type": "number"},
        "last_row": {"type": ["array", "null"], "prefixItems": [{"type": "string"}, {"type": "integer"}]},
    },
}
_VALIDATOR = jsonschema.Draft202012Validator(IMPORT_IN)


@bp.post("/conversations/import")
@requires("conversations.import")
def import_conversations():
    body = json_body()
    error = next(iter(sorted(_VALIDATOR.iter_errors(body), key=lambda e: list(e.path))), None)
    if error is not None:
        where = "/".join(map(str, error.path)) or "body"
        raise bad_request(f"{where}: {error.message}", "bad_body")
    try:
        store = ti.TrackerStore.parse(body["tracker_store"], body.get("password"))
    except ti.TrackerStoreError as exc:
        raise bad_request(str(exc), "bad_tracker_store") from None
    if store.is_sqlite:
        raise bad_request("a SQLite tracker store is a file on a host: import it with `rasax-deploy conversations "
                          "import --tracker-store sqlite:///PATH` there", "bad_tracker_store")
    after = body.get("after")
    selection = ti.Selection(tuple(body.get("conversations", ())), body.get("since"), body.get("until"),
                             (after[0], after[1]) if after else None)
    stop = threading.Event()
    timer = threading.Timer(body.get("max_seconds", DEFAULT_MAX_SECONDS), stop.set)
    timer.start()
    try:
        summary = ti.import_conversations(store, backend().settings.db, selection, dry_run=body.get("dry_run", False),
                                          environment=body.get("environment", DEFAULT_RASA_ENVIRONMENT), stop=stop)
    except ti.TrackerStoreError as exc:
        # The store named in the request cannot be read as Rasa's: the request's fault.
        raise ApiError(422, str(exc), "tracker_store_unreadable") from None
    except ti.EventDatabaseError as exc:
        raise ApiError(503, str(exc), "database_unavailable") from None
    finally:
        timer.cancel()
    return jsonify(summary.as_dict())
