"""GET /api/statistics: message counts from the sharded counters, and the top facet values;
GET /api/statistics/analytics: conversations, sessions, users and fallbacks over time."""

from __future__ import annotations

import time

import sqlalchemy as sa
from flask import Blueprint, jsonify, request

from services.common.counters import COUNTERS
from services.common.facets import ACTIONS, FACETS, INTENTS

from ..auth import requires
from ..context import backend
from ..errors import bad_request
from ..params import float_arg, list_arg

bp = Blueprint("statistics", __name__, url_prefix="/api")

TOP_N = 10


def _top(connection, table: str, column: str, environments: list[str]) -> list[str]:
    join = where = ""
    if environments:
        join = "JOIN conversation c ON c.sender_id = m.conversation_id"
        where = "WHERE c.rasa_environment = ANY(:e)"
    sql = f"SELECT m.{column} FROM {table} m {join} {where} GROUP BY m.{column} ORDER BY count(*) DESC, m.{column} LIMIT {TOP_N}"
    return list(connection.execute(sa.text(sql), {"e": environments}).scalars())


def compute_statistics(environments: list[str]) -> dict:
    where = "WHERE rasa_environment = ANY(:e)" if environments else ""
    with backend().engine.connect() as connection:
        sums = "".join(f"coalesce(sum({c.column}), 0), " for c in COUNTERS)
        *totals, latest = connection.execute(
            sa.text(f"SELECT {sums}max(latest_event_time) FROM conversation_statistic {where}"), {"e": environments}
        ).one()
        conversations = connection.execute(sa.text(f"SELECT count(*) FROM conversation {where}"), {"e": environments}).scalar()
        return {
            **{counter.statistic: int(total) for counter, total in zip(COUNTERS, totals)},
            "latest_event_time": latest,
            "conversations": conversations,
            **{
                f"top_{facet.name}": _top(connection, facet.table, facet.column, environments)
                for facet in FACETS
                if facet.in_statistics
            },
        }


@bp.get("/statistics")
@requires("statistics.view")
def statistics():
    environments = list_arg("rasa_environment")
    ctx = backend()
    return jsonify(ctx.cache.cached(ctx.engine, "statistics", environments, lambda: compute_statistics(environments)))


# ----- analytics: the figures over time, for the web UI's Analytics page --------------------
# Every figure is counted so that the conversation list shows exactly what it counts:
# conversations by their latest event (the list's start/until filter), top intents and actions
# as the number of those conversations holding them (its intent/action filter). Sessions and
# users count conversation_session rows by the time each session started.
BUCKETS = {"hour": 3600, "day": 86400, "week": 7 * 86400}
MAX_BUCKETS = 1000
DEFAULT_DAYS = 30
FALLBACK_INTENT = "nlu_fallback"  # Rasa's FallbackClassifier
FALLBACK_ACTION = "action_default_fallback"  # Rasa's RulePolicy core fallback
# In every conversation, so never telling: left out of the top actions.
ROUTINE_ACTIONS = ("action_listen", "action_session_start")

_COUNT = {"type": "integer", "minimum": 0}
_TOP = {"type": "array", "items": {"type": "object", "required": ["name", "conversations"], "additionalProperties": False,
                                   "properties": {"name": {"type": "string"}, "conversations": _COUNT}}}
_FIGURES = {"conversations": _COUNT, "fallback_conversations": _COUNT, "sessions": _COUNT, "users": _COUNT, "new_users": _COUNT}
ANALYTICS_OUT = {
    "type": "object",
    "required": ["from", "to", "bucket", "series", "totals", "top_intents", "top_actions", "fallback"],
    "additionalProperties": False,
    "properties": {
        "from": {"type": "number"},
        "to": {"type": "number"},
        "bucket": {"type": "string", "enum": list(BUCKETS)},
        "series": {"type": "array", "items": {
            "type": "object", "additionalProperties": False, "required": ["start", "end", *_FIGURES],
            "properties": {"start": {"type": "number"}, "end": {"type": "number"}, **_FIGURES}}},
        "totals": {"type": "object", "additionalProperties": False, "required": [*_FIGURES, "fallback_rate"],
                   "properties": {**_FIGURES, "fallback_rate": {"type": "number", "nullable": True}}},
        "top_intents": _TOP,
        "top_actions": _TOP,
        "fallback": {"type": "object", "additionalProperties": False, "required": ["intent", "action"],
                     "properties": {"intent": {"type": "string"}, "action": {"type": "string"}}},
    },
}

# An uncorrelated IN: PostgreSQL hashes the (few) fallback conversations once, where EXISTS would
# probe two indexes for every conversation counted.
_IS_FALLBACK = (
    f"c.sender_id IN (SELECT conversation_id FROM {INTENTS.table} WHERE {INTENTS.column} = :fi "
    f"UNION ALL SELECT conversation_id FROM {ACTIONS.table} WHERE {ACTIONS.column} = :fa)"
)


