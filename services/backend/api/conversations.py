"""Conversations: the filtered list, facet lists, one conversation, and the review actions."""

from __future__ import annotations

import json

import sqlalchemy as sa
from flask import Blueprint, g, jsonify, request

from services.common.counters import COUNTERS
from services.common.facets import FACETS, SLOTS, Facet

from . import with_total
from ..auth import requires
from ..context import backend
from ..conversation_total import conversation_total
from ..conversation_query import (
    REVIEW_STATUSES,
    filter_from_request,
    get_conversation,
    page_of_conversations,
)
from ..errors import bad_request, not_found
from ..params import float_arg, int_arg, json_body, parse_float, text_field
from ..training_data.inbox import correction_entities
from ..training_data.rasa_yaml import Example
from ..training_data.store import forget_annotation, upsert_annotation

bp = Blueprint("conversations", __name__, url_prefix="/api")


@bp.get("/conversations")
@requires("conversations.view")
def conversations():
    f = filter_from_request(request, g.principal.username)
    ctx = backend()

    # The total is kept apart from the page: paging and re-sorting reuse it, and new events for
    # recent conversations leave it valid (see conversation_total). The page walks an index
    # and stops after `limit` rows.
    # While no event arrives, both come straight from Redis.
    total = ctx.cache.cached(
        ctx.engine, "conversation_total", f.count_key(), lambda: conversation_total(ctx.engine, ctx.cache, f)
    )

    def page():
        with ctx.engine.connect() as connection:
            return page_of_conversations(connection, f)

    items = ctx.cache.cached(ctx.engine, "conversations", f.cache_key(), page)
    return with_total(items, total)


# ----- facets ---------------------------------------------------------------------------
def _distinct(table: str, column: str) -> list[str]:
    # A loose index scan: one probe per distinct value instead of reading every row.
    sql = (
        f"WITH RECURSIVE v AS (SELECT min({column}) AS x FROM {table} UNION ALL "
        f"SELECT (SELECT min({column}) FROM {table} WHERE {column} > v.x) FROM v WHERE v.x IS NOT NULL) "
        "SELECT x FROM v WHERE x IS NOT NULL"
    )
    ctx = backend()

    def compute():
        with ctx.engine.connect() as connection:
            return list(connection.execute(sa.text(sql)).scalars())

    return ctx.cache.cached(ctx.engine, f"facet:{table}", {}, compute)


def _facet_route(facet: Facet) -> None:
    """GET /api<route>: the distinct values of the facet's first column."""

    @requires("conversations.view")
    def view():
        values = _distinct(facet.table, facet.column)
        return with_total(values, len(values))

    bp.add_url_rule(facet.route, facet.endpoint, view, methods=["GET"])


for _facet in FACETS:
    _facet_route(_facet)


@bp.get("/conversations/slotValues")
@requires("conversations.view")
def slot_values():
    slot = request.args.get("slot") or None
    ctx = backend()

    def compute():
        name, value = SLOTS.columns
        sql = f"SELECT DISTINCT {name}, {value} FROM {SLOTS.table}"
        if slot is not None:
            sql += f" WHERE {name} = :s"
        with ctx.engine.connect() as connection:
            rows = connection.execute(sa.text(sql + " ORDER BY 1, 2"), {"s": slot}).all()
        # `value` decoded for display; `value_json` is what the `slots` filter takes.
        return [{"slot": r[0], "value": json.loads(r[1]), "value_json": r[1]} for r in rows]

    values = ctx.cache.cached(ctx.engine, "slot_values", {"slot": slot}, compute)
    return with_total(values, len(values))


# ----- one conversation -----------------------------------------------------------------
def _conversation_or_404(connection, sender_id: str) -> dict:
    conversation = get_conversation(connection, sender_id)
    if conversation is None:
        raise not_found(f"no conversation {sender_id!r}")
    return conversation


def _events(connection, sender_id: str, until: float | None = None) -> list[tuple[dict, bool]]:
    sql = "SELECT data, is_flagged FROM conversation_event WHERE conversation_id = :s"
    if until is not None:
        sql += " AND timestamp <= :u"
    rows = connection.execute(sa.text(sql + " ORDER BY timestamp, id"), {"s": sender_id, "u": until}).all()
    return [(json.loads(row.data), row.is_flagged) for row in rows]


