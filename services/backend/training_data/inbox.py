"""The NLU inbox: what users said (message_log, which the event service fills) that is neither
training data nor annotated nor archived, one entry per distinct text (its latest message).

Annotating turns the text into a training example through `store.upsert_annotation`, the same
path intent corrections in conversations take; archiving hides the text. Both act on the text,
so every message with it leaves the inbox together, and both take many ids all or nothing.
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..errors import bad_request
from . import annotation, schemas, store
from .rasa_yaml import Example

IN_INBOX = (
    "NOT ml.archived AND ml.annotated_at IS NULL "
    "AND NOT EXISTS (SELECT 1 FROM training_example t WHERE t.hash = ml.hash)"
)
ENTITY_KEYS = ("start", "end", "value", "entity", "role", "group")


def _filters(intent, minimum, maximum, text, start, until) -> tuple[str, dict]:
    where, params = [IN_INBOX], {}
    for value, sql, name in (
        (intent, "ml.intent = :intent", "intent"),
        (minimum, "ml.confidence >= :minimum", "minimum"),
        (maximum, "ml.confidence <= :maximum", "maximum"),
        (start, "ml.time >= :start", "start"),
        (until, "ml.time <= :until", "until"),
    ):
        if value is not None:
            where.append(sql)
            params[name] = value
    if text:
        where.append("ml.text ILIKE :text ESCAPE '\\'")
        params["text"] = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    return " AND ".join(where), params


def _log_json(row) -> dict:
    return {
        "id": row.id,
        "text": row.text,
        "intent": row.intent,
        "confidence": row.confidence,
        "intent_ranking": json.loads(row.intent_ranking or "[]"),
        "entities": json.loads(row.entities or "[]"),
        "time": row.time,
        "conversation_id": row.conversation_id,
        "event_id": row.event_id,
        "model": row.model,
    }


def count(connection: Connection, **filters) -> int:
    """How many texts the inbox shows with these filters."""
    where, params = _filters(**filters)
    # Hash aggregation: count(DISTINCT) would sort every row the filters keep.
    return connection.execute(sa.text(f"SELECT count(*) FROM (SELECT DISTINCT ml.hash FROM message_log ml WHERE {where}) t"), params).scalar()


def page(connection: Connection, *, limit: int, offset: int, **filters) -> list[dict]:
    """The newest first, each text at its latest matching message: a row shows unless a newer
    matching row has the same text. Walks the inbox index and stops after offset + limit rows."""
    where, params = _filters(**filters)
    newer = where.replace("ml.", "newer.")
    rows = connection.execute(
        sa.text(
            f"SELECT ml.* FROM message_log ml WHERE {where} AND NOT EXISTS (SELECT 1 FROM message_log newer "
            f"WHERE newer.hash = ml.hash AND (newer.time, newer.id) > (ml.time, ml.id) AND {newer}) "
            "ORDER BY ml.time DESC, ml.id DESC LIMIT :limit OFFSET :offset"
        ),
        {**params, "limit": limit, "offset": offset},
    )
    return [_log_json(r) for r in rows]


def _in_inbox(connection: Connection, ids: list[int]) -> dict[int, object]:
    rows = connection.execute(
        sa.text(f"SELECT ml.id, ml.hash, ml.text, ml.entities FROM message_log ml WHERE ml.id = ANY(:i) AND {IN_INBOX} FOR UPDATE"),
        {"i": ids},
    ).all()
    found = {r.id: r for r in rows}
    missing = sorted(set(ids) - set(found))
    if missing:
        raise store.Missing(f"no messages {missing} in the inbox (unknown, archived, annotated or already training data)")
    texts: dict[str, int] = {}
    for log_id in ids:
        other = texts.setdefault(found[log_id].hash, log_id)
        if other != log_id:
            raise store.Invalid(f"messages {other} and {log_id} have the same text; annotate or archive it once")
    return found


def predicted_entities(text: str, predicted) -> list[dict]:
    """The entities Rasa predicted, as training data keeps them (span, value, type, role, group)."""
    kept = []
    for entity in predicted if isinstance(predicted, list) else []:
        if not isinstance(entity, dict) or not {"start", "end", "entity"} <= set(entity):
            continue
        value = entity.get("value")
        kept.append({k: entity[k] for k in ENTITY_KEYS if k in entity and k != "value"}
                    | {"value": value if isinstance(value, str) else text[entity["start"] : entity["end"]]})  # fmt: skip
    return kept


def given_entities(text: str, entities: list[dict]) -> list[dict]:
    """Entities from a request body (schema-checked), with their values, checked against the text."""
    # JSON Schema's integers include 42.0: the offsets become ints before they index the text.
    entities = [{**e, "start": int(e["start"]), "end": int(e["end"])} for e in entities]
    entities = [{**e, "value": e.get("value", text[e["start"] : e["end"]])} for e in entities]
    annotation.check_entities(text, entities)
    return entities


def correction_entities(event: dict, body: dict) -> list[dict]:
    """The entities of an intent correction in a conversation: the body's, or Rasa's prediction."""
    if "entities" not in body:
        return predicted_entities(event["text"], (event.get("parse_data") or {}).get("entities"))
    try:
        return given_entities(event["text"], schemas.validate(body["entities"], schemas.ENTITIES, "'entities'"))
    except annotation.AnnotationError as exc:
        raise bad_request(f"'entities': {exc}", "bad_body") from None


def annotate(connection: Connection, annotations: list[dict], annotator: str | None) -> list[dict]:
    """Each {id, intent[, entities]} becomes a training example (the predicted entities when
    none are given); all of them or, when one is not in the inbox, none."""
    rows = _in_inbox(connection, [a["id"] for a in annotations])
    examples = []
    for item in annotations:
        row = rows[item["id"]]
        try:
            if "entities" in item:
                entities = given_entities(row.text, item["entities"])
            else:
                entities = predicted_entities(row.text, json.loads(row.entities or "[]"))
                annotation.check_entities(row.text, entities)
        except annotation.AnnotationError as exc:
            raise store.Invalid(f"message {item['id']}: {exc}") from None
        examples.append(store.upsert_annotation(connection, Example(row.text, item["intent"], entities), annotator))
    return examples


def archive(connection: Connection, ids: list[int]) -> int:
    """Hide the texts of `ids` from the inbox; all or, when one is not there, none."""
    rows = _in_inbox(connection, ids)
    connection.execute(
        sa.text("UPDATE message_log SET archived = true WHERE hash = ANY(:h) AND NOT archived"),
        {"h": [r.hash for r in rows.values()]},
    )
    return len(rows)
