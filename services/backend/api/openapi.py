"""GET /api/openapi.json: every route with its access rule.

The table below is written by hand; a test compares it with the app's url_map and checks each
documented access rule against the route's behaviour, so it cannot drift silently.
Access: "public"; "token" (RASA_X_TOKEN as ?token=); "authenticated" (any user, chat guests
included); otherwise the permission the caller's roles must grant (see auth.PERMISSIONS).
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, jsonify

import services

from services.common.facets import FACETS

from ..auth import PERMISSIONS, requires

bp = Blueprint("openapi", __name__, url_prefix="/api")


@dataclass(frozen=True)
class Doc:
    method: str
    path: str
    access: str
    summary: str
    query: tuple[str, ...] = ()


_FILTERS = (
    "start", "until", "minimumConfidence", "maximumConfidence", "minimumNluConfidence", "maximumNluConfidence",
    "minimumUserMessages", "policies", "intent", "entity", "action", "text", "rasa_environment", "is_flagged",
    "review_status", "in_training_data", "exclude_self", "slots", "input_channels", "tags_any",
    "sort_by_latest_event_time", "sort_by_confidence", "limit", "offset",
)  # fmt: skip

ROUTES = (
    Doc("GET", "/api/health", "public", "Status of the database, migrations, Rasa, broker and cache"),
    Doc("GET", "/api/version", "public", "Versions and the RS256 public key of the JWTs"),
    Doc("GET", "/api/openapi.json", "authenticated", "This document"),
    Doc("GET", "/api/config", "token", "endpoints.yml and credentials.yml for rasa --config-endpoint "
        "(environment production or worker)", ("token", "environment")),
    Doc("POST", "/api/auth", "public", "Log in with {username, password}: {access_token}"),
    Doc("POST", "/api/auth/jwt", "public", "Exchange {chat_token} for a guest JWT"),
    Doc("GET", "/api/chatToken", "chat_token.manage", "The current chat token of the share link"),
    Doc("PUT", "/api/chatToken", "chat_token.manage", "Create a new chat token {bot_name, description, lifetime}"),
    Doc("GET", "/api/user", "authenticated", "The caller's account, with its api_token"),
    Doc("PATCH", "/api/user", "authenticated", "Change the caller's {name, data}"),
    Doc("POST", "/api/user/password", "authenticated", "Change the caller's password {old_password, new_password}"),
    Doc("GET", "/api/users", "users.manage", "All users", ("limit", "offset")),
    Doc("POST", "/api/users", "users.manage", "Create a user {username, password, roles}"),
    Doc("PUT", "/api/users/{username}", "users.manage", "Change a user's {roles, name, password}"),
    Doc("DELETE", "/api/users/{username}", "users.manage", "Delete a user"),
    Doc("GET", "/api/models", "models.view", "All models with their tags"),
    Doc("POST", "/api/models", "models.modify", "Upload a model (multipart field 'model', a Rasa .tar.gz)"),
    Doc("GET", "/api/models/{name}", "models.view", "Download a model"),
    Doc("DELETE", "/api/models/{name}", "models.modify", "Delete a model and its file"),
    Doc("PUT", "/api/models/{name}/tags/{tag}", "models.modify", "Give a model a tag (moves it from another model)"),
    Doc("DELETE", "/api/models/{name}/tags/{tag}", "models.modify", "Remove a tag from a model"),
    Doc("GET", "/api/models/tags/{tag}", "token", "Model server: the model with this tag; ETag, 204 on If-None-Match", ("token",)),
    Doc("GET", "/api/projects/default/models/tags/{tag}", "token", "Model server, the Rasa X path", ("token",)),
    Doc("GET", "/api/conversations", "conversations.view", "Conversations, filtered; total in X-Total-Count", _FILTERS),
    *(Doc("GET", f"/api{facet.route}", "conversations.view", f"Distinct {facet.listed}") for facet in FACETS),
    Doc("GET", "/api/conversations/slotValues", "conversations.view", "Distinct slot values", ("slot",)),
    Doc("GET", "/api/conversations/tags", "conversations.view", "All tags with their conversations"),
    Doc("DELETE", "/api/conversations/tags/{tag_id}", "conversations.review", "Delete a tag everywhere"),
    Doc("GET", "/api/conversations/{sender_id}", "conversations.view", "One conversation with its events"),
    Doc("DELETE", "/api/conversations/{sender_id}", "conversations.delete", "Delete a conversation and its events"),
    Doc("GET", "/api/conversations/{sender_id}/tracker", "conversations.view", "The conversation as a Rasa tracker", ("until",)),
    Doc("GET", "/api/conversations/{sender_id}/messages", "conversations.view", "User and bot messages with flags and corrections"),
    Doc("PUT", "/api/conversations/{sender_id}/reviewStatus", "conversations.review", "Set {review_status}"),
    Doc("PUT", "/api/conversations/{sender_id}/messages/{timestamp}/flag", "conversations.review", "Flag a message"),
    Doc("DELETE", "/api/conversations/{sender_id}/messages/{timestamp}/flag", "conversations.review", "Unflag a message"),
    Doc("PUT", "/api/conversations/{sender_id}/messages/{timestamp}/intent", "conversations.review", "Correct a user message's {intent}; adds it to the training data"),
    Doc("DELETE", "/api/conversations/{sender_id}/messages/{timestamp}/intent", "conversations.review", "Undo an intent correction"),
    Doc("GET", "/api/conversations/{sender_id}/tags", "conversations.view", "The conversation's tags"),
    Doc("POST", "/api/conversations/{sender_id}/tags", "conversations.review", "Tag the conversation: [{value, color}]"),
    Doc("DELETE", "/api/conversations/{sender_id}/tags/{tag_id}", "conversations.review", "Untag the conversation"),
    Doc("GET", "/api/statistics", "statistics.view", "Message counts and top intents, actions, entities, policies", ("rasa_environment",)),
)  # fmt: skip


def _roles_granting(access: str) -> list[str]:
    return [role for role, granted in PERMISSIONS.items() if "*" in granted or access in granted]


def document() -> dict:
    paths: dict = {}
    for doc in ROUTES:
        operation: dict = {"summary": doc.summary, "x-access": doc.access}
        params = [
            {"name": part[1:-1], "in": "path", "required": True, "schema": {"type": "string"}}
            for part in doc.path.split("/")
            if part.startswith("{")
        ]
        params += [{"name": name, "in": "query", "required": False, "schema": {"type": "string"}} for name in doc.query]
        if params:
            operation["parameters"] = params
        if doc.access == "token":
            operation["security"] = [{"rasaXToken": []}]
        elif doc.access == "public":
            operation["security"] = []
        else:
            operation["security"] = [{"bearer": []}, {"apiToken": []}]
            if doc.access != "authenticated":
                operation["x-roles"] = _roles_granting(doc.access)
        operation["responses"] = {"default": {"description": "JSON; errors are {message, reason}"}}
        paths.setdefault(doc.path, {})[doc.method.lower()] = operation
    return {
        "openapi": "3.0.3",
        "info": {"title": "rasa-x (rasax-deploy)", "version": services.__version__},
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT (RS256)"},
                "apiToken": {"type": "apiKey", "in": "query", "name": "api_token"},
                "rasaXToken": {"type": "apiKey", "in": "query", "name": "token"},
            }
        },
    }


@bp.get("/openapi.json")
@requires()  # not public in docs/design.md §6
def openapi():
    return jsonify(document())
