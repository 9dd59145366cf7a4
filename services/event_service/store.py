"""Writes a batch of Rasa events and everything derived from them in ONE transaction.

Exactly-once comes from two rules: an event row is inserted or ignored on its content-derived
`dedupe_key`, and every derived table is changed only by the events that were actually
inserted (RETURNING), with order-independent operations (sums of new rows, LEAST/GREATEST,
insert-or-ignore of facet rows, sessions recomputed from the stored, ordered events).
Redeliveries and competing replicas therefore converge on the same tables.

Locks are always taken in one global order — event keys sorted, then conversations sorted by
sender_id, then statistic shards sorted — so concurrent replicas wait for each other but never
deadlock; holding the conversation row while its sessions are recomputed makes that recompute
see every event committed before it.
"""

from __future__ import annotations

import io
import logging
import zlib
from dataclasses import dataclass, field

import psycopg2
import psycopg2.errors

from services.common.config import DatabaseSettings
from services.common.facets import ACTIONS, ENTITIES, FACETS, INPUT_CHANNELS, INTENTS, POLICIES, SLOTS, Facet

from services.common.retry import one_line

from .parsing import MAX_SLOT_FACET, Event, text_hash

log = logging.getLogger(__name__)

STATISTIC_SHARDS = 16
# Errors that say "the connection or server is gone or busy", not "this data is wrong":
# the batch is retried as a whole after a reconnect (TransactionRollbackError, a deadlock
# or serialization failure, is an OperationalError too).
CONNECTION_ERRORS = (psycopg2.OperationalError, psycopg2.InterfaceError)


def statistic_shard(sender_id: str) -> int:
    """Stable across processes and versions (unlike hash()): every replica picks the same row."""
    return zlib.crc32(sender_id.encode("utf-8")) % STATISTIC_SHARDS


@dataclass
class WriteResult:
    inserted: int = 0
    duplicates: int = 0
    # (event, reason) for events PostgreSQL refused even alone: the consumer dead-letters them.
    rejected: list = field(default_factory=list)


def connect(db: DatabaseSettings, application_name: str = "rasax-event-service", **options):
    return psycopg2.connect(
        host=db.host,
        port=db.port,
        user=db.user,
        password=db.password,
        dbname=db.database,
        connect_timeout=5,
        application_name=application_name,
        # A server that vanished without closing the socket is noticed in ~25 s, not hours.
        keepalives=1,
        keepalives_idle=10,
        keepalives_interval=5,
        keepalives_count=3,
        **options,
    )