# Long conversations are read a page at a time, newest first: `events_limit` on the
# conversation, then GET .../events?before=<cursor> for the page before. The cursor is the
# (timestamp, id) of the oldest event read, so a page is one index range scan whatever its depth,
# and events arriving meanwhile (always newer) shift nothing.
MAX_EVENTS_PAGE = 5000
EVENTS_PAGE_OUT = {
    "type": "object",
    "required": ["events", "earlier"],
    "properties": {
        "events": {"type": "array", "items": {"type": "object"}, "description": "oldest first, each with is_flagged"},
        "earlier": {"type": "string", "nullable": True, "description": "the `before` of the page before; null at the first event"},
    },
    "additionalProperties": False,
}


def _cursor(raw: str) -> tuple[float, int]:
    timestamp, _, event_id = raw.rpartition(":")
    try:
        return parse_float(timestamp, "before"), int(event_id)
    except ValueError:
        raise bad_request(f"'before' must be a cursor from 'earlier', got {raw[:50]!r}") from None


def _events_page(connection, sender_id: str, limit: int, before: tuple[float, int] | None) -> dict:
    sql = "SELECT id, timestamp, data, is_flagged FROM conversation_event WHERE conversation_id = :s"
    if before is not None:
        sql += " AND (timestamp, id) < (:t, :i)"
    rows = connection.execute(
        sa.text(sql + " ORDER BY timestamp DESC, id DESC LIMIT :n"),
        {"s": sender_id, "t": before and before[0], "i": before and before[1], "n": limit + 1},
    ).all()
    page = rows[:limit][::-1]
    earlier = f"{page[0].timestamp!r}:{page[0].id}" if len(rows) > limit and page else None
    return {"events": [dict(json.loads(r.data), is_flagged=r.is_flagged) for r in page], "earlier": earlier}


@bp.get("/conversations/<path:sender_id>")
@requires("conversations.view")
def conversation(sender_id: str):
    limit = int_arg("events_limit", None, 1, MAX_EVENTS_PAGE)
    with backend().engine.connect() as connection:
        result = _conversation_or_404(connection, sender_id)
        if limit is None:
            result["events"] = [dict(event, is_flagged=flagged) for event, flagged in _events(connection, sender_id)]
            result["events_earlier"] = None
        else:
            page = _events_page(connection, sender_id, limit, None)
            result["events"], result["events_earlier"] = page["events"], page["earlier"]
    return jsonify(result)


@bp.get("/conversations/<path:sender_id>/events")
@requires("conversations.view")
def conversation_events(sender_id: str):
    limit = int_arg("limit", 200, 1, MAX_EVENTS_PAGE)
    before = request.args.get("before")
    with backend().engine.connect() as connection:
        _conversation_or_404(connection, sender_id)
        return jsonify(_events_page(connection, sender_id, limit, _cursor(before) if before else None))


def tracker_from_events(sender_id: str, events: list[dict]) -> dict:
    """The tracker state Rasa's GET /conversations/{id}/tracker would show for these events."""
    slots: dict = {}
    latest_message: dict = {}
    latest_action_name = None
    latest_input_channel = None
    paused = False
    for event in events:
        kind = event.get("event")
        if kind == "slot":
            slots[event.get("name")] = event.get("value")
        elif kind == "restart":
            slots = {}
        elif kind == "user":
            latest_message = event.get("parse_data") or {}
            latest_input_channel = event.get("input_channel")
        elif kind == "action":
            latest_action_name = event.get("name")
        elif kind == "pause":
            paused = True
        elif kind == "resume":
            paused = False
    return {
        "sender_id": sender_id,
        "slots": slots,
        "latest_message": latest_message,
        "latest_event_time": events[-1].get("timestamp") if events else None,
        "followup_action": None,
        "paused": paused,
        "events": events,
        "latest_input_channel": latest_input_channel,
        "latest_action_name": latest_action_name,
        "active_loop": {},
    }


