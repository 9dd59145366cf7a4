"""`users list|create|update|delete`: rasa-x's accounts, through its API (deploy/stack_api.py).

Passwords come from a prompt or stdin (the CLI's business), never from argv: a command line is
readable by every user of the machine and lands in shell histories.
"""

from __future__ import annotations

from urllib.parse import quote

from .stack_api import StackApi


def _path(username: str) -> str:
    return f"/api/users/{quote(username, safe='')}"


def list_users(api: StackApi) -> list[dict]:
    return api.call("GET", "/api/users", params={"limit": 10000}).json()


def create(api: StackApi, username: str, password: str, roles: list[str], name: str | None = None) -> dict:
    body = {"username": username, "password": password, "roles": roles}
    if name is not None:
        body["name"] = name
    return api.call("POST", "/api/users", expect=(201,), json=body).json()


def update(api: StackApi, username: str, roles: list[str] | None = None, password: str | None = None,
           name: str | None = None) -> dict:
    body = {key: value for key, value in (("roles", roles), ("password", password), ("name", name))
            if value is not None}
    if not body:
        raise ValueError("nothing to change: give --role, --name or a new password (--password / --password-stdin)")
    return api.call("PUT", _path(username), json=body).json()


def delete(api: StackApi, username: str) -> None:
    api.call("DELETE", _path(username))
