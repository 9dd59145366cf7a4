"""GET /api/statistics: message counts from the sharded counters, and the top facet values."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, jsonify

from services.common.counters import COUNTERS
from services.common.facets import FACETS

from ..auth import requires
from ..context import backend
from ..params import list_arg

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