@bp.get("/conversations/<path:sender_id>/tracker")
@requires("conversations.view")
def tracker(sender_id: str):
    until = float_arg("until")
    with backend().engine.connect() as connection:
        _conversation_or_404(connection, sender_id)
        events = [event for event, _ in _events(connection, sender_id, until)]
    return jsonify(tracker_from_events(sender_id, events))


@bp.get("/conversations/<path:sender_id>/messages")
@requires("conversations.view")
def messages(sender_id: str):
    with backend().engine.connect() as connection:
        _conversation_or_404(connection, sender_id)
        events = _events(connection, sender_id)
        corrections = dict(
            connection.execute(
                sa.text("SELECT message_timestamp, intent FROM conversation_message_correction WHERE conversation_id = :s"),
                {"s": sender_id},
            ).all()
        )
    result = []
    for event, flagged in events:
        if event.get("event") not in ("user", "bot"):
            continue
        message = {
            "type": event["event"],
            "text": event.get("text"),
            "timestamp": event.get("timestamp"),
            "data": event.get("parse_data") if event["event"] == "user" else event.get("data"),
            "input_channel": event.get("input_channel"),
            "is_flagged": flagged,
        }
        if event["event"] == "user":
            message["corrected_intent"] = corrections.get(event.get("timestamp"))
        result.append(message)
    return jsonify({"sender_id": sender_id, "messages": result})


# Every table with rows of a conversation that no foreign key deletes along with it.
DERIVED_TABLES = ("message_log", "conversation_event", "conversation_session", *(facet.table for facet in FACETS))


@bp.delete("/conversations/<path:sender_id>")
@requires("conversations.delete")
def delete_conversation(sender_id: str):
    ctx = backend()
    with ctx.engine.begin() as connection:
        found = connection.execute(
            sa.text("SELECT 1 FROM conversation WHERE sender_id = :s FOR UPDATE"), {"s": sender_id}
        ).first()
        if not found:
            raise not_found(f"no conversation {sender_id!r}")
        counts = connection.execute(
            sa.text(
                f"SELECT rasa_environment, {', '.join(f'{c.count_sql()} AS {c.column}' for c in COUNTERS)} "
                "FROM conversation_event WHERE conversation_id = :s GROUP BY rasa_environment"
            ),
            {"s": sender_id},
        ).all()
        # The counters are sums over shards, so taking the events off any one shard of the
        # environment keeps the totals right.
        for row in counts:
            connection.execute(
                sa.text(
                    f"UPDATE conversation_statistic SET {', '.join(f'{c.column} = {c.column} - :{c.column}' for c in COUNTERS)} "
                    "WHERE rasa_environment = :e AND shard = "
                    "(SELECT min(shard) FROM conversation_statistic WHERE rasa_environment = :e)"
                ),
                {**{c.column: row._mapping[c.column] for c in COUNTERS}, "e": row.rasa_environment},
            )
        # The rows the event service derives have no foreign key (checking one on every stored
        # event costs more than this), so they are deleted here, in the same transaction.
        for table in DERIVED_TABLES:
            connection.execute(sa.text(f"DELETE FROM {table} WHERE conversation_id = :s"), {"s": sender_id})
        connection.execute(sa.text("DELETE FROM conversation WHERE sender_id = :s"), {"s": sender_id})
        # A Talk-to-your-bot claim (api/chat.py) goes with its conversation: the id is free again.
        connection.execute(sa.text("DELETE FROM interactive_conversation WHERE sender_id = :s"), {"s": sender_id})
    ctx.cache.invalidate("conversations")
    return "", 204


@bp.put("/conversations/<path:sender_id>/reviewStatus")
@requires("conversations.review")
def review_status(sender_id: str):
    body = json_body()
    status = body.get("review_status")
    if status not in REVIEW_STATUSES:
        raise bad_request(f"'review_status' must be one of {list(REVIEW_STATUSES)}", "bad_body")
    ctx = backend()
    with ctx.engine.begin() as connection:
        updated = connection.execute(
            sa.text("UPDATE conversation SET review_status = :r WHERE sender_id = :s"), {"r": status, "s": sender_id}
        ).rowcount
        if not updated:
            raise not_found(f"no conversation {sender_id!r}")
    ctx.cache.invalidate("review")
    with ctx.engine.connect() as connection:
        return jsonify(get_conversation(connection, sender_id))


