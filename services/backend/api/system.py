"""Health, version and the runtime config Rasa OSS pulls with --config-endpoint."""

from __future__ import annotations

import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
import requests
import sqlalchemy as sa
from flask import Blueprint, jsonify, request

import services
from services.common import rasa_config
from services.common.retry import one_line
from services.db_migration.migrator import database_state

from ..auth import check_rasa_x_token
from ..context import backend
from ..errors import bad_request

bp = Blueprint("system", __name__, url_prefix="/api")

RASA_TIMEOUT_SECONDS = 1.0
# Rasa's version rarely changes; asking on every /api/version call would slow the chat widget.
_VERSION_TTL_SECONDS = 30.0
_versions: dict[str, tuple[float, str | None]] = {}
_versions_lock = threading.Lock()


def _rasa_hosts() -> dict[str, str]:
    settings = backend().settings
    return {"production": settings.rasa_production_host, "worker": settings.rasa_worker_host}


def _rasa_status(url: str) -> dict:
    try:
        response = requests.get(f"{url}/version", timeout=RASA_TIMEOUT_SECONDS)
        response.raise_for_status()
        return {"status": "ok", "version": response.json().get("version")}
    except (requests.RequestException, ValueError, AttributeError) as exc:
        return {"status": "unavailable", "reason": type(exc).__name__}


def _check_database(ctx) -> dict:
    try:
        # Against the head read at start: re-reading the scripts on every probe cost more than
        # the probe itself.
        state = database_state(ctx.engine, ctx.schema_head)
        return {"status": "ok", "migration": state.as_dict()}
    except sa.exc.SQLAlchemyError as exc:
        return {"status": "unavailable", "reason": one_line(exc)}


def _check_broker(ctx) -> dict:
    rabbit = ctx.settings.rabbit
    try:
        with socket.create_connection((rabbit.host, rabbit.port), timeout=RASA_TIMEOUT_SECONDS):
            return {"status": "ok"}
    except OSError as exc:
        return {"status": "unavailable", "reason": type(exc).__name__}


@bp.get("/health")
def health():
    ctx = backend()  # the pool's threads have no application context
    with ThreadPoolExecutor(max_workers=5) as pool:
        database = pool.submit(_check_database, ctx)
        broker = pool.submit(_check_broker, ctx)
        rasa = {env: pool.submit(_rasa_status, url) for env, url in _rasa_hosts().items()}
        cache_ok = pool.submit(ctx.cache.ping)
        result = {
            "database": database.result(),
            "event_broker": broker.result(),
            "cache": {"status": "ok" if cache_ok.result() else "unavailable"},
            "rasa": {env: future.result() for env, future in rasa.items()},
        }
    db = result["database"]
    # rasa-x serves without Rasa, the broker and Redis (slower, or without live data), but not
    # without its database at the current schema.
    healthy = db["status"] == "ok" and db["migration"]["status"] == "completed"
    result["status"] = "ok" if healthy else "unavailable"
    return jsonify(result), 200 if healthy else 503


def _rasa_version(env: str, url: str) -> str | None:
    now = time.monotonic()
    with _versions_lock:
        cached = _versions.get(url)
    if cached and cached[0] > now:
        return cached[1]
    version = _rasa_status(url).get("version")
    with _versions_lock:
        _versions[url] = (now + _VERSION_TTL_SECONDS, version)
    return version


@bp.get("/version")
def version():
    hosts = _rasa_hosts()
    with ThreadPoolExecutor(max_workers=len(hosts)) as pool:
        rasa = {env: pool.submit(_rasa_version, env, url) for env, url in hosts.items()}
        versions = {env: future.result() for env, future in rasa.items()}
    return jsonify(
        {
            "rasa-x": services.__version__,
            "rasa": versions,
            "keys": [{"alg": "RS256", "key": backend().keys.public_pem}],
        }
    )


@bp.get("/config")
def runtime_config():
    check_rasa_x_token(request.args.get("token"))
    environment = request.args.get("environment", rasa_config.PRODUCTION)
    if environment not in rasa_config.ENVIRONMENTS:
        raise bad_request(f"environment must be one of {', '.join(rasa_config.ENVIRONMENTS)}, got {environment!r}",
                          "bad_environment")
    return jsonify(rasa_config.runtime_config(backend().settings, environment))
