"""X-Total-Count of the conversation list: exact, and cheap while the bot keeps talking.

A full count of 100k conversations with facet filters costs 50-250 ms on a loaded machine, and
every new event outdates a count cached against the data version. So the count is split at a
point in time `cut`, the latest_event_time of the HOT_SIZE-th most recent conversation when the
entry is made:
  total = cold (latest event before cut: counted once, kept in Redis)
        + hot  (the rest: counted on every request along ix_conversation_latest_event_time).
New events mostly go to recent conversations, which are hot, so the cold part stays valid. It
is exact as long as no conversation that was cold has changed and none has joined the cold
side. One statement (one snapshot) checks that and counts the hot part:
  - the events stored since the entry are the rows with an id above its `max_id`, unless one
    committed late with a lower id; the event counters, which the event service updates in the
    same transaction as the rows, must therefore have grown by exactly the number of newer rows;
  - every conversation those rows belong to must not have been cold (among ids <= max_id it had
    no event, or one at or after cut) and must be hot now.
The backend's own changes bump a generation per aspect they change (review status, tags, flags,
in_training_data, deletions); an entry keeps those its filter depends on, read before the data,
so marking a conversation reviewed leaves the totals of filters without review_status be. A
check that passes moves the entry's max_id and event count up to its own snapshot, so the next
one looks only at the events stored since. When the check fails, the hot side or the newer rows
have grown past a limit, or the entry is older than the cache TTL, the whole count is made
again with a new cut. Without Redis every request counts everything.
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from .cache import DATA_VERSION_COLUMNS, TTL_SECONDS, Cache
from .conversation_query import ConversationFilter, count_conversations, where_clause

HOT_SIZE = 1000
HOT_LIMIT = 4000
NEWER_LIMIT = 50_000
_NAME = "conversation_count"

# The disabled plan types make the estimated cost huge, which would also start the JIT
# compiler: 300 ms of compiling for a 5 ms query.
_PROBES_ONLY = (
    "SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off; SET LOCAL enable_seqscan = off; "
    "SET LOCAL max_parallel_workers_per_gather = 0; SET LOCAL jit = off"
)
_ENTRY_FIELDS = ("cut", "max_id", "events", "cold", "generation", "made")


def _recount_sql(where: str) -> str:
    return f"""
    WITH cut AS (
        SELECT coalesce((SELECT latest_event_time FROM conversation WHERE latest_event_time IS NOT NULL
                         ORDER BY latest_event_time DESC OFFSET :hot_size LIMIT 1), '-Infinity'::float8) AS t)
    SELECT (SELECT t FROM cut) AS cut,
           {DATA_VERSION_COLUMNS},
           count(*) AS total,
           count(*) FILTER (WHERE (c.latest_event_time >= (SELECT t FROM cut)) IS NOT TRUE) AS cold
    FROM conversation c WHERE {where}
    """


def _check_sql(where: str) -> str:
    return f"""
    WITH newer AS (SELECT conversation_id FROM conversation_event WHERE id > :max_id LIMIT :newer_limit),
    touched AS (SELECT DISTINCT conversation_id FROM newer),
    hot AS MATERIALIZED (SELECT * FROM conversation WHERE latest_event_time >= :cut)
    SELECT (SELECT count(*) FROM newer) AS newer_events,
           {DATA_VERSION_COLUMNS},
           (SELECT count(*) FROM hot) AS hot_size,
           EXISTS (
               SELECT 1 FROM touched t LEFT JOIN conversation x ON x.sender_id = t.conversation_id
               WHERE (x.latest_event_time >= :cut) IS NOT TRUE
                  OR (EXISTS (SELECT 1 FROM conversation_event o
                              WHERE o.conversation_id = t.conversation_id AND o.id <= :max_id)
                      AND NOT EXISTS (SELECT 1 FROM conversation_event o
                                      WHERE o.conversation_id = t.conversation_id
                                        AND o.timestamp >= :cut AND o.id <= :max_id))
           ) AS cold_changed,
           (SELECT count(*) FROM hot c WHERE {where}) AS hot
    """


def _still_valid(row, entry: dict) -> bool:
    return (
        not row.cold_changed
        and row.events == entry["events"] + row.newer_events
        and row.newer_events <= NEWER_LIMIT
        and row.hot_size <= HOT_LIMIT
    )


def _aspects(f: ConversationFilter) -> tuple[str, ...]:
    """What of the backend's own changes this filter's total depends on (see Cache.invalidate)."""
    aspects = ["conversations"]
    for aspect, used in (
        ("review", f.review_statuses),
        ("tags", f.tags_any),
        ("flags", f.is_flagged is not None),
        ("training", f.in_training_data is not None),
    ):
        if used:
            aspects.append(aspect)
    return tuple(aspects)


def conversation_total(engine: Engine, cache: Cache, f: ConversationFilter) -> int:
    found = cache.read(_NAME, f.count_key(), _aspects(f))
    if found is None:
        with engine.connect() as connection:
            return count_conversations(connection, f)
    generation, entry = found
    where, params = where_clause(f)
    if (
        isinstance(entry, dict)
        and entry.keys() == set(_ENTRY_FIELDS)
        and entry["generation"] == generation
        # Passing checks keep an entry alive; this bounds, as the TTL does for other entries,
        # what a generation bump lost while Redis was away could leave behind.
        and time.time() - entry["made"] < TTL_SECONDS
    ):
        with engine.begin() as connection:
            # Every part of the check is a few hundred index probes; a hash join or a seq scan
            # the planner may prefer on its estimates would read whole tables instead.
            connection.execute(sa.text(_PROBES_ONLY))
            bounds = {"cut": entry["cut"], "max_id": entry["max_id"], "newer_limit": NEWER_LIMIT + 1}
            row = connection.execute(sa.text(_check_sql(where)), {**params, **bounds}).one()
        if _still_valid(row, entry):
            if row.newer_events:
                # The cold side is the same at this snapshot, so the entry can start from it:
                # the next check then looks only at the events stored after this one.
                cache.write(_NAME, f.count_key(), {**entry, "max_id": row.max_id, "events": int(row.events)})
            return entry["cold"] + row.hot
    with engine.connect() as connection:
        row = connection.execute(sa.text(_recount_sql(where)), {**params, "hot_size": HOT_SIZE}).one()
    entry = {"cut": row.cut, "max_id": row.max_id, "events": int(row.events), "cold": row.cold}
    cache.write(_NAME, f.count_key(), {**entry, "generation": generation, "made": time.time()})
    return row.total
