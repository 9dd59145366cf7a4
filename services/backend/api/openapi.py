"""GET /api/openapi.json: every route with its access rule.

The table below is written by hand; a test compares it with the app's url_map and checks each
documented access rule against the route's behaviour, so it cannot drift silently.
Access: "public"; "token" (RASA_X_TOKEN as ?token=); "authenticated" (any user, chat guests
included); otherwise the permission the caller's roles must grant (see auth.PERMISSIONS).
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, jsonify
from prometheus_client import CONTENT_TYPE_LATEST

import services

from services.common.facets import FACETS

from ..auth import PERMISSIONS, requires
from ..training_data import schemas as td
from . import history_import
from .chat import MESSAGE_IN, REPLIES_OUT
from .conversations import EVENTS_PAGE_OUT
from .evaluations import EVALUATION_OUT, LIST_OUT as EVALUATIONS_OUT
from .jobs import JOB_IN, JOB_OUT
from .statistics import ANALYTICS_OUT

bp = Blueprint("openapi", __name__, url_prefix="/api")


@dataclass(frozen=True)
class Doc:
    method: str
    path: str
    access: str
    summary: str
    query: tuple[str, ...] = ()
    # JSON schemas of the request body and the success response, where the route has them.
    body: dict | None = None
    response: dict | None = None
    status: str = "200"
    body_type: str = "application/json"
    response_type: str = "application/json"


_FILTERS = (
    "start", "until", "minimumConfidence", "maximumConfidence", "minimumNluConfidence", "maximumNluConfidence",
    "minimumUserMessages", "policies", "intent", "entity", "action", "text", "rasa_environment", "is_flagged",
    "review_status", "in_training_data", "interactive", "exclude_self", "slots", "input_channels", "tags_any",
    "sort_by_latest_event_time", "sort_by_confidence", "limit", "offset",
)  # fmt: skip

_P = "/api/projects/default"
_PAGE = ("limit", "offset")
_TRAINING_DATA = (
    Doc("POST", f"{_P}/import", "training_data.import", "Import Rasa 3.x YAML files or one .tar.gz/.zip (multipart 'files'); mode=merge|replace", ("mode",), td.IMPORT_IN, td.IMPORT_OUT, body_type="multipart/form-data"),
    Doc("GET", f"{_P}/export", "training_data.view", "The training data as a Rasa project .tar.gz (data/nlu.yml, data/stories.yml, data/rules.yml, domain.yml, config.yml); X-Data-Version", response={"type": "string", "format": "binary"}, response_type="application/gzip"),
    Doc("GET", f"{_P}/data_version", "training_data.view", "The data version (hash of the canonical content) and counts", response=td.VERSION_OUT),
    Doc("GET", f"{_P}/warnings", "training_data.view", "Intents without examples, unused responses, actions missing from the domain, ...", response=td.listing(td.WARNING_OUT)),
    Doc("GET", f"{_P}/training_examples", "training_data.view", "NLU examples, searched; total in X-Total-Count", ("text", "intent", "entity", *_PAGE), response=td.listing(td.EXAMPLE_OUT)),
    Doc("POST", f"{_P}/training_examples", "training_data.edit", "Add one example {text, intent, entities} or a list of them; 409 names an existing text", body={"oneOf": [td.EXAMPLE_IN, td.EXAMPLES_IN]}, response={"oneOf": [td.EXAMPLE_OUT, td.listing(td.EXAMPLE_OUT)]}, status="201"),
    Doc("POST", f"{_P}/training_examples/bulk_delete", "training_data.edit", "Delete the examples {ids}, all or none", body=td.IDS, response=td.DELETED),
    Doc("GET", f"{_P}/training_examples/{{example_id}}", "training_data.view", "One example", response=td.EXAMPLE_OUT),
    Doc("PUT", f"{_P}/training_examples/{{example_id}}", "training_data.edit", "Change an example's {text, intent, entities}", body=td.EXAMPLE_CHANGE, response=td.EXAMPLE_OUT),
    Doc("DELETE", f"{_P}/training_examples/{{example_id}}", "training_data.edit", "Delete an example", status="204"),
    Doc("GET", f"{_P}/intents", "training_data.view", "Intents of the examples with their counts", response=td.listing(td.INTENT_OUT)),
    Doc("GET", f"{_P}/entities", "training_data.view", "Entities of the examples with counts, roles, groups", response=td.listing(td.ENTITY_OUT)),
    *(doc for segment, what in (("synonyms", "synonym"), ("regexes", "regex"), ("lookup_tables", "lookup table")) for doc in (
        Doc("GET", f"{_P}/{segment}", "training_data.view", f"Every {what}", response=td.listing(td.FEATURE_OUT)),
        Doc("PUT", f"{_P}/{segment}/{{name}}", "training_data.edit", f"Create or replace a {what} {{examples}}", body=td.FEATURE_IN, response=td.FEATURE_OUT),
        Doc("DELETE", f"{_P}/{segment}/{{name}}", "training_data.edit", f"Delete a {what}", status="204"),
    )),
    *(doc for part, one, block_in, block_out in (("stories", "story", td.STORY_IN, td.STORY_OUT), ("rules", "rule", td.RULE_IN, td.RULE_OUT)) for doc in (
        Doc("GET", f"/api/{part}", "training_data.view", f"Every {one} (Rasa 3.x YAML shape as JSON)", response=td.listing(block_out)),
        Doc("POST", f"/api/{part}", "training_data.edit", f"Add a {one}; 409 when its name is taken", body=block_in, response=block_out, status="201"),
        Doc("GET", f"/api/{part}/{{block_id}}", "training_data.view", f"One {one}", response=block_out),
        Doc("PUT", f"/api/{part}/{{block_id}}", "training_data.edit", f"Replace a {one}", body=block_in, response=block_out),
        Doc("DELETE", f"/api/{part}/{{block_id}}", "training_data.edit", f"Delete a {one}", status="204"),
    )),
    Doc("GET", "/api/responses", "training_data.view", "The domain's responses", response=td.listing(td.RESPONSE_OUT)),
    Doc("PUT", "/api/responses/{name}", "training_data.edit", "Create or replace a response: its list of variations", body=td.RESPONSE_IN, response=td.RESPONSE_OUT),
    Doc("DELETE", "/api/responses/{name}", "training_data.edit", "Delete a response", status="204"),
    Doc("GET", "/api/domain", "training_data.view", "The domain (intents, entities, slots, forms, actions, responses, session_config)", response=td.DOMAIN),
    Doc("PUT", "/api/domain", "training_data.edit", "Replace the domain", body=td.DOMAIN, response=td.DOMAIN),
    Doc("GET", f"{_P}/config", "training_data.view", "config.yml: pipeline and policies", response=td.CONFIG),
    Doc("PUT", f"{_P}/config", "training_data.edit", "Replace config.yml", body=td.CONFIG, response=td.CONFIG),
    Doc("GET", f"{_P}/logs", "training_data.view", "NLU inbox: user messages not yet training data, one per text; total in X-Total-Count", ("intent", "minimumConfidence", "maximumConfidence", "text", "start", "until", *_PAGE), response=td.listing(td.LOG_OUT)),
    Doc("PUT", f"{_P}/logs/{{log_id}}", "training_data.edit", "Annotate a message {intent, entities}: it becomes a training example", body=td.ANNOTATION_IN, response=td.EXAMPLE_OUT),
    Doc("DELETE", f"{_P}/logs/{{log_id}}", "training_data.edit", "Archive a message (its text leaves the inbox)", status="204"),
    Doc("POST", f"{_P}/logs/annotations", "training_data.edit", "Annotate many [{id, intent, entities}], all or none", body=td.BULK_ANNOTATIONS_IN, response=td.listing(td.EXAMPLE_OUT)),
    Doc("POST", f"{_P}/logs/archive", "training_data.edit", "Archive the messages {ids}, all or none", body=td.IDS, response=td.ARCHIVED),
)  # fmt: skip

ROUTES = (
    Doc("GET", "/api/health", "public", "Status of the database, migrations, Rasa, broker and cache"),
    Doc("GET", "/api/version", "public", "Versions and the RS256 public key of the JWTs"),
    # Public on the stack's internal network only: nginx answers it with 404 (services/backend/metrics.py).
    Doc("GET", "/metrics", "public", "Prometheus metrics of every gunicorn worker: requests by route and status, "
        "latencies, cache lookups, training jobs", response={"type": "string"}, response_type=CONTENT_TYPE_LATEST),
    Doc("GET", "/api/openapi.json", "authenticated", "This document"),
    Doc("GET", "/api/config", "token", "endpoints.yml and credentials.yml for rasa --config-endpoint "
        "(environment production or worker)", ("token", "environment")),
    Doc("POST", "/api/auth", "public", "Log in with {username, password}: {access_token}"),
    Doc("POST", "/api/auth/jwt", "public", "Exchange {chat_token} for a guest JWT"),
    Doc("GET", "/api/auth/chat", "public", "nginx's check before the chat reaches Rasa: 204 when every JWT of the "
        "request (Authorization, ?token= of X-Original-URI) is honoured, else 401", status="204"),
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
    Doc("POST", f"{_P}/models/jobs", "models.train", "Train the current training data on rasa-worker {model_name, tag}: the queued job; 503 when the worker does not answer", body=JOB_IN, response=JOB_OUT, status="202"),
    Doc("GET", f"{_P}/models/jobs", "models.view", "Training jobs, newest first; total in X-Total-Count", _PAGE, response=td.listing(JOB_OUT)),
    Doc("GET", f"{_P}/models/jobs/{{job_id}}", "models.view", "One training job: queued, running, finished or failed with Rasa's reason", response=JOB_OUT),
    Doc("PUT", f"{_P}/evaluations/{{name}}", "models.evaluate", "NLU evaluation of a model on rasa-worker with the current NLU data, or with its held-back part (?holdout=0.2: the examples whose text hashes below that fraction): per-intent precision, recall, F1, the confusion matrix and the misclassified examples, stored", ("holdout",), response=EVALUATION_OUT),
    Doc("DELETE", f"{_P}/evaluations/{{name}}", "models.evaluate", "Delete a model's stored NLU evaluation", status="204"),
    Doc("GET", f"{_P}/evaluations", "models.view", "Stored NLU evaluations, newest first", response=EVALUATIONS_OUT),
    Doc("GET", f"{_P}/evaluations/{{name}}", "models.view", "A model's stored NLU evaluation", response=EVALUATION_OUT),
    Doc("GET", f"{_P}/evaluations/{{name}}/model", "token", "The model file for the worker's PUT /model during an evaluation", ("token",)),
    Doc("POST", f"{_P}/models/jobs/{{job_id}}/retry", "models.train", "Queue a failed, retryable job again", response=JOB_OUT, status="202"),
    Doc("GET", "/api/conversations", "conversations.view", "Conversations, filtered; total in X-Total-Count", _FILTERS),
    *(Doc("GET", f"/api{facet.route}", "conversations.view", f"Distinct {facet.listed}") for facet in FACETS),
    Doc("GET", "/api/conversations/slotValues", "conversations.view", "Distinct slot values", ("slot",)),
    Doc("GET", "/api/conversations/tags", "conversations.view", "All tags with their conversations"),
    Doc("DELETE", "/api/conversations/tags/{tag_id}", "conversations.review", "Delete a tag everywhere"),
    Doc("GET", "/api/conversations/{sender_id}", "conversations.view", "One conversation with its events; events_limit=N: only the newest N, and events_earlier the cursor of the page before (null when none)", ("events_limit",)),
    Doc("GET", "/api/conversations/{sender_id}/events", "conversations.view", "A page of the conversation's events, oldest first: the `limit` (default 200) before the cursor `before` (from events_earlier or earlier), else the newest", ("before", "limit"), response=EVENTS_PAGE_OUT),
    Doc("DELETE", "/api/conversations/{sender_id}", "conversations.delete", "Delete a conversation and its events"),
    Doc("POST", "/api/conversations/import", "conversations.import", "Import Rasa's PostgreSQL tracker store through the event service's path; at most max_seconds a request, then go on with after=last_row", body=history_import.IMPORT_IN, response=history_import.IMPORT_OUT),
    Doc("GET", "/api/conversations/{sender_id}/tracker", "conversations.view", "The conversation as a Rasa tracker", ("until",)),
    Doc("GET", "/api/conversations/{sender_id}/messages", "conversations.view", "User and bot messages with flags and corrections"),
    Doc("GET", "/api/conversations/{sender_id}/test_story", "conversations.view", "The conversation as a Rasa end-to-end test story (tests/*.yml)", response={"type": "string"}, response_type="application/x-yaml"),
    Doc("POST", "/api/conversations/{sender_id}/messages", "conversations.talk", "Talk to your bot: {message} to rasa-production in a conversation of the caller's own (marked interactive); the bot's direct replies, its events come through the broker", body=MESSAGE_IN, response=REPLIES_OUT),
    Doc("GET", "/api/ws", "conversations.view", "Live updates, a WebSocket (docs/design.md, Live updates): the JWT as ?token=, a Bearer header or the first message {type: auth, token}; {type: watch, conversation_id} gets that conversation's new events as {type: events, events}, every subscriber gets {type: conversations_changed}. Without the upgrade: 426", ("token",)),
    Doc("PUT", "/api/conversations/{sender_id}/reviewStatus", "conversations.review", "Set {review_status}"),
    Doc("PUT", "/api/conversations/{sender_id}/messages/{timestamp}/flag", "conversations.review", "Flag a message"),
    Doc("DELETE", "/api/conversations/{sender_id}/messages/{timestamp}/flag", "conversations.review", "Unflag a message"),
    Doc("PUT", "/api/conversations/{sender_id}/messages/{timestamp}/intent", "conversations.review", "Correct a user message's {intent, entities}; adds it to the training data"),
    Doc("DELETE", "/api/conversations/{sender_id}/messages/{timestamp}/intent", "conversations.review", "Undo an intent correction"),
    Doc("GET", "/api/conversations/{sender_id}/tags", "conversations.view", "The conversation's tags"),
    Doc("POST", "/api/conversations/{sender_id}/tags", "conversations.review", "Tag the conversation: [{value, color}]"),
    Doc("DELETE", "/api/conversations/{sender_id}/tags/{tag_id}", "conversations.review", "Untag the conversation"),
    Doc("GET", "/api/statistics", "statistics.view", "Message counts and top intents, actions, entities, policies", ("rasa_environment",)),
    *_TRAINING_DATA,
    Doc("GET", "/api/statistics/analytics", "statistics.view", "Conversations (by latest event), sessions, users and fallbacks per hour/day/week bucket of [from, to] (default the last 30 days), top intents and actions by conversations", ("from", "to", "bucket", "rasa_environment"), response=ANALYTICS_OUT),
    # The web UI (services/backend/api/ui.py): the app's page, public so the log-in form loads;
    # {name} is a built file or a client route, never a path under /api.
    Doc("GET", "/", "public", "The web UI", response_type="text/html"),
    Doc("GET", "/{name}", "public", "A file of the web UI, or its index.html for a client route", response_type="text/html"),
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
        if doc.body is not None:
            operation["requestBody"] = {"required": True, "content": {doc.body_type: {"schema": td.as_json_schema(doc.body)}}}
        if doc.response is not None or doc.status == "204":
            success: dict = {"description": "success"}
            if doc.response is not None:
                success["content"] = {doc.response_type: {"schema": td.as_json_schema(doc.response)}}
            operation["responses"][doc.status] = success
        paths.setdefault(doc.path, {})[doc.method.lower()] = operation
    return {
        # 3.1: its schemas are JSON Schema (2020-12), the validators' language; the tables above
        # write OpenAPI 3.0's `nullable`, which as_json_schema turns into type lists.
        "openapi": "3.1.0",
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
