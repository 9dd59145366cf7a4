"""Talk to your bot: a rasa-x user's messages to rasa-production, in conversations of their own;
and "save as test story": any conversation as a Rasa end-to-end test story.

rasa-x sends each message to Rasa's `rasa` input channel (RasaChatInput, the channel Rasa X's
UI used) with a short-lived JWT signed by the key /api/version publishes, naming the
conversation (scope clientEvents:create), so Rasa runs it like any channel's message: the bot's
answers, and every event of the turn, reach rasa-x through the broker and the event service
like any other conversation's. The HTTP answer carries the bot's direct replies as well, for a
client that does not watch the event stream.

A conversation id is claimed by the first user who talks in it (table interactive_conversation);
the conversation is marked `interactive` (docs/design.md §5), and no one else may write to it.
An id that live traffic already uses cannot be claimed.

Share your bot: a guest's JWT goes from the browser through nginx to Rasa's `rasa` channel, which
checks only its signature and expiry. nginx asks rasa-x first (auth_request to GET
/api/auth/chat), so a JWT rasa-x no longer honours (a guest's whose chat token was replaced, a
removed user's) is refused there with 401, as is a request without one (Rasa would answer 500).
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import sqlalchemy as sa
from flask import Blueprint, Response, g, jsonify, request

from .. import rasa_client, story_export
from ..auth import issue_jwt, jwt_principal, requires, unauthorized
from ..context import backend
from ..errors import ApiError, bad_request
from ..params import json_body
from ..training_data.schemas import validate
from .conversations import _conversation_or_404, _events

bp = Blueprint("chat", __name__, url_prefix="/api")

RASA_CHANNEL_WEBHOOK = "/webhooks/rasa/webhook"
INTERACTIVE_SCOPE = "clientEvents:create"  # rasa.core.channels.rasa_chat.INTERACTIVE_LEARNING_PERMISSION
MESSAGE_JWT_SECONDS = 120
MAX_SENDER_ID = 255
MESSAGE_IN = {
    "type": "object",
    "required": ["message"],
    "properties": {"message": {"type": "string", "minLength": 1, "maxLength": 5000, "pattern": r"\S"}},
    "additionalProperties": False,
}
# Rasa's output channel messages: text, buttons, image, custom, ... as the bot's domain has them.
REPLIES_OUT = {
    "type": "array",
    "items": {"type": "object", "required": ["recipient_id"], "properties": {"recipient_id": {"type": "string"}}},
}


def _claim(connection, sender_id: str, username: str) -> None:
    owner = connection.execute(
        sa.text("SELECT username FROM interactive_conversation WHERE sender_id = :s FOR UPDATE"), {"s": sender_id}
    ).scalar()
    if owner == username:
        return
    if owner is not None:
        raise ApiError(403, f"conversation {sender_id!r} is another user's", "forbidden")
    if connection.execute(sa.text("SELECT 1 FROM conversation WHERE sender_id = :s"), {"s": sender_id}).first():
        raise ApiError(409, f"conversation {sender_id!r} exists and is not one of yours: choose a new id",
                       "conversation_exists")
    inserted = connection.execute(
        sa.text("INSERT INTO interactive_conversation (sender_id, username) VALUES (:s, :u) "
                "ON CONFLICT (sender_id) DO NOTHING"),
        {"s": sender_id, "u": username},
    ).rowcount
    if not inserted:  # someone claimed it between our read and our write
        raise ApiError(409, f"conversation {sender_id!r} was just claimed by another request; try again",
                       "conversation_exists")


@bp.post("/conversations/<path:sender_id>/messages")
@requires("conversations.talk")
def talk(sender_id: str):
    body = validate(json_body(), MESSAGE_IN)
    if not sender_id.strip() or len(sender_id) > MAX_SENDER_ID:
        raise bad_request(f"the conversation id must be 1-{MAX_SENDER_ID} characters", "bad_sender_id")
    principal = g.principal
    if not principal.has_account:
        raise ApiError(403, "chat guests talk through /api/chat", "forbidden")
    ctx = backend()
    with ctx.engine.begin() as connection:
        _claim(connection, sender_id, principal.username)
    token = issue_jwt(principal.username, principal.roles, MESSAGE_JWT_SECONDS, scopes=[INTERACTIVE_SCOPE])
    try:
        replies = rasa_client.production(ctx.settings).send_message(
            RASA_CHANNEL_WEBHOOK, {"message": body["message"], "conversation_id": sender_id},
            headers={"Authorization": f"Bearer {token}"},
        )
    except rasa_client.RasaError as exc:
        raise rasa_client.as_api_error(exc) from None
    return jsonify(replies if isinstance(replies, list) else [])


@bp.get("/auth/chat")
def chat_auth():
    """nginx's auth_request for the paths to Rasa's `rasa` channel: 204 when every JWT the request
    carries is one rasa-x honours, 401 otherwise. Rasa reads the JWT from the Authorization header,
    else from ?token= (rasa.core.channels.rasa_chat), so both are checked; nginx passes the original
    request's URI in X-Original-URI, its headers as they are."""
    credentials = [request.headers["Authorization"]] if "Authorization" in request.headers else []
    query = urlsplit(request.headers.get("X-Original-URI", "")).query
    credentials += parse_qs(query, keep_blank_values=True).get("token", [])
    if not credentials:
        raise unauthorized("the chat needs a JWT: POST /api/auth/jwt exchanges the share link's chat token for one",
                           "missing_token")
    for credential in credentials:
        # As Rasa reads it: "Bearer " removed wherever it is.
        jwt_principal(credential.replace("Bearer ", "").strip())
    return "", 204


@bp.get("/conversations/<path:sender_id>/test_story")
@requires("conversations.view")
def test_story(sender_id: str):
    """The conversation as tests/<id>.yml for `rasa test`."""
    with backend().engine.connect() as connection:
        _conversation_or_404(connection, sender_id)
        events = [event for event, _ in _events(connection, sender_id)]
    response = Response(story_export.as_test_story(sender_id, events), mimetype="application/x-yaml")
    filename = re.sub(r"[^A-Za-z0-9._-]", "_", sender_id)[:100]
    response.headers["Content-Disposition"] = f'attachment; filename="test_{filename}.yml"'
    return response
