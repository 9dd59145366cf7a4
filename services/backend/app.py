"""The Flask app factory of rasa-x."""

from __future__ import annotations

import logging

import sqlalchemy as sa
from flask import Flask, request
from werkzeug.middleware.proxy_fix import ProxyFix

from services.common.config import Settings, load_settings
from services.common.db import create_engine
from services.db_migration import head_revision, wait_for_schema

from . import metrics
from .api import (auth, chat, conversations, evaluations, history_import, jobs, models, nlu_inbox, openapi,
                  statistics, system, tags, training_data, users)
from .api import live, ui
from .cache import Cache
from .context import Backend
from .errors import ApiError, bad_request, register_error_handlers
from .keys import load_key_pair
from .training import sync_at_start
from .users import ensure_initial_admin

log = logging.getLogger(__name__)
DEFAULT_PORT = 5002
MAX_UPLOAD_BYTES = 4 * 2**30  # models of large language pipelines exceed 1 GiB
MAX_BODY_BYTES = 2**20  # every other body is a small JSON document
# Routes that bound their bodies themselves: model uploads, training data imports.
LARGE_BODY_ENDPOINTS = ("models.upload_model", "training_data.import_project")


def _without_jit(dbapi_connection, _record) -> None:
    # The API's queries are short; PostgreSQL's JIT compiler, which starts on cost estimates
    # alone, spends 100-300 ms compiling the larger counts.
    with dbapi_connection.cursor() as cursor:
        cursor.execute("SET jit = off")
    dbapi_connection.commit()


def create_app(config: Settings | None = None, *, cache_prefix: str = "rasax", schema_timeout: float = 300.0) -> Flask:
    settings = config or load_settings(self_port=DEFAULT_PORT)
    engine = create_engine(settings.db, pool_size=10, max_overflow=10, application_name="rasax-backend")
    sa.event.listen(engine, "connect", _without_jit)
    wait_for_schema(engine, timeout=schema_timeout)
    sync_at_start(engine)
    keys = load_key_pair(settings, engine)
    ensure_initial_admin(engine, settings)

    app = Flask(__name__)
    # nginx (docs/design.md §2) sits in front and appends the client's address to X-Forwarded-For;
    # trusting exactly that one hop gives the log-in throttle real client addresses, which a
    # client cannot forge through nginx.
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1)
    app.config["MAX_CONTENT_LENGTH"] = MAX_UPLOAD_BYTES
    app.json.sort_keys = False
    app.extensions["rasax"] = Backend(settings, engine, keys, Cache(settings.redis, cache_prefix), head_revision())
    register_error_handlers(app)
    metrics.instrument(app)

    @app.before_request
    def _limit_body():
        if (request.content_length or 0) > MAX_BODY_BYTES and request.endpoint not in LARGE_BODY_ENDPOINTS:
            raise ApiError(413, f"the body is larger than {MAX_BODY_BYTES} bytes", "body_too_large")

    @app.before_request
    def _reject_nul():
        # PostgreSQL cannot store NUL in text; refuse it here rather than fail in the driver.
        values = [request.path, *(v for _, vs in request.args.lists() for v in vs)]
        if any("\x00" in v for v in values):
            raise bad_request("NUL characters are not allowed", "bad_characters")

    for module in (system, auth, users, models, jobs, evaluations, conversations, chat, history_import, tags,
                   statistics, training_data, nlu_inbox, openapi):
        app.register_blueprint(module.bp)
    app.register_blueprint(live.bp)
    # The web UI answers every GET path outside /api that no API route takes.
    app.register_blueprint(ui.bp)
    return app
