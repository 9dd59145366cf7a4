"""Share your bot: revocation of guest JWTs, and the check nginx makes (auth_request to
GET /api/auth/chat) before the `rasa` channel's paths reach Rasa, which checks only a JWT's
signature and expiry. Real PostgreSQL and event service; nginx and Rasa on this path are shown in
tests/e2e/test_closing_the_loop.py.
"""

from __future__ import annotations

import time
import uuid
from urllib.parse import quote

import jwt
import sqlalchemy as sa

from services.backend.users import create_user

from .conftest import bearer
from .test_chat import _user_event

CHECK = "/api/auth/chat"


def _guest(client, chat_token: str) -> str:
    response = client.post("/api/auth/jwt", json={"chat_token": chat_token})
    assert response.status_code == 200
    return response.json["access_token"]


def _check(client, header: str | None = None, query: str = "") -> tuple[int, str | None]:
    """What nginx's auth_request sees for a POST /api/chat{query} with this Authorization header."""
    headers = {"X-Original-URI": f"/api/chat{query}"}
    if header is not None:
        headers["Authorization"] = header
    response = client.get(CHECK, headers=headers)
    return response.status_code, (response.json or {}).get("reason") if response.status_code != 204 else None


def test_a_guest_jwt_is_honoured_until_its_chat_token_is_replaced(client, admin):
    old_token = client.put("/api/chatToken", json={"lifetime": 3600}, headers=admin).json["chat_token"]
    guest = _guest(client, old_token)
    claims = jwt.decode(guest, options={"verify_signature": False})
    assert old_token not in guest and claims["chat_token_id"] and claims["exp"] <= time.time() + 3600 + 1
    # Rasa reads the JWT from the header ("Bearer " or bare) or from ?token=: each way is honoured.
    assert _check(client, f"Bearer {guest}") == (204, None)
    assert _check(client, guest) == (204, None)
    assert _check(client, query=f"?token={guest}") == (204, None)
    assert client.get("/api/openapi.json", headers=bearer(guest)).status_code == 200

    new_token = client.put("/api/chatToken", json={}, headers=admin).json["chat_token"]
    # Revoked at once, everywhere: nginx's check (both ways Rasa reads it) and rasa-x's own routes.
    assert _check(client, f"Bearer {guest}") == (401, "token_revoked")
    assert _check(client, query=f"?token={quote(guest)}") == (401, "token_revoked")
    revoked = client.get("/api/openapi.json", headers=bearer(guest))
    assert revoked.status_code == 401 and "share link" in revoked.json["message"]
    assert _check(client, f"Bearer {_guest(client, new_token)}") == (204, None)


def test_a_guest_jwt_ends_with_its_chat_token(client, admin):
    token = client.put("/api/chatToken", json={"lifetime": 2}, headers=admin).json["chat_token"]
    guest = _guest(client, token)
    assert jwt.decode(guest, options={"verify_signature": False})["exp"] <= time.time() + 2 + 1
    assert _check(client, f"Bearer {guest}") == (204, None)
    time.sleep(3)
    assert _check(client, f"Bearer {guest}")[0] == 401


def test_the_chat_check_refuses_no_jwt_and_any_bad_one(client, admin, tokens, app, db_engine):
    chat_token = client.put("/api/chatToken", json={}, headers=admin).json["chat_token"]
    guest = _guest(client, chat_token)
    assert _check(client) == (401, "missing_token")
    assert _check(client, query="?token=") == (401, "invalid_token")
    assert _check(client, "Bearer not-a-jwt") == (401, "invalid_token")
    # Rasa falls back to ?token= when the header does not decode, so every JWT given must be good.
    assert _check(client, f"Bearer {guest}", "?token=forged")[0] == 401
    assert _check(client, "Bearer forged", f"?token={guest}")[0] == 401
    # A guest-shaped JWT signed by us but not issued for a chat token (say, an old one) is refused.
    now = int(time.time())
    keys = app.extensions["rasax"].keys
    bare = jwt.encode({"user": {"username": "g", "roles": ["guest"]}, "username": "g", "iat": now, "exp": now + 60},
                      keys.private_pem, algorithm="RS256")
    assert _check(client, f"Bearer {bare}") == (401, "token_revoked")
    # Users' JWTs pass while the user exists.
    settings = app.extensions["rasax"].settings
    name = f"chatter-{uuid.uuid4().hex[:6]}"
    with db_engine.begin() as connection:
        create_user(connection, name, "chatter-password-123", ["tester"], settings.password_salt)
    user = client.post("/api/auth", json={"username": name, "password": "chatter-password-123"}).json["access_token"]
    assert _check(client, f"Bearer {user}") == (204, None)
    with db_engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM rasa_x_user WHERE username = :u"), {"u": name})
    assert _check(client, f"Bearer {user}") == (401, "invalid_token")


def test_deleting_a_talked_to_conversation_frees_its_id(client, tokens, admin, event_service, db_engine):
    sender = f"claimed-{uuid.uuid4().hex[:8]}"
    annotator, tester = bearer(tokens["annotator"]), bearer(tokens["tester"])
    # rasa-production is absent here (503), but the id is the annotator's from the first message on.
    assert client.post(f"/api/conversations/{sender}/messages", json={"message": "hi"}, headers=annotator).status_code == 503
    event_service.publish_and_wait([(_user_event(sender), "production")])  # its first event, as from Rasa
    assert client.delete(f"/api/conversations/{sender}", headers=admin).status_code == 204
    with db_engine.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM interactive_conversation WHERE sender_id = :s"),
                                  {"s": sender}).scalar() == 0
    # Free again: another user may claim it (503 again: past the claim, at the missing Rasa).
    assert client.post(f"/api/conversations/{sender}/messages", json={"message": "hi"}, headers=tester).status_code == 503