def _set_flag(sender_id: str, timestamp: str, flagged: bool):
    ts = parse_float(timestamp, "timestamp")
    ctx = backend()
    with ctx.engine.begin() as connection:
        updated = connection.execute(
            sa.text(
                "UPDATE conversation_event SET is_flagged = :f WHERE conversation_id = :s AND timestamp = :t "
                "AND type_name IN ('user', 'bot')"
            ),
            {"f": flagged, "s": sender_id, "t": ts},
        ).rowcount
    if not updated:
        raise not_found(f"conversation {sender_id!r} has no message at {timestamp}")
    ctx.cache.invalidate("flags")
    return jsonify({"sender_id": sender_id, "timestamp": ts, "is_flagged": flagged})


@bp.put("/conversations/<path:sender_id>/messages/<timestamp>/flag")
@requires("conversations.review")
def flag_message(sender_id: str, timestamp: str):
    return _set_flag(sender_id, timestamp, True)


@bp.delete("/conversations/<path:sender_id>/messages/<timestamp>/flag")
@requires("conversations.review")
def unflag_message(sender_id: str, timestamp: str):
    return _set_flag(sender_id, timestamp, False)


def _user_event(connection, sender_id: str, ts: float) -> dict:
    row = connection.execute(
        sa.text(
            "SELECT data FROM conversation_event WHERE conversation_id = :s AND timestamp = :t AND type_name = 'user' "
            "ORDER BY id LIMIT 1"
        ),
        {"s": sender_id, "t": ts},
    ).first()
    if row is None:
        raise not_found(f"conversation {sender_id!r} has no user message at {ts!r}")
    event = json.loads(row.data)
    if not isinstance(event.get("text"), str):
        raise bad_request("this user message has no text to correct", "no_text")
    return event


@bp.put("/conversations/<path:sender_id>/messages/<timestamp>/intent")
@requires("conversations.review")
def correct_intent(sender_id: str, timestamp: str):
    ts = parse_float(timestamp, "timestamp")
    body = json_body()
    intent = text_field(body, "intent")
    ctx = backend()
    with ctx.engine.begin() as connection:
        event = _user_event(connection, sender_id, ts)
        entities = correction_entities(event, body)
        connection.execute(
            sa.text(
                "INSERT INTO conversation_message_correction (conversation_id, message_timestamp, intent, annotator_id) "
                "VALUES (:s, :t, :i, :a) ON CONFLICT (conversation_id, message_timestamp) "
                "DO UPDATE SET intent = EXCLUDED.intent, annotator_id = EXCLUDED.annotator_id, created_at = now()"
            ),
            {"s": sender_id, "t": ts, "i": intent, "a": g.principal.username},
        )
        # The corrected message becomes an NLU training example, as in Rasa X, by the NLU inbox's path.
        example = upsert_annotation(connection, Example(event["text"], intent, entities), g.principal.username)
    ctx.cache.invalidate("training")
    return jsonify({"sender_id": sender_id, "timestamp": ts, "intent": intent, "text": event["text"], "entities": example["entities"]})


@bp.delete("/conversations/<path:sender_id>/messages/<timestamp>/intent")
@requires("conversations.review")
def delete_intent_correction(sender_id: str, timestamp: str):
    ts = parse_float(timestamp, "timestamp")
    ctx = backend()
    with ctx.engine.begin() as connection:
        event = _user_event(connection, sender_id, ts)
        deleted = connection.execute(
            sa.text("DELETE FROM conversation_message_correction WHERE conversation_id = :s AND message_timestamp = :t"),
            {"s": sender_id, "t": ts},
        ).rowcount
        if not deleted:
            raise not_found(f"the message at {ts!r} has no intent correction")
        forget_annotation(connection, event["text"])
    ctx.cache.invalidate("training")
    return "", 204
