"""Conversation tags: the tag list, and the tags of one conversation."""

from __future__ import annotations

import re

import sqlalchemy as sa
from flask import Blueprint, jsonify, request

from ..auth import requires
from ..context import backend
from ..errors import bad_request, not_found

bp = Blueprint("tags", __name__, url_prefix="/api")

_COLOR = re.compile(r"^#[0-9a-fA-F]{3,8}$")
_TAGS_OF = sa.text(
    "SELECT t.id, t.value, t.color FROM conversation_to_tag_mapping x JOIN conversation_tag t ON t.id = x.tag_id "
    "WHERE x.conversation_id = :s ORDER BY t.value"
)


def _tag(row) -> dict:
    return {"id": row.id, "value": row.value, "color": row.color}


@bp.get("/conversations/tags")
@requires("conversations.view")
def all_tags():
    with backend().engine.connect() as connection:
        rows = connection.execute(
            sa.text(
                "SELECT t.id, t.value, t.color, ARRAY(SELECT conversation_id FROM conversation_to_tag_mapping x "
                "WHERE x.tag_id = t.id ORDER BY 1) AS conversations FROM conversation_tag t ORDER BY t.value"
            )
        ).all()
    return jsonify([dict(_tag(row), conversations=list(row.conversations)) for row in rows])


@bp.delete("/conversations/tags/<int:tag_id>")
@requires("conversations.review")
def delete_tag(tag_id: int):
    with backend().engine.begin() as connection:
        deleted = connection.execute(sa.text("DELETE FROM conversation_tag WHERE id = :i"), {"i": tag_id}).rowcount
    if not deleted:
        raise not_found(f"no tag {tag_id}")
    backend().cache.invalidate("tags")
    return "", 204


def _require_conversation(connection, sender_id: str) -> None:
    if not connection.execute(sa.text("SELECT 1 FROM conversation WHERE sender_id = :s"), {"s": sender_id}).first():
        raise not_found(f"no conversation {sender_id!r}")


@bp.get("/conversations/<path:sender_id>/tags")
@requires("conversations.view")
def conversation_tags(sender_id: str):
    with backend().engine.connect() as connection:
        _require_conversation(connection, sender_id)
        return jsonify([_tag(row) for row in connection.execute(_TAGS_OF, {"s": sender_id})])


def _requested_tags() -> list[tuple[str, str | None]]:
    body = request.get_json(silent=True)
    items = body if isinstance(body, list) else [body]
    tags = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("value"), str) or not item["value"].strip():
            raise bad_request("send a tag {'value', 'color'} or a list of them", "bad_body")
        if len(item["value"]) > 255:
            raise bad_request("a tag value is longer than 255 characters", "bad_body")
        color = item.get("color")
        if color is not None and (not isinstance(color, str) or not _COLOR.match(color)):
            raise bad_request("'color' must look like #a1b2c3", "bad_body")
        tags.append((item["value"].strip(), color))
    if not tags:
        raise bad_request("send at least one tag", "bad_body")
    return tags


@bp.post("/conversations/<path:sender_id>/tags")
@requires("conversations.review")
def add_tags(sender_id: str):
    tags = _requested_tags()
    with backend().engine.begin() as connection:
        _require_conversation(connection, sender_id)
        for value, color in tags:
            # An existing tag keeps its colour unless one is given.
            tag_id = connection.execute(
                sa.text(
                    "INSERT INTO conversation_tag (value, color) VALUES (:v, coalesce(:c, '#8a8a8a')) "
                    "ON CONFLICT (value) DO UPDATE SET color = coalesce(:c, conversation_tag.color) RETURNING id"
                ),
                {"v": value, "c": color},
            ).scalar()
            connection.execute(
                sa.text(
                    "INSERT INTO conversation_to_tag_mapping (conversation_id, tag_id) VALUES (:s, :t) ON CONFLICT DO NOTHING"
                ),
                {"s": sender_id, "t": tag_id},
            )
        result = [_tag(row) for row in connection.execute(_TAGS_OF, {"s": sender_id})]
    backend().cache.invalidate("tags")
    return jsonify(result), 201


@bp.delete("/conversations/<path:sender_id>/tags/<int:tag_id>")
@requires("conversations.review")
def remove_tag(sender_id: str, tag_id: int):
    with backend().engine.begin() as connection:
        deleted = connection.execute(
            sa.text("DELETE FROM conversation_to_tag_mapping WHERE conversation_id = :s AND tag_id = :t"),
            {"s": sender_id, "t": tag_id},
        ).rowcount
    if not deleted:
        raise not_found(f"conversation {sender_id!r} has no tag {tag_id}")
    backend().cache.invalidate("tags")
    return "", 204
