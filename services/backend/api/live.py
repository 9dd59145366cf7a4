"""GET /api/ws: live updates over a WebSocket (protocol: docs/design.md, "Live updates").

A browser cannot set headers on a WebSocket, so the JWT comes as `?token=` (nginx logs it as
***) or as the first message, {"type": "auth", "token": ...}. A bad `?token=` is refused with the
API's 401 before the upgrade; a socket whose first message is no valid auth is closed with 4401.
Clients that can set headers may send `Authorization: Bearer` instead. The caller needs
conversations.view, checked again on every watch (roles are read from the
database, so a removed role ends the watching at once) and the socket ends when the JWT expires.

Each socket runs in the gunicorn thread that accepted it (services/backend/live.py says how many
one worker holds): it waits on simple-websocket's event, which both an incoming message and the
hub ring, and does all sending itself.
"""

from __future__ import annotations

import json
import threading
import time

import jwt
from flask import Blueprint, current_app, g, request
from flask_sock import Sock

from .. import live
from ..auth import jwt_principal, load_principal, requires
from ..context import backend
from ..errors import ApiError

bp = Blueprint("live", __name__, url_prefix="/api")
sock = Sock()

PERMISSION = "conversations.view"
AUTH_SECONDS = 10
MAX_MESSAGE_BYTES = 64 * 1024
PING_SECONDS = 25  # below every proxy's idle timeout; also finds clients that vanished
MAX_SENDER_ID = 255
LISTEN_WAIT_SECONDS = 5
# Close codes: the 4000s are the application's (RFC 6455 §7.4.2), mirroring the HTTP statuses.
CLOSE_UNAUTHORIZED, CLOSE_FORBIDDEN, CLOSE_BAD_MESSAGE = 4401, 4403, 4400
CLOSE_GOING_AWAY, CLOSE_TRY_AGAIN_LATER = 1001, 1013


@bp.record_once
def _start(state) -> None:
    app = state.app
    ctx = app.extensions["rasax"]
    app.extensions["rasax-live"] = live.Hub(ctx.settings.db, ctx.engine, live.sockets_per_worker())
    app.config.setdefault("SOCK_SERVER_OPTIONS", {"ping_interval": PING_SECONDS,
                                                  "max_message_size": MAX_MESSAGE_BYTES,
                                                  "thread_class": _DaemonThread})


