"""Writes a batch of Rasa events and everything derived from them in ONE transaction.

Exactly-once comes from two rules: an event row is inserted or ignored on its content-derived
`dedupe_key`, and every derived table is changed only by the events that were actually
inserted (RETURNING), with order-independent operations (sums of new rows, LEAST/GREATEST,
insert-or-ignore of facet rows, sessions recomputed from the stored, ordered events).
Redeliveries and competing replicas therefore converge on the same tables. What the inserted
events change is worked out by aggregate.py (pure); this module turns it into SQL and runs it.

Locks are always taken in one global order — event keys sorted, then conversations sorted by
sender_id, then statistic shards sorted — so concurrent replicas wait for each other but never
deadlock; holding the conversation row while its sessions are recomputed makes that recompute
see every event committed before it.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass, field

import psycopg2
import psycopg2.errors

from services.common import live_feed
from services.common.config import DatabaseSettings
from services.common.counters import COUNTERS
from services.common.db import connect
from services.common.retry import one_line

from .aggregate import BatchChanges, aggregate, unique_events
from .event_table import COLUMN_TYPES, COLUMNS, copy_row
from .parsing import Event
from .pg_text import NULL, array_literal

log = logging.getLogger(__name__)

# Errors that say "the connection or server is gone or busy", not "this data is wrong":
# the batch is retried as a whole after a reconnect (TransactionRollbackError, a deadlock
# or serialization failure, is an OperationalError too).
CONNECTION_ERRORS = (psycopg2.OperationalError, psycopg2.InterfaceError)


@dataclass
class WriteResult:
    inserted: int = 0
    duplicates: int = 0
    # (event, reason) for events PostgreSQL refused even alone: the consumer dead-letters them.
    rejected: list = field(default_factory=list)


class EventStore:
    def __init__(self, db: DatabaseSettings):
        self.db = db
        self._connection = None
        self._event_sequence = self._message_log_sequence = None

    # ----- connection ----------------------------------------------------------------------
    def _cursor(self):
        if self._connection is None or self._connection.closed:
            self._connection = connect(self.db, "rasax-event-service")
            with self._connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_get_serial_sequence('conversation_event', 'id'), pg_get_serial_sequence('message_log', 'id')"
                )
                self._event_sequence, self._message_log_sequence = cursor.fetchone()
                # A batch with events already stored is COPYed here, then inserted into
                # conversation_event with ON CONFLICT in one statement; emptied at commit.
                cursor.execute(f"CREATE TEMP TABLE incoming_event ({COLUMN_TYPES}) ON COMMIT DELETE ROWS")
            self._connection.commit()
        return self._connection.cursor()

    def reset(self) -> None:
        """Drop the connection after a connection error; the next write reconnects."""
        if self._connection is not None:
            try:
                self._connection.close()
            except psycopg2.Error:
                pass
        self._connection = None

    close = reset

    def ping(self) -> bool:
        """Whether PostgreSQL answers now, on a connection of its own (for /health)."""
        try:
            connection = connect(self.db, application_name="rasax-event-service-health")
        except psycopg2.Error:
            return False
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            return True
        except psycopg2.Error:
            return False
        finally:
            connection.close()

    # ----- writing -------------------------------------------------------------------------
    def write(self, events: list[Event]) -> WriteResult:
        """Store `events` in one transaction; on data errors isolate the offending events.

        Raises CONNECTION_ERRORS when PostgreSQL is unreachable: nothing was committed then,
        or (if the commit itself was cut) everything was, and a retry ignores it all.
        """
        try:
            return self._write_transaction(events)
        except CONNECTION_ERRORS:
            raise
        except Exception as exc:  # noqa: BLE001 - data the checks missed: isolate, never block
            self._rollback()
            if len(events) == 1:
                return WriteResult(rejected=[(events[0], f"database refused the event: {one_line(exc)}")])
            log.warning("a batch of %d events failed (%s); storing them one by one", len(events), one_line(exc))
            result = WriteResult()
            for event in events:
                single = self.write([event])
                result.inserted += single.inserted
                result.duplicates += single.duplicates
                result.rejected.extend(single.rejected)
            return result

    def _rollback(self) -> None:
        try:
            self._connection.rollback()
        except psycopg2.Error:
            self.reset()

    def _write_transaction(self, events: list[Event]) -> WriteResult:
        batch = unique_events(events)
        if not batch:
            return WriteResult()
        with self._cursor() as cursor:
            inserted, trained = self._insert_events(cursor, batch)
            if inserted:
                changes = aggregate(inserted, trained)
                new_users = [e for e in inserted if e.type_name == "user"]
                # Everything derived goes in one round trip, in the lock order of the module doc.
                statements = [
                    self._upsert_conversations(changes),
                    self._insert_message_logs(new_users, trained),
                    self._insert_facets(changes),
                    self._update_sessions(changes),
                    self._add_statistics(changes),
                    self._announce(inserted),
                ]
                cursor.execute(
                    b";\n".join(cursor.mogrify(sql, [array_literal(p) for p in params]) for sql, params in statements if sql)
                )
        self._connection.commit()
        return WriteResult(inserted=len(inserted), duplicates=len(events) - len(inserted))

    def _insert_events(self, cursor, batch: list[Event]) -> tuple[list[Event], set[str]]:
        """(the events of `batch` that were not stored yet, now inserted; the text hashes of
        its user events that are in the training data).

        Usually none is stored yet: the batch is then COPYed straight into conversation_event
        with ids drawn beforehand, which costs PostgreSQL a third less than COPY into a temporary
        table and INSERT ... ON CONFLICT from there. A key stored already (a redelivery, a competing replica) makes
        that COPY fail on the unique index; it is undone to the savepoint and the batch goes
        the ON CONFLICT way. Both insert in key order, so replicas still wait, never deadlock.
        """
        users = [e for e in batch if e.type_name == "user"]
        cursor.execute(
            """
            SAVEPOINT new_events;
            SELECT array(SELECT nextval(%s::regclass) FROM generate_series(1, %s)),
                   array(SELECT nextval(%s::regclass) FROM generate_series(1, %s)),
                   array(SELECT hash FROM training_example WHERE hash = ANY(%s::text[]))
            """,
            (self._event_sequence, len(batch), self._message_log_sequence, len(users),
             array_literal(list({e.text_hash for e in users}))),
        )
        event_ids, message_log_ids, trained = cursor.fetchone()
        message_log_ids = iter(message_log_ids)
        for event, event_id in zip(batch, event_ids):
            # A user event's inbox row id is drawn here too, so its row is written once,
            # already pointing at the message_log row.
            event.event_id = event_id
            event.message_log_id = next(message_log_ids) if event.type_name == "user" else None
        try:
            cursor.copy_expert(
                f"COPY conversation_event (id, message_log_id, {COLUMNS}) FROM STDIN",
                io.StringIO(
                    "".join(
                        f"{e.event_id}\t{NULL if e.message_log_id is None else e.message_log_id}\t{copy_row(e)}\n"
                        for e in batch
                    )
                ),
            )
        except psycopg2.errors.UniqueViolation:
            cursor.execute("ROLLBACK TO SAVEPOINT new_events")
            return self._insert_new_events(cursor, batch), set(trained)
        return batch, set(trained)

    def _insert_new_events(self, cursor, batch: list[Event]) -> list[Event]:
        """INSERT ... ON CONFLICT DO NOTHING: the events of `batch` not stored yet."""
        cursor.copy_expert(
            f"COPY incoming_event ({COLUMNS}) FROM STDIN", io.StringIO("".join(f"{copy_row(e)}\n" for e in batch))
        )
        cursor.execute(
            f"""
            INSERT INTO conversation_event (message_log_id, {COLUMNS})
            SELECT CASE WHEN type_name = 'user' THEN nextval(%s::regclass) END, {COLUMNS}
            FROM incoming_event ORDER BY dedupe_key
            ON CONFLICT (dedupe_key) DO NOTHING
            RETURNING id, dedupe_key, message_log_id
            """,
            (self._message_log_sequence,),
        )
        by_key = {e.dedupe_key: e for e in batch}
        inserted = []
        for event_id, key, message_log_id in cursor.fetchall():
            event = by_key[bytes(key)]
            event.event_id = event_id
            event.message_log_id = message_log_id
            inserted.append(event)
        return inserted

    @staticmethod
    def _announce(inserted: list[Event]):
        # rasa-x's live updates (services/common/live_feed.py): PostgreSQL delivers a NOTIFY
        # only when this transaction commits, so a subscriber never sees an event that is not stored.
        return (
            f"SELECT pg_notify('{live_feed.CHANNEL}', payload) FROM unnest(%s::text[]) payload",
            (live_feed.payloads(live_feed.stored_in(inserted)),),
        )

    @staticmethod
    def _upsert_conversations(changes: BatchChanges):
        rows = changes.conversations
        return (
            """
            INSERT INTO conversation AS c (sender_id, rasa_environment, number_user_messages,
                latest_input_channel, latest_input_channel_time, first_event_time, latest_event_time,
                minimum_action_confidence, maximum_action_confidence,
                minimum_intent_confidence, maximum_intent_confidence, in_training_data)
            SELECT * FROM unnest(%s::text[], %s::text[], %s::int[], %s::text[], %s::float8[], %s::float8[],
                %s::float8[], %s::float8[], %s::float8[], %s::float8[], %s::float8[], %s::bool[])
            ON CONFLICT (sender_id) DO UPDATE SET
                rasa_environment = CASE
                    WHEN c.first_event_time IS NULL OR excluded.first_event_time < c.first_event_time
                    THEN excluded.rasa_environment ELSE c.rasa_environment END,
                number_user_messages = c.number_user_messages + excluded.number_user_messages,
                latest_input_channel = CASE
                    WHEN excluded.latest_input_channel_time IS NOT NULL AND (c.latest_input_channel_time IS NULL
                        OR (excluded.latest_input_channel_time, excluded.latest_input_channel)
                           > (c.latest_input_channel_time, c.latest_input_channel))
                    THEN excluded.latest_input_channel ELSE c.latest_input_channel END,
                latest_input_channel_time = CASE
                    WHEN excluded.latest_input_channel_time IS NOT NULL AND (c.latest_input_channel_time IS NULL
                        OR (excluded.latest_input_channel_time, excluded.latest_input_channel)
                           > (c.latest_input_channel_time, c.latest_input_channel))
                    THEN excluded.latest_input_channel_time ELSE c.latest_input_channel_time END,
                first_event_time = LEAST(c.first_event_time, excluded.first_event_time),
                latest_event_time = GREATEST(c.latest_event_time, excluded.latest_event_time),
                minimum_action_confidence = LEAST(c.minimum_action_confidence, excluded.minimum_action_confidence),
                maximum_action_confidence = GREATEST(c.maximum_action_confidence, excluded.maximum_action_confidence),
                minimum_intent_confidence = LEAST(c.minimum_intent_confidence, excluded.minimum_intent_confidence),
                maximum_intent_confidence = GREATEST(c.maximum_intent_confidence, excluded.maximum_intent_confidence),
                in_training_data = c.in_training_data AND excluded.in_training_data
            """,
            (
                [r.sender_id for r in rows],
                [r.environment for r in rows],
                [r.user_messages for r in rows],
                [r.channel for r in rows],
                [r.channel_time for r in rows],
                [r.first_time for r in rows],
                [r.latest_time for r in rows],
                [r.min_action for r in rows],
                [r.max_action for r in rows],
                [r.min_intent for r in rows],
                [r.max_intent for r in rows],
                [r.in_training_data for r in rows],
            ),
        )

    @staticmethod
    def _insert_message_logs(users: list[Event], trained: set[str]):
        if not users:
            return None, None
        return (
            """
            INSERT INTO message_log (id, hash, model, time, text, intent, confidence, intent_ranking,
                entities, event_id, conversation_id, in_training_data)
            SELECT * FROM unnest(%s::int8[], %s::text[], %s::text[], %s::float8[], %s::text[], %s::text[],
                %s::float8[], %s::text[], %s::text[], %s::int8[], %s::text[], %s::bool[])
            """,
            (
                [e.message_log_id for e in users],
                [e.text_hash for e in users],
                [e.model for e in users],
                [e.timestamp for e in users],
                [e.text for e in users],
                [e.intent_name for e in users],
                [e.confidence for e in users],
                [e.intent_ranking_json for e in users],
                [e.entities_json for e in users],
                [e.event_id for e in users],
                [e.sender_id for e in users],
                [e.text_hash in trained for e in users],
            ),
        )

    @staticmethod
    def _insert_facets(changes: BatchChanges):
        parameters = []
        statements = []
        for facet, ordered in changes.facet_rows.items():
            width = len(facet.columns) + 1
            statements.append(
                f"f{len(statements)} AS (INSERT INTO {facet.table} (conversation_id, {', '.join(facet.columns)}) "
                "SELECT * FROM unnest(" + ", ".join(["%s::text[]"] * width) + ") ON CONFLICT DO NOTHING)"
            )
            parameters.extend([row[i] for row in ordered] for i in range(width))
        if not statements:
            return None, None
        return "WITH " + ", ".join(statements) + " SELECT 1", parameters

    @staticmethod
    def _update_sessions(changes: BatchChanges):
        # Recompute every session that holds one of the new events, from the stored events in
        # time order: the session an event belongs to can change when a session_started that
        # was published earlier is delivered later, so nothing is accumulated here. New sessions
        # are inserted with their values, and a session whose values did not change is not
        # written again.
        return (
            """
            WITH touched(conversation_id, t0) AS (SELECT * FROM unnest(%s::text[], %s::float8[])),
            new_start(conversation_id, session_start, rasa_environment) AS (
                SELECT * FROM unnest(%s::text[], %s::float8[], %s::text[])),
            every_start AS (
                -- LATERAL and OFFSET 0: each conversation's sessions by index, whatever the
                -- table's statistics say; a start stored already wins over a new one.
                SELECT DISTINCT ON (conversation_id, session_start) conversation_id, session_start, rasa_environment
                FROM (
                    SELECT s.*, false AS new FROM touched t CROSS JOIN LATERAL (
                        SELECT conversation_id, session_start, rasa_environment FROM conversation_session
                        WHERE conversation_id = t.conversation_id OFFSET 0) s
                    UNION ALL
                    SELECT *, true FROM new_start
                ) s
                ORDER BY conversation_id, session_start, new
            ),
            sessions AS (
                SELECT conversation_id, session_start, rasa_environment,
                       coalesce(lead(session_start) OVER w, 'infinity') AS next_start,
                       min(session_start) OVER (PARTITION BY conversation_id) AS first_start
                FROM every_start
                WINDOW w AS (PARTITION BY conversation_id ORDER BY session_start)
            )
            INSERT INTO conversation_session AS u (conversation_id, session_start, rasa_environment, is_new_user,
                latest_event_time, input_channel)
            SELECT a.conversation_id, a.session_start, a.rasa_environment, a.session_start = a.first_start,
                (SELECT max(e.timestamp) FROM conversation_event e
                 WHERE e.conversation_id = a.conversation_id AND e.timestamp >= a.session_start
                   AND e.timestamp < a.next_start),
                -- The first user event by (timestamp, dedupe_key): its time first, which the
                -- index gives after the events before it, then the few events at that time.
                (SELECT left(e.data::json ->> 'input_channel', 255) FROM conversation_event e
                 WHERE e.conversation_id = a.conversation_id AND e.type_name = 'user' AND e.timestamp = (
                     SELECT min(f.timestamp) FROM conversation_event f
                     WHERE f.conversation_id = a.conversation_id AND f.type_name = 'user'
                       AND f.timestamp >= a.session_start AND f.timestamp < a.next_start)
                 ORDER BY e.dedupe_key LIMIT 1)
            FROM sessions a JOIN touched t USING (conversation_id)
            WHERE a.next_start >= t.t0
            ORDER BY a.conversation_id, a.session_start
            ON CONFLICT (conversation_id, session_start) DO UPDATE SET
                is_new_user = excluded.is_new_user,
                latest_event_time = excluded.latest_event_time,
                input_channel = excluded.input_channel
            WHERE (u.is_new_user, u.latest_event_time, u.input_channel)
                IS DISTINCT FROM (excluded.is_new_user, excluded.latest_event_time, excluded.input_channel)
            """,
            (
                [sender for sender, _ in changes.earliest],
                [t0 for _, t0 in changes.earliest],
                [sender for sender, _, _ in changes.session_starts],
                [start for _, start, _ in changes.session_starts],
                [environment for _, _, environment in changes.session_starts],
            ),
        )

    @staticmethod
    def _add_statistics(changes: BatchChanges):
        rows = changes.statistics
        # Last statement of the transaction: a shard row is shared by many conversations, so
        # its lock is held for as short a time as possible.
        return (
            _ADD_STATISTICS,
            (
                [r.environment for r in rows],
                [r.shard for r in rows],
                *([r.counts[i] for r in rows] for i in range(len(COUNTERS))),
                [r.latest_time for r in rows],
            ),
        )


_COUNTER_COLUMNS = [counter.column for counter in COUNTERS]
_ADD_STATISTICS = f"""
    INSERT INTO conversation_statistic AS s (rasa_environment, shard, {", ".join(_COUNTER_COLUMNS)}, latest_event_time)
    SELECT * FROM unnest(%s::text[], %s::int2[], {"%s::int8[], " * len(_COUNTER_COLUMNS)}%s::float8[])
    ON CONFLICT (rasa_environment, shard) DO UPDATE SET
        {"".join(f"{column} = s.{column} + excluded.{column}, " for column in _COUNTER_COLUMNS)}
        latest_event_time = GREATEST(s.latest_event_time, excluded.latest_event_time)
"""
