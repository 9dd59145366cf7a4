"""Who is calling, and may they: JWTs, api tokens, roles and the permission check of each route.

Every route declares its permission with `@requires(...)`; a missing, malformed or expired
credential is a 401, a valid one without the permission a 403. Roles are read from the database
on each request, so removing a role or a user takes effect at once, not when the JWT expires.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import time
from dataclasses import dataclass, field

import jwt
import sqlalchemy as sa
from flask import g, request

from .context import backend
from .errors import ApiError

JWT_LIFETIME_SECONDS = 8 * 3600
GUEST = "guest"
# A guest JWT names the chat token it was issued for (by a hash: the JWT is readable), so that a
# new chat token revokes the guests of the old one.
CHAT_TOKEN_CLAIM = "chat_token_id"

# What each role may do; admin may do everything.
PERMISSIONS: dict[str, set[str]] = {
    "admin": {"*"},
    "annotator": {"conversations.view", "conversations.review", "conversations.talk", "models.view", "statistics.view",
                  "training_data.view", "training_data.edit"},
    "tester": {"conversations.view", "conversations.talk", "models.view", "statistics.view", "training_data.view"},
    GUEST: set(),
}
ROLES = tuple(PERMISSIONS)


@dataclass(frozen=True)
class Principal:
    username: str
    roles: tuple[str, ...]
    # False for chat guests, whose JWT names a user that has no account.
    has_account: bool = True
    data: dict = field(default_factory=dict)

    def may(self, permission: str | None) -> bool:
        if permission is None:
            return True
        return any("*" in PERMISSIONS.get(r, ()) or permission in PERMISSIONS.get(r, ()) for r in self.roles)


def unauthorized(message: str, reason: str = "unauthorized") -> ApiError:
    return ApiError(401, message, reason, {"WWW-Authenticate": "Bearer"})


def chat_token_id(chat_token: str) -> str:
    return hashlib.sha256(chat_token.encode()).hexdigest()[:32]


def issue_jwt(username: str, roles: list[str] | tuple[str, ...], lifetime: int = JWT_LIFETIME_SECONDS,
              scopes: list[str] | None = None, claims: dict | None = None) -> str:
    now = int(time.time())
    payload = {
        # Rasa OSS's `rasa` channel takes the sender id from user.username.
        "user": {"username": username, "roles": list(roles)},
        "username": username,
        "iat": now,
        "exp": now + lifetime,
    }
    if scopes:
        # The `rasa` channel lets a JWT with clientEvents:create name the conversation it writes to.
        payload["scopes"] = scopes
    payload.update(claims or {})
    return jwt.encode(payload, backend().keys.private_pem, algorithm="RS256")


def _decode(token: str) -> dict:
    try:
        payload = jwt.decode(
            token, backend().keys.public_pem, algorithms=["RS256"], options={"require": ["exp", "iat"]}
        )
    except jwt.ExpiredSignatureError:
        raise unauthorized("the token has expired", "token_expired") from None
    except jwt.InvalidTokenError:
        raise unauthorized("the token is not valid", "invalid_token") from None
    user = payload.get("user")
    if not isinstance(user, dict) or not isinstance(user.get("username"), str):
        raise unauthorized("the token names no user", "invalid_token")
    return payload


def load_principal(connection, username: str) -> Principal | None:
    rows = connection.execute(
        sa.text(
            "SELECT u.username, m.role FROM rasa_x_user u "
            "LEFT JOIN user_to_role_mapping m ON m.username = u.username WHERE u.username = :u"
        ),
        {"u": username},
    ).all()
    if not rows:
        return None
    return Principal(username, tuple(sorted(r.role for r in rows if r.role)))


def jwt_principal(token: str) -> Principal:
    """Who a JWT names, if it is still good: signed by us, not expired, its user still there, or,
    for a guest, the chat token it came from still the live one."""
    payload = _decode(token)
    username = payload["user"]["username"]
    with backend().engine.connect() as connection:
        principal = load_principal(connection, username)
        if principal is not None:
            return principal
        if payload["user"].get("roles") == [GUEST]:
            live = connection.execute(
                sa.text("SELECT token FROM chat_token WHERE expires > extract(epoch FROM now())")
            ).scalars().all()
            if payload.get(CHAT_TOKEN_CLAIM) in {chat_token_id(t) for t in live}:
                return Principal(username, (GUEST,), has_account=False)
            raise unauthorized("the share link of this guest token was replaced or has expired", "token_revoked")
    raise unauthorized("the user of this token no longer exists", "invalid_token")


def _authenticate() -> Principal:
    header = request.headers.get("Authorization", "")
    api_token = request.args.get("api_token")
    engine = backend().engine
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise unauthorized("the Authorization header must be 'Bearer <token>'", "invalid_token")
        return jwt_principal(token.strip())
    if api_token:
        with engine.connect() as connection:
            row = connection.execute(
                sa.text("SELECT username FROM rasa_x_user WHERE api_token = :t"), {"t": api_token[:255]}
            ).first()
            principal = load_principal(connection, row.username) if row else None
        if principal is None:
            raise unauthorized("the api_token is not valid", "invalid_token")
        return principal
    raise unauthorized("authentication required: a Bearer JWT or ?api_token=", "missing_token")


def requires(permission: str | None = None):
    """Authenticate the caller, then demand `permission` (None: any authenticated caller)."""

    def decorate(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            principal = _authenticate()
            if not principal.may(permission):
                raise ApiError(403, f"your roles {list(principal.roles)} do not allow this", "forbidden")
            g.principal = principal
            return view(*args, **kwargs)

        wrapper.permission = permission
        return wrapper

    return decorate


def check_rasa_x_token(given: str | None) -> None:
    """The model server and /api/config: Rasa OSS sends RASA_X_TOKEN as ?token=."""
    expected = backend().settings.rasa_x_token
    if not given or not hmac.compare_digest(given.encode(), expected.encode()):
        raise unauthorized("the token is missing or wrong", "invalid_token")
