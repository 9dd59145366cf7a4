"""User accounts: creation (including the initial admin), lookup and the login throttle."""

from __future__ import annotations

import datetime as dt
import json
import secrets

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from services.common.config import Settings

from .passwords import hash_password

# Failed logins before an account is locked, and how long: doubling from the base to the cap.
LOCK_AFTER_FAILURES = 5
LOCK_BASE_SECONDS = 30
LOCK_MAX_SECONDS = 900


def new_api_token() -> str:
    return secrets.token_hex(20)


def create_user(
    connection: Connection,
    username: str,
    password: str | None,
    roles: list[str],
    pepper: str,
    name: str | None = None,
    if_absent: bool = False,
) -> bool:
    """Insert a user with its roles; with `if_absent`, an existing user is left untouched."""
    inserted = connection.execute(
        sa.text(
            "INSERT INTO rasa_x_user (username, name, password_hash, api_token) "
            "VALUES (:u, :n, :h, :t) ON CONFLICT (username) DO NOTHING RETURNING username"
        ),
        {"u": username, "n": name, "h": hash_password(password, pepper) if password else None, "t": new_api_token()},
    ).first()
    if inserted is None:
        if if_absent:
            return False
        raise ValueError(f"user {username!r} exists")
    set_roles(connection, username, roles)
    return True


def set_roles(connection: Connection, username: str, roles: list[str]) -> None:
    connection.execute(sa.text("DELETE FROM user_to_role_mapping WHERE username = :u"), {"u": username})
    for role in dict.fromkeys(roles):
        connection.execute(
            sa.text("INSERT INTO user_to_role_mapping (username, role) VALUES (:u, :r)"), {"u": username, "r": role}
        )


def ensure_initial_admin(engine: Engine, settings: Settings) -> None:
    """RASA_X_USERNAME/RASA_X_PASSWORD on first start; later starts never change the account."""
    with engine.begin() as connection:
        create_user(
            connection, settings.rasa_x_username, settings.rasa_x_password, ["admin"], settings.password_salt, if_absent=True
        )


def user_dict(connection: Connection, username: str, with_token: bool = False) -> dict | None:
    row = connection.execute(
        sa.text(
            "SELECT username, name, team, api_token, authentication_mechanism, data, created_at "
            "FROM rasa_x_user WHERE username = :u"
        ),
        {"u": username},
    ).first()
    if row is None:
        return None
    roles = connection.execute(
        sa.text("SELECT role FROM user_to_role_mapping WHERE username = :u ORDER BY role"), {"u": username}
    ).scalars()
    result = {
        "username": row.username,
        "name": row.name,
        "team": row.team,
        "roles": list(roles),
        "authentication_mechanism": row.authentication_mechanism,
        "data": json.loads(row.data) if row.data else None,
        "created_at": row.created_at.isoformat(),
    }
    if with_token:
        result["api_token"] = row.api_token
    return result


def lock_seconds(failed_logins: int) -> int:
    if failed_logins < LOCK_AFTER_FAILURES:
        return 0
    return min(LOCK_MAX_SECONDS, LOCK_BASE_SECONDS * 2 ** (failed_logins - LOCK_AFTER_FAILURES))


def record_failure(connection: Connection, username: str) -> None:
    row = connection.execute(
        sa.text("UPDATE rasa_x_user SET failed_logins = failed_logins + 1 WHERE username = :u RETURNING failed_logins"),
        {"u": username},
    ).first()
    if row and lock_seconds(row.failed_logins):
        until = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=lock_seconds(row.failed_logins))
        connection.execute(sa.text("UPDATE rasa_x_user SET locked_until = :t WHERE username = :u"), {"t": until, "u": username})
