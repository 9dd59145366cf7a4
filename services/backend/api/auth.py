"""Log-in: POST /api/auth (user JWT), POST /api/auth/jwt (chat token → guest JWT), chat tokens."""

from __future__ import annotations

import secrets
import time
import uuid

import sqlalchemy as sa
from flask import Blueprint, jsonify, request

from ..auth import CHAT_TOKEN_CLAIM, GUEST, JWT_LIFETIME_SECONDS, chat_token_id, issue_jwt, requires, unauthorized
from ..context import backend
from ..errors import ApiError, bad_request
from ..params import json_body, text_field
from ..passwords import verify_password
from ..users import record_failure

bp = Blueprint("auth", __name__, url_prefix="/api")

# Failures per client address within the window before that address is refused for a while:
# slows password spraying across many accounts, which the per-account lock does not see.
IP_FAILURE_LIMIT = 30
IP_WINDOW_SECONDS = 900
CHAT_TOKEN_LIFETIME_SECONDS = 30 * 24 * 3600


def _client_address() -> str:
    return request.remote_addr or "unknown"


def _ip_key() -> str:
    return f"{backend().cache.prefix}:authfail:{_client_address()}"


def _too_many(seconds: int, message: str) -> ApiError:
    return ApiError(429, message, "too_many_attempts", {"Retry-After": str(max(1, seconds))})


@bp.post("/auth")
def login():
    body = json_body()
    username = text_field(body, "username")
    password = body.get("password")
    if not isinstance(password, str) or not password or len(password) > 1024:
        raise bad_request("'password' must be a non-empty string", "bad_body")
    ctx = backend()
    failures = ctx.cache.call(lambda r: r.get(_ip_key()))
    if failures is not None and int(failures) >= IP_FAILURE_LIMIT:
        ttl = ctx.cache.call(lambda r: r.ttl(_ip_key()), IP_WINDOW_SECONDS)
        raise _too_many(ttl, "too many failed log-ins from this address; try again later")

    with ctx.engine.begin() as connection:
        row = connection.execute(
            sa.text(
                "SELECT username, password_hash, locked_until, now() AS now FROM rasa_x_user WHERE username = :u FOR UPDATE"
            ),
            {"u": username},
        ).first()
        if row is not None and row.locked_until is not None and row.locked_until > row.now:
            raise _too_many(int((row.locked_until - row.now).total_seconds()) + 1, "too many failed log-ins; the account is locked for a while")
        ok = verify_password(password, row.password_hash if row else None, ctx.settings.password_salt)
        if ok:
            connection.execute(
                sa.text("UPDATE rasa_x_user SET failed_logins = 0, locked_until = NULL WHERE username = :u"), {"u": username}
            )
            roles = connection.execute(
                sa.text("SELECT role FROM user_to_role_mapping WHERE username = :u ORDER BY role"), {"u": username}
            ).scalars().all()
        elif row is not None:
            record_failure(connection, username)
    if not ok:
        def count(r):
            pipe = r.pipeline()
            pipe.incr(_ip_key())
            pipe.expire(_ip_key(), IP_WINDOW_SECONDS)
            pipe.execute()

        ctx.cache.call(count)
        raise unauthorized("wrong username or password", "bad_credentials")
    return jsonify({"access_token": issue_jwt(username, roles)})


@bp.post("/auth/jwt")
def guest_jwt():
    body = json_body()
    chat_token = text_field(body, "chat_token")
    with backend().engine.connect() as connection:
        row = connection.execute(sa.text("SELECT expires FROM chat_token WHERE token = :t"), {"t": chat_token}).first()
    if row is None or row.expires < time.time():
        raise unauthorized("the chat token is not valid or has expired", "invalid_chat_token")
    # Each guest gets its own sender id, so their conversations stay apart; the JWT ends no later
    # than the chat token it came from, and names it, so that a new chat token revokes it.
    lifetime = min(JWT_LIFETIME_SECONDS, int(row.expires - time.time()))
    return jsonify({"access_token": issue_jwt(uuid.uuid4().hex, [GUEST], max(1, lifetime),
                                              claims={CHAT_TOKEN_CLAIM: chat_token_id(chat_token)})})


def _chat_token_dict(row) -> dict:
    return {"chat_token": row.token, "bot_name": row.bot_name, "description": row.description, "expires": row.expires}


@bp.get("/chatToken")
@requires("chat_token.manage")
def get_chat_token():
    with backend().engine.connect() as connection:
        row = connection.execute(
            sa.text("SELECT token, bot_name, description, expires FROM chat_token ORDER BY created_at DESC LIMIT 1")
        ).first()
    if row is None:
        raise ApiError(404, "no chat token yet: PUT /api/chatToken creates one", "not_found")
    return jsonify(_chat_token_dict(row))


@bp.put("/chatToken")
@requires("chat_token.manage")
def put_chat_token():
    body = request.get_json(silent=True) or {}
    if not isinstance(body, dict):
        raise bad_request("the body must be a JSON object", "bad_body")
    lifetime = body.get("lifetime", CHAT_TOKEN_LIFETIME_SECONDS)
    if not isinstance(lifetime, (int, float)) or isinstance(lifetime, bool) or not 0 < lifetime <= 10 * 365 * 86400:
        raise bad_request("'lifetime' must be a number of seconds up to ten years", "bad_body")
    bot_name = text_field(body, "bot_name", required=False)
    description = body.get("description")
    if description is not None and not isinstance(description, str):
        raise bad_request("'description' must be a string", "bad_body")
    with backend().engine.begin() as connection:
        # One live share link at a time: a new token replaces the old ones.
        connection.execute(sa.text("DELETE FROM chat_token"))
        row = connection.execute(
            sa.text(
                "INSERT INTO chat_token (token, bot_name, description, expires) VALUES (:t, :b, :d, :e) "
                "RETURNING token, bot_name, description, expires"
            ),
            {"t": secrets.token_hex(16), "b": bot_name, "d": description, "e": time.time() + lifetime},
        ).one()
    return jsonify(_chat_token_dict(row))
