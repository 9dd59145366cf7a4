"""The one error shape of the API: JSON `{"message", "reason"}` with a 4xx (or 5xx) status."""

from __future__ import annotations

import logging

import sqlalchemy as sa
from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(self, status: int, message: str, reason: str, headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.reason = reason
        self.headers = headers or {}


def bad_request(message: str, reason: str = "bad_request") -> ApiError:
    return ApiError(400, message, reason)


def not_found(message: str, reason: str = "not_found") -> ApiError:
    return ApiError(404, message, reason)


def error_response(status: int, message: str, reason: str, headers: dict | None = None):
    response = jsonify({"message": message, "reason": reason})
    response.status_code = status
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        return error_response(exc.status, exc.message, exc.reason, exc.headers)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        # Werkzeug's own 404/405/413 and malformed-body errors, in our shape.
        reason = (exc.name or "error").lower().replace(" ", "_")
        return error_response(exc.code or 500, exc.description or exc.name, reason)

    @app.errorhandler(sa.exc.DataError)
    def _data_error(exc: sa.exc.DataError):
        # PostgreSQL refused a value that validation let through (an out-of-range number, say):
        # the client's input is at fault, not the server.
        log.warning("database refused a value: %s", str(exc.orig).splitlines()[0])
        return error_response(400, "a value is out of range or malformed", "bad_request")

    @app.errorhandler(sa.exc.OperationalError)
    def _database_down(exc: sa.exc.OperationalError):
        # The pool's pre-ping reconnects once PostgreSQL is back; until then say so plainly.
        log.error("database unavailable: %s", str(exc.orig).splitlines()[0] if exc.orig else exc)
        return error_response(503, "the database is unavailable; try again shortly", "database_unavailable", {"Retry-After": "5"})

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unhandled error")
        return error_response(500, "internal server error", "internal_error")
