"""Reading and validating query parameters and JSON bodies: bad input is a 400, never a 500."""

from __future__ import annotations

import math
from typing import Any

from flask import request

from .errors import bad_request

_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}


def float_arg(name: str) -> float | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    return parse_float(raw, name)


def parse_float(raw: str, name: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise bad_request(f"'{name}' must be a number, got {raw[:50]!r}") from None
    if not math.isfinite(value):
        raise bad_request(f"'{name}' must be a finite number")
    return value


def int_arg(name: str, default: int | None = None, minimum: int = 0, maximum: int = 2**31 - 1) -> int | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise bad_request(f"'{name}' must be a whole number, got {raw[:50]!r}") from None
    if not minimum <= value <= maximum:
        raise bad_request(f"'{name}' must be between {minimum} and {maximum}, got {value}")
    return value


def bool_arg(name: str, default: bool | None = None) -> bool | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise bad_request(f"'{name}' must be true or false, got {raw[:50]!r}")


def list_arg(name: str) -> list[str]:
    """A comma-separated list; repeating the parameter adds to it (Rasa X used commas)."""
    values: list[str] = []
    for raw in request.args.getlist(name):
        values.extend(v.strip() for v in raw.split(",") if v.strip())
    return values


def json_body(kind: type = dict) -> Any:
    body = request.get_json(silent=True)
    if not isinstance(body, kind):
        raise bad_request(f"the body must be a JSON {'object' if kind is dict else 'list'}", "bad_body")
    return body


def text_field(body: dict, name: str, *, required: bool = True, maximum: int = 255) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise bad_request(f"'{name}' must be a non-empty string", "bad_body")
    if len(value) > maximum:
        raise bad_request(f"'{name}' is longer than {maximum} characters", "bad_body")
    return value
