"""The running rasa-x of an installation, reached the way an operator reaches it: over HTTP(S)
through the stack's nginx on the host port `up` remembered, logged in as the admin.

Commands that act on users (and checks that read models) go through the API rather than into
the database: the API applies the same rules (roles, the last admin, password length) whoever
calls it.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass

import requests
from requests.adapters import HTTPAdapter

from . import render
from .layout import read_env
from .preflight import RefusedError
from .stack import Target, url

TIMEOUT = 30


class ApiError(RefusedError):
    """rasa-x answered with an error: its message, the status and what was asked."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class _PinnedTLS(HTTPAdapter):
    """Trusts the system's CAs and the installation's own certificate (self-signed or a chain),
    without a host name check: the CLI talks to its own nginx on this machine, by its address,
    while the certificate names the site's public name."""

    def __init__(self, cert_file: str):
        self.context = ssl.create_default_context()
        self.context.load_verify_locations(cert_file)
        self.context.check_hostname = False
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        kwargs["ssl_context"] = self.context
        kwargs["assert_hostname"] = False
        return super().init_poolmanager(*args, **kwargs)


@dataclass
class StackApi:
    base: str
    session: requests.Session

    @classmethod
    def of(cls, target: Target) -> "StackApi":
        target.require_installation()
        base = url(target).replace("://localhost", "://127.0.0.1")
        session = requests.Session()
        if base.startswith("https://"):
            session.mount("https://", _PinnedTLS(str(target.layout.certs / render.CERT_NAME)))
        return cls(base, session)

    def call(self, method: str, path: str, expect: tuple[int, ...] = (200,), **kwargs) -> requests.Response:
        try:
            response = self.session.request(method, f"{self.base}{path}", timeout=TIMEOUT, **kwargs)
        except requests.ConnectionError:
            raise RefusedError(f"rasa-x does not answer at {self.base}: is the stack running? "
                               f"(`rasax-deploy status`, `rasax-deploy up`)") from None
        if response.status_code not in expect:
            try:
                message = response.json().get("message") or response.text
            except ValueError:
                message = response.text.strip()[:200]
            raise ApiError(f"{method} {path}: {response.status_code} {message}", response.status_code)
        return response

    def login(self, username: str, password: str) -> "StackApi":
        """Log in; from then on every call carries the JWT."""
        try:
            token = self.call("POST", "/api/auth", json={"username": username, "password": password}).json()
        except ApiError as exc:
            if exc.status == 401:
                raise ApiError(f"rasa-x refused the log-in of {username!r} ({exc}); the admin's password was "
                               f"changed since init wrote it to credentials/RASA_X_PASSWORD: put the current "
                               f"one there (0600)", 401) from None
            raise
        self.session.headers["Authorization"] = f"Bearer {token['access_token']}"
        return self


def as_admin(target: Target) -> StackApi:
    """Logged in as the installation's admin (RASA_X_USERNAME, credentials/RASA_X_PASSWORD)."""
    username = read_env(target.layout).get("RASA_X_USERNAME", "admin")
    password = (target.layout.credentials / "RASA_X_PASSWORD").read_text().strip()
    return StackApi.of(target).login(username, password)
