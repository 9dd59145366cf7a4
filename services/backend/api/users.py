"""Users: the caller's own account (/api/user) and, for admins, everyone's (/api/users)."""

from __future__ import annotations

import json

import sqlalchemy as sa
from flask import Blueprint, g, jsonify

from . import with_total
from ..auth import ROLES, requires
from ..context import backend
from ..errors import ApiError, bad_request, not_found
from ..params import int_arg, json_body, text_field
from ..passwords import hash_password, verify_password
from ..users import create_user, set_roles, user_dict

bp = Blueprint("users", __name__, url_prefix="/api")

MIN_PASSWORD_LENGTH = 8


def _password(body: dict, name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or len(value) < MIN_PASSWORD_LENGTH or len(value) > 1024:
        raise bad_request(f"'{name}' must be a string of {MIN_PASSWORD_LENGTH} to 1024 characters", "bad_password")
    return value


def _roles(body: dict) -> list[str]:
    roles = body.get("roles", body.get("role"))
    if isinstance(roles, str):
        roles = [roles]
    if not isinstance(roles, list) or not roles or not all(isinstance(r, str) for r in roles):
        raise bad_request("'roles' must be a non-empty list of role names", "bad_roles")
    unknown = [r for r in roles if r not in ROLES]
    if unknown:
        raise bad_request(f"unknown roles {unknown}; known: {list(ROLES)}", "bad_roles")
    return roles


def _account_required():
    if not g.principal.has_account:
        raise ApiError(403, "chat guests have no account", "forbidden")


@bp.get("/user")
@requires()
def get_own_user():
    if not g.principal.has_account:
        return jsonify({"username": g.principal.username, "roles": list(g.principal.roles)})
    with backend().engine.connect() as connection:
        return jsonify(user_dict(connection, g.principal.username, with_token=True))


@bp.patch("/user")
@requires()
def patch_own_user():
    _account_required()
    body = json_body()
    updates = {}
    if "name" in body:
        updates["name"] = text_field(body, "name")
    if "data" in body:
        updates["data"] = json.dumps(body["data"])
    if not updates:
        raise bad_request("nothing to change: give 'name' and/or 'data'", "bad_body")
    with backend().engine.begin() as connection:
        sets = ", ".join(f"{column} = :{column}" for column in updates)
        connection.execute(sa.text(f"UPDATE rasa_x_user SET {sets} WHERE username = :u"), {**updates, "u": g.principal.username})
        return jsonify(user_dict(connection, g.principal.username, with_token=True))


@bp.post("/user/password")
@requires()
def change_own_password():
    _account_required()
    body = json_body()
    old = body.get("old_password")
    new = _password(body, "new_password")
    if "new_password_confirm" in body and body["new_password_confirm"] != new:
        raise bad_request("'new_password_confirm' differs from 'new_password'", "bad_password")
    pepper = backend().settings.password_salt
    with backend().engine.begin() as connection:
        stored = connection.execute(
            sa.text("SELECT password_hash FROM rasa_x_user WHERE username = :u"), {"u": g.principal.username}
        ).scalar()
        if not isinstance(old, str) or not verify_password(old, stored, pepper):
            raise ApiError(403, "the old password is wrong", "bad_credentials")
        connection.execute(
            sa.text("UPDATE rasa_x_user SET password_hash = :h WHERE username = :u"),
            {"h": hash_password(new, pepper), "u": g.principal.username},
        )
    return jsonify({"message": "password changed"})


@bp.get("/users")
@requires("users.manage")
def list_users():
    limit = int_arg("limit", 1000, 1, 10000)
    offset = int_arg("offset", 0)
    with backend().engine.connect() as connection:
        total = connection.execute(sa.text("SELECT count(*) FROM rasa_x_user")).scalar()
        names = connection.execute(
            sa.text("SELECT username FROM rasa_x_user ORDER BY username LIMIT :l OFFSET :o"), {"l": limit, "o": offset}
        ).scalars().all()
        users = [user_dict(connection, name) for name in names]
    return with_total(users, total)


@bp.post("/users")
@requires("users.manage")
def create_new_user():
    body = json_body()
    username = text_field(body, "username")
    password = _password(body, "password")
    roles = _roles(body)
    with backend().engine.begin() as connection:
        if not create_user(connection, username, password, roles, backend().settings.password_salt, name=body.get("name") if isinstance(body.get("name"), str) else None, if_absent=True):
            raise ApiError(409, f"user {username!r} exists", "user_exists")
        return jsonify(user_dict(connection, username)), 201


def _other_admins(connection, username: str) -> int:
    return connection.execute(
        sa.text("SELECT count(*) FROM user_to_role_mapping WHERE role = 'admin' AND username <> :u"), {"u": username}
    ).scalar()


@bp.put("/users/<username>")
@requires("users.manage")
def update_user(username: str):
    body = json_body()
    with backend().engine.begin() as connection:
        if user_dict(connection, username) is None:
            raise not_found(f"no user {username!r}")
        if "roles" in body or "role" in body:
            roles = _roles(body)
            if "admin" not in roles and not _other_admins(connection, username):
                raise ApiError(409, "this would leave no admin", "last_admin")
            set_roles(connection, username, roles)
        if "name" in body:
            connection.execute(sa.text("UPDATE rasa_x_user SET name = :n WHERE username = :u"), {"n": text_field(body, "name"), "u": username})
        if "password" in body:
            connection.execute(
                sa.text("UPDATE rasa_x_user SET password_hash = :h, failed_logins = 0, locked_until = NULL WHERE username = :u"),
                {"h": hash_password(_password(body, "password"), backend().settings.password_salt), "u": username},
            )
        return jsonify(user_dict(connection, username))


@bp.delete("/users/<username>")
@requires("users.manage")
def delete_user(username: str):
    with backend().engine.begin() as connection:
        if user_dict(connection, username) is None:
            raise not_found(f"no user {username!r}")
        if not _other_admins(connection, username):
            raise ApiError(409, "this would leave no admin", "last_admin")
        connection.execute(sa.text("DELETE FROM rasa_x_user WHERE username = :u"), {"u": username})
    return jsonify({"username": username})