class _DaemonThread(threading.Thread):
    """simple-websocket's reader thread of a socket, which notices a closed socket only at its next
    ping: as a daemon it does not hold up a stopping worker's exit until then."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, daemon=True, **kwargs)


def _hub() -> live.Hub:
    return current_app.extensions["rasax-live"]


class _Refused(Exception):
    def __init__(self, code: int, reason: str):
        super().__init__(reason)
        self.code, self.reason = code, reason


def _authorize(token: str):
    """(principal, expiry) of a JWT that may watch conversations; ApiError otherwise."""
    principal = jwt_principal(token)
    if not principal.may(PERMISSION):
        raise ApiError(403, f"your roles {list(principal.roles)} do not allow this", "forbidden")
    # jwt_principal verified the signature and the expiry already.
    return principal, jwt.decode(token, options={"verify_signature": False})["exp"]


@bp.before_request
def _before_upgrade():
    """Refuse with a plain HTTP answer what can be refused before the upgrade."""
    if request.endpoint != "live.live_updates":
        return
    if _hub().count() >= _hub().capacity:
        raise ApiError(503, "this server holds as many live-update sockets as it may; try again later",
                       "too_many_sockets", {"Retry-After": "5"})
    scheme, _, header_token = request.headers.get("Authorization", "").partition(" ")
    token = request.args.get("token") or (header_token.strip() if scheme.lower() == "bearer" else None)
    g.live_auth = _authorize(token) if token else None


@bp.get("/ws")
@requires(PERMISSION)
def upgrade_required():
    """The same path without the WebSocket upgrade: say what is expected (after the same checks)."""
    raise ApiError(426, "/api/ws is a WebSocket: connect with an Upgrade: websocket request", "upgrade_required",
                   {"Upgrade": "websocket"})


def _first_message_auth(ws):
    raw = ws.receive(timeout=AUTH_SECONDS)
    message = _parse(raw) if raw is not None else None
    if not message or message.get("type") != "auth" or not isinstance(message.get("token"), str):
        raise _Refused(CLOSE_UNAUTHORIZED, "authentication required: ?token=<JWT> or a first message "
                                           '{"type": "auth", "token": "<JWT>"}')
    try:
        return _authorize(message["token"])
    except ApiError as exc:
        raise _Refused(CLOSE_UNAUTHORIZED if exc.status == 401 else CLOSE_FORBIDDEN, exc.message) from None


def _parse(raw) -> dict | None:
    try:
        message = json.loads(raw)
    except (TypeError, ValueError):
        return None
    return message if isinstance(message, dict) else None


def live_updates(ws):
    try:
        principal, expires = g.live_auth or _first_message_auth(ws)
    except _Refused as refused:
        ws.close(refused.code, refused.reason)
        return
    hub = _hub()
    subscriber = hub.subscribe(ws.event.set)
    if subscriber is None:
        ws.close(CLOSE_TRY_AGAIN_LATER, "too many live-update sockets on this server; try again later")
        return
    try:
        ws.send(json.dumps({"type": "ready", "username": principal.username}))
        _serve(ws, hub, subscriber, principal.username, expires)
    finally:
        hub.unsubscribe(subscriber)


live_updates.permission = PERMISSION  # what the OpenAPI document and its test read
sock.route("/ws", bp=bp)(live_updates)


def _serve(ws, hub: live.Hub, subscriber: live.Subscriber, username: str, expires: float) -> None:
    while True:
        # Woken by a client message, the socket closing, or the hub; the timeout notices a
        # stopping worker and an expiring JWT.
        ws.event.wait(timeout=1.0)
        ws.event.clear()
        while (raw := ws.receive(timeout=0)) is not None:
            try:
                ws.send(json.dumps(_handle(_parse(raw), hub, subscriber, username)))
            except _Refused as refused:
                ws.close(refused.code, refused.reason)
                return
        if not ws.connected:
            return
        for message in subscriber.take():
            ws.send(message)
        if subscriber.overflowed:
            ws.close(CLOSE_TRY_AGAIN_LATER, "the client did not keep up; reconnect and reload")
            return
        if live.stopping():
            ws.close(CLOSE_GOING_AWAY, "the server is restarting; reconnect")
            return
        if time.time() >= expires:
            ws.close(CLOSE_UNAUTHORIZED, "the token has expired; reconnect with a new one")
            return


def _error(message: str, reason: str = "bad_message") -> dict:
    return {"type": "error", "reason": reason, "message": message}


def _handle(message: dict | None, hub: live.Hub, subscriber: live.Subscriber, username: str) -> dict:
    if message is None:
        return _error("a message must be a JSON object")
    kind = message.get("type")
    if kind == "ping":
        return {"type": "pong"}
    if kind != "watch":
        return _error(f"unknown message type {str(kind)[:40]!r}: use 'watch' or 'ping'")
    sender_id = message.get("conversation_id")
    if set(message) - {"type", "conversation_id"}:
        return _error("a watch message has only 'type' and 'conversation_id'")
    if sender_id is not None and not (isinstance(sender_id, str) and 0 < len(sender_id) <= MAX_SENDER_ID
                                      and "\x00" not in sender_id):
        return _error(f"conversation_id must be null or a string of 1-{MAX_SENDER_ID} characters")
    with backend().engine.connect() as connection:
        principal = load_principal(connection, username)
    if principal is None or not principal.may(PERMISSION):
        raise _Refused(CLOSE_FORBIDDEN, "you may no longer view conversations")
    # Once the process's LISTEN is in place, every event committed from now on is announced, and
    # those committed before are in the stored ids (and in what the client reads next).
    if not hub.listening.wait(LISTEN_WAIT_SECONDS):
        return _error("live updates are not available right now (the database does not answer); "
                      "watch again shortly", "unavailable")
    subscriber.watch(sender_id, hub.stored_ids(sender_id) if sender_id is not None else [])
    return {"type": "watching", "conversation_id": sender_id}
