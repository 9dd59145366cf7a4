"""The conversation list's filters, turned into one SQL WHERE over table conversation.

Every filter narrows (AND); a filter that takes a list matches any of its values. Facet filters
are EXISTS look-ups in the one-row-per-value tables the event service fills, so each costs an
index probe per candidate conversation. Confidence ranges apply to a conversation's lowest
confidence, the figure a reviewer sorts by: minimumConfidence=0.2&maximumConfidence=0.6 keeps
the conversations whose least confident action scored between 0.2 and 0.6.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from services.common.facets import FACETS, SINGLE_VALUE_FACETS, SLOTS

from .errors import bad_request
from .params import bool_arg, float_arg, int_arg, list_arg

REVIEW_STATUSES = ("unread", "reviewed", "saved_for_later")
MAX_LIMIT = 1000


@dataclass
class ConversationFilter:
    start: float | None = None
    until: float | None = None
    minimum_confidence: float | None = None
    maximum_confidence: float | None = None
    minimum_nlu_confidence: float | None = None
    maximum_nlu_confidence: float | None = None
    minimum_user_messages: int | None = None
    policies: list[str] = field(default_factory=list)
    intents: list[str] = field(default_factory=list)
    entities: list[str] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    text: str | None = None
    rasa_environments: list[str] = field(default_factory=list)
    is_flagged: bool | None = None
    review_statuses: list[str] = field(default_factory=list)
    in_training_data: bool | None = None
    # Talk-to-your-bot conversations (rasa-x's own users talking to the bot) are listed apart.
    interactive: bool = False
    exclude_sender: str | None = None
    slots: list[tuple[str, str | None]] = field(default_factory=list)
    input_channels: list[str] = field(default_factory=list)
    tags_any: list[int] = field(default_factory=list)
    sort_by_latest_event_time: bool = True
    sort_by_confidence: bool = False
    limit: int = 20
    offset: int = 0

    def cache_key(self) -> dict:
        return asdict(self)

    def count_key(self) -> dict:
        """What the total depends on: paging and order do not change it."""
        key = asdict(self)
        for name in ("limit", "offset", "sort_by_latest_event_time", "sort_by_confidence"):
            del key[name]
        return key


def _slot_filters(raw_values: list[str]) -> list[tuple[str, str | None]]:
    """`slots=name` (the slot was set) or `slots=name:value`; the value is JSON, else a string."""
    result = []
    for raw in raw_values:
        name, colon, value = raw.partition(":")
        if not name.strip():
            raise bad_request(f"'slots' entries are 'name' or 'name:value', got {raw[:50]!r}")
        if not colon:
            result.append((name.strip(), None))
            continue
        try:
            json.loads(value)
            canonical = value
        except ValueError:
            canonical = json.dumps(value)
        result.append((name.strip(), canonical))
    return result


def filter_from_request(request, username: str | None) -> ConversationFilter:
    review = list_arg("review_status")
    unknown = [r for r in review if r not in REVIEW_STATUSES]
    if unknown:
        raise bad_request(f"unknown review_status {unknown}; known: {list(REVIEW_STATUSES)}")
    try:
        tags = [int(t) for t in list_arg("tags_any")]
    except ValueError:
        raise bad_request("'tags_any' must be a comma-separated list of tag ids") from None
    text = request.args.get("text") or None
    if text is not None and len(text) > 1000:
        raise bad_request("'text' is longer than 1000 characters")
    return ConversationFilter(
        start=float_arg("start"),
        until=float_arg("until"),
        minimum_confidence=float_arg("minimumConfidence"),
        maximum_confidence=float_arg("maximumConfidence"),
        minimum_nlu_confidence=float_arg("minimumNluConfidence"),
        maximum_nlu_confidence=float_arg("maximumNluConfidence"),
        minimum_user_messages=int_arg("minimumUserMessages"),
        **{facet.name: list_arg(facet.parameter) for facet in SINGLE_VALUE_FACETS},
        text=text,
        rasa_environments=list_arg("rasa_environment"),
        is_flagged=bool_arg("is_flagged"),
        review_statuses=review,
        in_training_data=bool_arg("in_training_data"),
        interactive=bool_arg("interactive", False),
        exclude_sender=username if bool_arg("exclude_self", False) else None,
        # Slot values may hold commas (JSON), so only repetition separates them.
        slots=_slot_filters(request.args.getlist(SLOTS.parameter)),
        tags_any=tags,
        sort_by_latest_event_time=bool_arg("sort_by_latest_event_time", True),
        sort_by_confidence=bool_arg("sort_by_confidence", False),
        limit=int_arg("limit", 20, 0, MAX_LIMIT),
        offset=int_arg("offset", 0),
    )


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def where_clause(f: ConversationFilter) -> tuple[str, dict]:
    # A literal, not a parameter: the list's partial indexes are on NOT interactive.
    clauses = ["c.interactive" if f.interactive else "NOT c.interactive"]
    params: dict = {}

    def param(value) -> str:
        name = f"p{len(params)}"
        params[name] = value
        return f":{name}"

    for value, sql in (
        (f.start, "c.latest_event_time >= {}"),
        (f.until, "c.latest_event_time <= {}"),
        (f.minimum_confidence, "c.minimum_action_confidence >= {}"),
        (f.maximum_confidence, "c.minimum_action_confidence <= {}"),
        (f.minimum_nlu_confidence, "c.minimum_intent_confidence >= {}"),
        (f.maximum_nlu_confidence, "c.minimum_intent_confidence <= {}"),
        (f.minimum_user_messages, "c.number_user_messages >= {}"),
        # Its messages are NLU examples and the stories cover its turns (services/backend/training.py).
        (f.in_training_data, "(c.in_training_data AND c.turns_covered) = {}"),
        (f.exclude_sender, "c.sender_id <> {}"),
    ):
        if value is not None:
            clauses.append(sql.format(param(value)))
    if f.rasa_environments:
        clauses.append(f"c.rasa_environment = ANY({param(f.rasa_environments)})")
    if f.review_statuses:
        clauses.append(f"c.review_status = ANY({param(f.review_statuses)})")
    for facet in SINGLE_VALUE_FACETS:
        values = getattr(f, facet.name)
        if values:
            clauses.append(
                f"EXISTS (SELECT 1 FROM {facet.table} m WHERE m.conversation_id = c.sender_id "
                f"AND m.{facet.column} = ANY({param(values)}))"
            )
    if f.text:
        clauses.append(
            "EXISTS (SELECT 1 FROM message_log ml WHERE ml.conversation_id = c.sender_id "
            f"AND ml.text ILIKE {param('%' + _escape_like(f.text) + '%')})"
        )
    if f.is_flagged is not None:
        exists = "EXISTS (SELECT 1 FROM conversation_event e WHERE e.conversation_id = c.sender_id AND e.is_flagged)"
        clauses.append(exists if f.is_flagged else f"NOT {exists}")
    slot_name, slot_value = SLOTS.columns
    for name, value in f.slots:
        condition = f"s.{slot_name} = {param(name)}"
        if value is not None:
            # Compared as JSON, so the spacing of the stored text does not matter.
            condition += f" AND s.{slot_value}::jsonb = CAST({param(value)} AS jsonb)"
        clauses.append(f"EXISTS (SELECT 1 FROM {SLOTS.table} s WHERE s.conversation_id = c.sender_id AND {condition})")
    if f.tags_any:
        clauses.append(
            "EXISTS (SELECT 1 FROM conversation_to_tag_mapping t WHERE t.conversation_id = c.sender_id "
            f"AND t.tag_id = ANY({param(f.tags_any)}))"
        )
    return " AND ".join(clauses), params


def _order(f: ConversationFilter, alias: str) -> str:
    if f.sort_by_confidence:
        return f"{alias}.minimum_action_confidence ASC NULLS LAST, {alias}.sender_id"
    direction = "DESC" if f.sort_by_latest_event_time else "ASC"
    # Plain DESC/ASC (no NULLS clause) so PostgreSQL walks ix_conversation_latest_event_time.
    return f"{alias}.latest_event_time {direction}, {alias}.sender_id {direction}"


_DETAIL_FACETS = tuple(facet for facet in FACETS if facet.in_details)
DETAIL_COLUMNS = "".join(
    f"ARRAY(SELECT {f.column} FROM {f.table} m WHERE m.conversation_id = c.sender_id ORDER BY 1) AS {f.name},\n"
    for f in _DETAIL_FACETS
) + """
  EXISTS (SELECT 1 FROM conversation_event e WHERE e.conversation_id = c.sender_id AND e.is_flagged)
    AS has_flagged_messages,
  ARRAY(SELECT message_timestamp FROM conversation_message_correction k WHERE k.conversation_id = c.sender_id
        ORDER BY 1) AS corrected_messages,
  COALESCE((SELECT json_agg(json_build_object('id', t.id, 'value', t.value, 'color', t.color) ORDER BY t.value)
            FROM conversation_to_tag_mapping x JOIN conversation_tag t ON t.id = x.tag_id
            WHERE x.conversation_id = c.sender_id), '[]'::json) AS tags