def _series_sql(environment: str) -> str:
    # Buckets in UTC; the first and last are cut to [from, to], the range the counts cover.
    return f"""
    WITH buckets AS (
        SELECT b AS s FROM generate_series(date_trunc(:b, to_timestamp(:f), 'UTC'), to_timestamp(:t),
                                           CAST(:step AS interval)) b
    ), conv AS (
        SELECT date_trunc(:b, to_timestamp(c.latest_event_time), 'UTC') AS s, count(*) AS n,
               count(*) FILTER (WHERE {_IS_FALLBACK}) AS fallback
        FROM conversation c WHERE c.latest_event_time BETWEEN :f AND :t {environment.format(t="c")} GROUP BY 1
    ), sess AS (
        SELECT date_trunc(:b, to_timestamp(x.session_start), 'UTC') AS s, count(*) AS n,
               count(DISTINCT x.conversation_id) AS users, count(*) FILTER (WHERE x.is_new_user) AS new_users
        FROM conversation_session x WHERE x.session_start BETWEEN :f AND :t {environment.format(t="x")} GROUP BY 1
    )
    SELECT greatest(extract(epoch FROM buckets.s), :f) AS start,
           least(extract(epoch FROM buckets.s + CAST(:step AS interval)), :t) AS "end",
           coalesce(conv.n, 0) AS conversations, coalesce(conv.fallback, 0) AS fallback_conversations,
           coalesce(sess.n, 0) AS sessions, coalesce(sess.users, 0) AS users, coalesce(sess.new_users, 0) AS new_users
    FROM buckets LEFT JOIN conv USING (s) LEFT JOIN sess USING (s)
    -- a `to` on a bucket boundary starts one more bucket: kept only when something is at `to` itself
    WHERE buckets.s < to_timestamp(:t) OR conv.n IS NOT NULL OR sess.n IS NOT NULL
    ORDER BY buckets.s
    """


def _users_sql(environment: str) -> str:
    # The one total that is not the sum of the buckets': a user back in two buckets is one user.
    return f"""
    SELECT count(DISTINCT x.conversation_id) FROM conversation_session x
    WHERE x.session_start BETWEEN :f AND :t {environment.format(t="x")}
    """


def _top_in_range(connection, facet, params: dict, environment: str, leave_out: tuple[str, ...] = ()) -> list[dict]:
    sql = (
        f"SELECT m.{facet.column}, count(*) FROM {facet.table} m JOIN conversation c ON c.sender_id = m.conversation_id "
        f"WHERE c.latest_event_time BETWEEN :f AND :t {environment.format(t='c')} AND m.{facet.column} <> ALL(:leave_out) "
        f"GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT {TOP_N}"
    )
    rows = connection.execute(sa.text(sql), {**params, "leave_out": list(leave_out)}).all()
    return [{"name": name, "conversations": count} for name, count in rows]


def compute_analytics(start: float, end: float, bucket: str, environments: list[str]) -> dict:
    environment = " AND {t}.rasa_environment = ANY(:e)" if environments else ""
    params = {"f": start, "t": end, "b": bucket, "step": f"1 {bucket}", "e": environments,
              "fi": FALLBACK_INTENT, "fa": FALLBACK_ACTION}
    with backend().engine.connect() as connection:
        rows = connection.execute(sa.text(_series_sql(environment)), params)
        series = [{**row._mapping, "start": float(row.start), "end": float(row.end)} for row in rows]
        totals = {figure: sum(b[figure] for b in series) for figure in ("conversations", "fallback_conversations",
                                                                         "sessions", "new_users")}
        totals["users"] = connection.execute(sa.text(_users_sql(environment)), params).scalar()
        conversations = totals["conversations"]
        return {
            "from": start,
            "to": end,
            "bucket": bucket,
            "series": series,
            "totals": {**totals, "fallback_rate": totals["fallback_conversations"] / conversations if conversations else None},
            "top_intents": _top_in_range(connection, INTENTS, params, environment),
            "top_actions": _top_in_range(connection, ACTIONS, params, environment, ROUTINE_ACTIONS),
            "fallback": {"intent": FALLBACK_INTENT, "action": FALLBACK_ACTION},
        }


@bp.get("/statistics/analytics")
@requires("statistics.view")
def analytics():
    bucket = request.args.get("bucket") or "day"
    if bucket not in BUCKETS:
        raise bad_request(f"'bucket' must be one of {list(BUCKETS)}, got {bucket[:50]!r}")
    end = float_arg("to")
    end = time.time() if end is None else end
    start = float_arg("from")
    start = end - DEFAULT_DAYS * 86400 if start is None else start
    if start >= end:
        raise bad_request("'from' must be before 'to'")
    if (end - start) / BUCKETS[bucket] > MAX_BUCKETS:
        raise bad_request(f"at most {MAX_BUCKETS} buckets: choose a shorter range or a longer bucket")
    environments = list_arg("rasa_environment")
    ctx = backend()
    key = {"from": start, "to": end, "bucket": bucket, "e": environments}
    return jsonify(ctx.cache.cached(ctx.engine, "analytics", key, lambda: compute_analytics(start, end, bucket, environments)))