class EventStore:
    def __init__(self, db: DatabaseSettings):
        self.db = db
        self._connection = None
        self._event_sequence = self._message_log_sequence = None

    # ----- connection ----------------------------------------------------------------------
    def _cursor(self):
        if self._connection is None or self._connection.closed:
            self._connection = connect(self.db)
            with self._connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_get_serial_sequence('conversation_event', 'id'), pg_get_serial_sequence('message_log', 'id')"
                )
                self._event_sequence, self._message_log_sequence = cursor.fetchone()
                # A batch with events already stored is COPYed here, then inserted into
                # conversation_event with ON CONFLICT in one statement; emptied at commit.
                cursor.execute(
                    """CREATE TEMP TABLE incoming_event (conversation_id text, type_name text, timestamp float8,
                        intent_name text, action_name text, slot_name text, slot_value text, policy text, data text,
                        rasa_environment text, dedupe_key bytea) ON COMMIT DELETE ROWS"""
                )
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
        unique: dict[bytes, Event] = {}
        for event in events:
            unique.setdefault(event.dedupe_key, event)
        # Sorted keys: two replicas inserting the same duplicates wait, never deadlock.
        batch = [unique[key] for key in sorted(unique)]
        if not batch:
            return WriteResult()
        with self._cursor() as cursor:
            inserted, trained = self._insert_events(cursor, batch)
            if inserted:
                new_users = [e for e in inserted if e.type_name == "user"]
                # Everything derived goes in one round trip, in the lock order of the module doc.
                statements = [
                    self._upsert_conversations(inserted, trained),
                    self._insert_message_logs(new_users, trained),
                    self._insert_facets(inserted),
                    self._update_sessions(inserted),
                    self._add_statistics(inserted),
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
        for event in users:
            event.text_hash = text_hash(event.text)
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
                "COPY conversation_event (id, conversation_id, type_name, timestamp, intent_name, action_name,"
                " slot_name, slot_value, policy, data, message_log_id, rasa_environment, dedupe_key) FROM STDIN",
                io.StringIO(
                    "".join(
                        f"{e.event_id}\t{copy_row(e)}\t{NULL if e.message_log_id is None else e.message_log_id}\t"
                        f"{copy_text(e.environment)}\t\\\\x{e.dedupe_key.hex()}\n"
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
            "COPY incoming_event (conversation_id, type_name, timestamp, intent_name, action_name, slot_name,"
            " slot_value, policy, data, rasa_environment, dedupe_key) FROM STDIN",
            io.StringIO(
                "".join(f"{copy_row(e)}\t{copy_text(e.environment)}\t\\\\x{e.dedupe_key.hex()}\n" for e in batch)
            ),
        )
        cursor.execute(
            """
            INSERT INTO conversation_event (conversation_id, type_name, timestamp, intent_name, action_name,
                slot_name, slot_value, policy, data, message_log_id, rasa_environment, dedupe_key)
            SELECT conversation_id, type_name, timestamp, intent_name, action_name, slot_name, slot_value, policy,
                data, CASE WHEN type_name = 'user' THEN nextval(%s::regclass) END, rasa_environment, dedupe_key
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
    def _upsert_conversations(inserted: list[Event], trained: set[str]):
        aggregates: dict[str, _Conversation] = {}
        for event in inserted:
            aggregate = aggregates.get(event.sender_id)
            if aggregate is None:
                aggregate = aggregates[event.sender_id] = _Conversation(event)
            aggregate.add(event, trained)
        rows = [aggregates[sender] for sender in sorted(aggregates)]
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
    def _insert_facets(inserted: list[Event]):
        rows: dict[Facet, set[tuple]] = {facet: set() for facet in FACETS}
        for e in inserted:
            if e.type_name == "user":
                if e.intent_name:
                    rows[INTENTS].add((e.sender_id, e.intent_name))
                for entity in e.entity_names:
                    rows[ENTITIES].add((e.sender_id, entity))
                if e.input_channel:
                    rows[INPUT_CHANNELS].add((e.sender_id, e.input_channel))
            elif e.type_name == "action":
                if e.action_name:
                    rows[ACTIONS].add((e.sender_id, e.action_name))
                if e.policy:
                    rows[POLICIES].add((e.sender_id, e.policy))
            elif e.type_name == "slot" and e.slot_name and len(e.slot_value) <= MAX_SLOT_FACET:
                rows[SLOTS].add((e.sender_id, e.slot_name, e.slot_value))
        parameters = []
        statements = []
        for facet in FACETS:
            if not rows[facet]:
                continue
            width = len(facet.columns) + 1
            ordered = sorted(rows[facet])
            statements.append(
                f"f{len(statements)} AS (INSERT INTO {facet.table} (conversation_id, {', '.join(facet.columns)}) "
                "SELECT * FROM unnest(" + ", ".join(["%s::text[]"] * width) + ") ON CONFLICT DO NOTHING)"
            )
            parameters.extend([row[i] for row in ordered] for i in range(width))
        if not statements:
            return None, None
        return "WITH " + ", ".join(statements) + " SELECT 1", parameters

    @staticmethod
    def _update_sessions(inserted: list[Event]):
        # Of two new starts at one time the first environment in sort order wins, as a start
        # already stored wins over a new one: the same choice in whatever order they come.
        starts: dict[tuple[str, float], str] = {}
        for e in inserted:
            if e.type_name == "session_started":
                key = (e.sender_id, e.timestamp)
                if key not in starts or e.environment < starts[key]:
                    starts[key] = e.environment
        start_keys = sorted(starts)
        # Recompute every session that holds one of the new events, from the stored events in
        # time order: the session an event belongs to can change when a session_started that
        # was published earlier is delivered later, so nothing is accumulated here. New sessions
        # are inserted with their values, and a session whose values did not change is not
        # written again.
        earliest: dict[str, float] = {}
        for e in inserted:
            if e.timestamp < earliest.get(e.sender_id, float("inf")):
                earliest[e.sender_id] = e.timestamp
        senders = sorted(earliest)
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
                senders,
                [earliest[s] for s in senders],
                [k[0] for k in start_keys],
                [k[1] for k in start_keys],
                [starts[k] for k in start_keys],
            ),
        )

    @staticmethod
    def _add_statistics(inserted: list[Event]):
        counters: dict[tuple[str, int], list] = {}
        for e in inserted:
            key = (e.environment, statistic_shard(e.sender_id))
            counter = counters.get(key)
            if counter is None:
                counter = counters[key] = [0, 0, 0, e.timestamp]
            counter[0] += e.type_name == "user"
            counter[1] += e.type_name == "bot"
            counter[2] += 1
            if e.timestamp > counter[3]:
                counter[3] = e.timestamp
        keys = sorted(counters)
        # Last statement of the transaction: a shard row is shared by many conversations, so
        # its lock is held for as short a time as possible.
        return (
            """
            INSERT INTO conversation_statistic AS s (rasa_environment, shard, total_user_messages,
                total_bot_messages, total_events, latest_event_time)
            SELECT * FROM unnest(%s::text[], %s::int2[], %s::int8[], %s::int8[], %s::int8[], %s::float8[])
            ON CONFLICT (rasa_environment, shard) DO UPDATE SET
                total_user_messages = s.total_user_messages + excluded.total_user_messages,
                total_bot_messages = s.total_bot_messages + excluded.total_bot_messages,
                total_events = s.total_events + excluded.total_events,
                latest_event_time = GREATEST(s.latest_event_time, excluded.latest_event_time)
            """,
            (
                [k[0] for k in keys],
                [k[1] for k in keys],
                [counters[k][0] for k in keys],
                [counters[k][1] for k in keys],
                [counters[k][2] for k in keys],
                [counters[k][3] for k in keys],
            ),
        )


def array_literal(values: list) -> str:
    """One array constant ('{...}') for a `%s::type[]` parameter.

    psycopg2 sends a list as ARRAY[v1, v2, ...]: PostgreSQL then parses and plans every element
    as an expression of its own, which cost more CPU than the inserts that use them.
    """
    return "{" + ",".join(map(_array_element, values)) + "}"


def _array_element(value) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, str):
        if "\\" in value or '"' in value:
            value = value.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{value}"'
    if isinstance(value, bool):
        return "t" if value else "f"
    return repr(value)  # int or finite float: both read back exactly


NULL = "\\N"


def copy_row(e: Event) -> str:
    """The COPY text of the event's columns from conversation_id to data."""
    return (
        f"{copy_text(e.sender_id)}\t{copy_text(e.type_name)}\t{e.timestamp!r}\t{copy_text(e.intent_name)}\t"
        f"{copy_text(e.action_name)}\t{copy_text(e.slot_name)}\t{copy_text(e.slot_value)}\t"
        f"{copy_text(e.policy)}\t{copy_text(e.data)}"
    )


def copy_text(value: str | None) -> str:
    """A value in COPY's text format (tab-separated, backslash escapes, \\N for NULL)."""
    if value is None:
        return NULL
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        value = value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return value


class _Conversation:
    """What one batch's new events add to their conversation row."""

    __slots__ = (
        "sender_id", "environment", "user_messages", "channel", "channel_time", "first_time",
        "latest_time", "min_action", "max_action", "min_intent", "max_intent", "in_training_data",
    )

    def __init__(self, event: Event):
        self.sender_id = event.sender_id
        self.environment = event.environment
        self.first_time = self.latest_time = event.timestamp
        self.user_messages = 0
        self.channel = self.channel_time = None
        self.min_action = self.max_action = self.min_intent = self.max_intent = None
        self.in_training_data = True

    def add(self, e: Event, trained: set[str]) -> None:
        # Ties are broken on the values themselves so that any arrival order gives one result.
        if (e.timestamp, e.environment) < (self.first_time, self.environment):
            self.first_time, self.environment = e.timestamp, e.environment
        if e.timestamp > self.latest_time:
            self.latest_time = e.timestamp
        if e.type_name == "user":
            self.user_messages += 1
            if e.input_channel and (self.channel_time is None or (e.timestamp, e.input_channel) > (self.channel_time, self.channel)):
                self.channel, self.channel_time = e.input_channel, e.timestamp
            if e.confidence is not None:
                self.min_intent = e.confidence if self.min_intent is None else min(self.min_intent, e.confidence)
                self.max_intent = e.confidence if self.max_intent is None else max(self.max_intent, e.confidence)
            if e.text_hash not in trained:
                self.in_training_data = False
        elif e.type_name == "action" and e.confidence is not None:
            self.min_action = e.confidence if self.min_action is None else min(self.min_action, e.confidence)
            self.max_action = e.confidence if self.max_action is None else max(self.max_action, e.confidence)