"""


def conversation_dict(row) -> dict:
    return {
        "sender_id": row.sender_id,
        "sender_name": row.sender_id,
        "rasa_environment": row.rasa_environment,
        "n_user_messages": row.number_user_messages,
        "latest_input_channel": row.latest_input_channel,
        "first_event_time": row.first_event_time,
        "latest_event_time": row.latest_event_time,
        "minimum_action_confidence": row.minimum_action_confidence,
        "maximum_action_confidence": row.maximum_action_confidence,
        "minimum_intent_confidence": row.minimum_intent_confidence,
        "maximum_intent_confidence": row.maximum_intent_confidence,
        "in_training_data": row.in_training_data and row.turns_covered,
        "review_status": row.review_status,
        "interactive": row.interactive,
        "evaluation": json.loads(row.evaluation) if row.evaluation else None,
        **{facet.name: list(getattr(row, facet.name)) for facet in _DETAIL_FACETS},
        "has_flagged_messages": row.has_flagged_messages,
        "corrected_messages": list(row.corrected_messages),
        "tags": row.tags,
    }


def count_conversations(connection: Connection, f: ConversationFilter) -> int:
    where, params = where_clause(f)
    return connection.execute(sa.text(f"SELECT count(*) FROM conversation c WHERE {where}"), params).scalar()


def page_of_conversations(connection: Connection, f: ConversationFilter) -> list[dict]:
    where, params = where_clause(f)
    rows = connection.execute(
        sa.text(
            f"WITH page AS (SELECT * FROM conversation c WHERE {where} ORDER BY {_order(f, 'c')} "
            f"LIMIT :limit OFFSET :offset) SELECT c.*, {DETAIL_COLUMNS} FROM page c ORDER BY {_order(f, 'c')}"
        ),
        {**params, "limit": f.limit, "offset": f.offset},
    ).all()
    return [conversation_dict(row) for row in rows]


def get_conversation(connection: Connection, sender_id: str) -> dict | None:
    row = connection.execute(
        sa.text(f"SELECT c.*, {DETAIL_COLUMNS} FROM conversation c WHERE c.sender_id = :s"), {"s": sender_id}
    ).first()
    return conversation_dict(row) if row else None
