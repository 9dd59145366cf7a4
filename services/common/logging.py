"""JSON logging, one object per line, that never prints a secret.

Every service calls `setup_logging(secrets)` once at start. The filter replaces each known secret
value, and anything that looks like `password=...` / `token=...` / a Bearer header, with `***`,
so a secret that reaches a log message by accident (a connection URL in an exception, say)
still does not reach the log.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from typing import Iterable

REDACTED = "***"

# A key ending in one of these words holds a credential (`password=`, `api_token=`, `"secret":`).
# nginx's access log redacts query-string parameters by the same words (deploy/render.py).
CREDENTIAL_WORDS = ("password", "passwd", "pwd", "secret", "token", "salt", "authorization")

# key=value / key: value / "key": "value" pairs whose key names a credential.
_PAIR = re.compile(
    r"""(?ix)
    (["']?(?:%s)["']?
     \s*[=:]\s*["']?)
    (?!\*\*\*)(?:bearer\s+)?[^\s"'&,;}]+
    """ % "|".join(CREDENTIAL_WORDS)
)
# user:password@ in URLs (amqp://, postgresql://, redis://).
_URL_CREDENTIALS = re.compile(r"(?i)([a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s]+(@)")
_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+")


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    for value in sorted((s for s in secrets if s and len(s) >= 4), key=len, reverse=True):
        text = text.replace(value, REDACTED)
    text = _URL_CREDENTIALS.sub(rf"\1{REDACTED}\2", text)
    text = _BEARER.sub(rf"\1{REDACTED}", text)
    return _PAIR.sub(rf"\1{REDACTED}", text)


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str, secrets: Iterable[str] = (), fields: dict | None = None):
        super().__init__()
        self.service = service
        self.secrets = [s for s in secrets if s]
        # Fields on every line, e.g. which worker process of a service wrote it.
        self.fields = fields or {}

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            **self.fields,
            "message": record.getMessage(),
        }
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict):
            entry.update(extra)
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        # Redact each value, not the encoded line: a pattern must never eat a JSON escape.
        return json.dumps({k: redact(v, self.secrets) if isinstance(v, str) else v for k, v in entry.items()}, default=str)


def setup_logging(service: str, secrets: Iterable[str] = (), level: str | int = "INFO", fields: dict | None = None) -> None:
    """Send every logger's records to stderr as redacted JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service, secrets, fields))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # pika logs every frame at INFO; its warnings are what an operator needs.
    logging.getLogger("pika").setLevel(logging.WARNING)
