"""Conversations a Rasa bot already had: from its SQL tracker store into the event store.

Rasa's SQLTrackerStore (PostgreSQL or SQLite) keeps every event as a row of its table `events`
(RASA_EVENTS below); `data` is `json.dumps(event.as_dict())`. What Rasa publishes to the event
broker for the same event is `json.dumps({"sender_id": ..., **event.as_dict()})`, so a row
becomes exactly the body the event service would have received: `body_of_row` splices the
sender id into `data`. The body then goes through the service's own path — `parse_event`, the
content `dedupe_key`, `EventStore.write` and its derived rows — so an event imported twice, or
imported and also streamed live, is stored once, and a re-run after an interruption (SIGINT,
SIGKILL) simply continues: what was committed is recognised and skipped.

The tracker store is only read: PostgreSQL in one read-only REPEATABLE READ transaction (one
consistent snapshot while the bot keeps writing), SQLite opened with `mode=ro` and read page by
page (see Reader._pages). Rows are read ordered by (sender_id, id) — one conversation after the
other, each in Rasa's own order — in batches of BATCH_SIZE, one store transaction each.
"""

from __future__ import annotations

import collections
import json
import os
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator
from urllib.parse import quote

import sqlalchemy as sa

from services.common.amqp import DEFAULT_RASA_ENVIRONMENT
from services.common.config import DatabaseSettings
from services.common.retry import one_line

from .parsing import BadEvent, Event, parse_event
from .store import CONNECTION_ERRORS, EventStore, connect

# The table Rasa 3.x's SQLTrackerStore creates (rasa/core/tracker_store.py, class SQLEvent), as
# SQLAlchemy's create_all writes it: the importer checks a store against it, and the tests and
# the bench create tracker stores from it.
RASA_METADATA = sa.MetaData()
RASA_EVENTS = sa.Table(
    "events",
    RASA_METADATA,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("sender_id", sa.String(255), nullable=False, index=True),
    sa.Column("type_name", sa.String(255), nullable=False),
    sa.Column("timestamp", sa.Float),
    sa.Column("intent_name", sa.String(255)),
    sa.Column("action_name", sa.String(255)),
    sa.Column("data", sa.Text),
)
EXPECTED_COLUMNS = tuple(column.name for column in RASA_EVENTS.columns)
# Events per store transaction: large enough that a transaction's fixed cost is small, small
# enough that an interruption loses little work and progress is reported often.
BATCH_SIZE = 2000
# Rows of each kind of refusal kept in the summary (all are counted).
REFUSED_EXAMPLES = 20
# Where progress is reported at most this often.
PROGRESS_INTERVAL = 2.0
SUPPORTED = "postgresql://USER@HOST:PORT/DATABASE or sqlite:///PATH"


class TrackerStoreError(RuntimeError):
    """The tracker store cannot be read as Rasa's: `str()` is the one line to show."""


# ----- the tracker store -------------------------------------------------------------------------
@dataclass(frozen=True)
class TrackerStore:
    """Where a tracker store is: a SQLAlchemy URL (the password may come separately)."""

    url: sa.engine.URL

    @classmethod
    def parse(cls, text: str, password: str | None = None) -> "TrackerStore":
        try:
            url = sa.engine.make_url(text)
        except sa.exc.ArgumentError:
            raise TrackerStoreError(f"not a tracker store URL: expected {SUPPORTED}") from None
        backend = url.get_backend_name()
        if backend in ("redis", "mongodb", "mongodb+srv", "dynamodb"):
            raise TrackerStoreError(f"{backend} tracker stores are not supported yet: only Rasa's SQL tracker "
                                    f"store ({SUPPORTED})")
        if backend == "postgres":  # what Rasa's own docs and Heroku-style URLs call it
            backend = "postgresql"
        if backend not in ("postgresql", "sqlite"):
            raise TrackerStoreError(f"a {backend} tracker store is not supported: expected {SUPPORTED}")
        if backend == "postgresql":
            url = url.set(drivername="postgresql+psycopg2")
            if password is not None:
                url = url.set(password=password)
            if not url.database:
                raise TrackerStoreError(f"the URL names no database: expected {SUPPORTED}")
        elif not url.database or url.database == ":memory:":
            raise TrackerStoreError(f"the URL names no SQLite file: expected {SUPPORTED}")
        return cls(url)

    @classmethod
    def of_stack(cls, db: DatabaseSettings) -> "TrackerStore":
        """The stack's own tracker database: DB_TRACKER_DATABASE on the stack's PostgreSQL."""
        return cls(sa.engine.URL.create("postgresql+psycopg2", username=db.user, password=db.password, host=db.host,
                                        port=db.port, database=db.tracker_database))

    @property
    def is_sqlite(self) -> bool:
        return self.url.get_backend_name() == "sqlite"

    def describe(self) -> str:
        """For messages and the summary: never the password."""
        if self.is_sqlite:
            return f"SQLite file {self.url.database}"
        return f"PostgreSQL {self.url.username or ''}@{self.url.host or 'localhost'}:{self.url.port or 5432}/{self.url.database}"

    def engine(self) -> sa.engine.Engine:
        if self.is_sqlite:
            path = os.path.abspath(self.url.database)
            if not os.path.isfile(path):
                raise TrackerStoreError(f"no SQLite file at {path}")
            # mode=ro: SQLite itself refuses every write, whatever this process would do.
            return sa.create_engine(sa.engine.URL.create("sqlite", database=f"file:{quote(path)}?mode=ro",
                                                         query={"uri": "true"}), poolclass=sa.pool.NullPool)
        return sa.create_engine(
            self.url, poolclass=sa.pool.NullPool,
            connect_args={"connect_timeout": 5, "application_name": "rasax-conversations-import",
                          # Read-only at the server: not even a bug here could write to Rasa's table.
                          "options": "-c default_transaction_read_only=on"},
        )


@dataclass(frozen=True)
class Selection:
    """Which events to import: conversations (none: all), a time window [since, until), and
    only the rows after `after` = (sender_id, row id), where an earlier import stopped."""

    conversations: tuple[str, ...] = ()
    since: float | None = None
    until: float | None = None
    after: tuple[str, int] | None = None

    def where(self):
        table = RASA_EVENTS.c
        clauses = []
        if self.conversations:
            clauses.append(table.sender_id.in_(self.conversations))
        if self.since is not None:
            clauses.append(table.timestamp >= self.since)
        if self.until is not None:
            clauses.append(table.timestamp < self.until)
        if self.after is not None:
            # The read order (sender_id, id): what follows the last row read before.
            clauses.append(sa.tuple_(table.sender_id, table.id) > sa.tuple_(*self.after))
        return sa.and_(sa.true(), *clauses)


class Reader:
    """One read-only connection to a tracker store, one snapshot for the count and the rows."""

    def __init__(self, store: TrackerStore):
        self.store = store
        self._engine = store.engine()
        try:
            self._connection = self._engine.connect()
            if not store.is_sqlite:
                self._connection = self._connection.execution_options(isolation_level="REPEATABLE READ",
                                                                      postgresql_readonly=True)
            self._connection.begin()
            self._check_table()
        except sa.exc.DBAPIError as exc:
            self.close()
            raise TrackerStoreError(self._connection_problem(exc)) from None
        except BaseException:
            self.close()
            raise

    def _connection_problem(self, exc: sa.exc.DBAPIError) -> str:
        reason = one_line(exc.orig) if exc.orig is not None else one_line(exc)
        where = self.store.describe()
        if "password authentication failed" in reason:
            return f"{where} refused the password of user {self.store.url.username!r}: {reason}"
        if "file is not a database" in reason:
            return f"{where} is not a SQLite database: {reason}"
        return f"cannot read the tracker store at {where}: {reason}"

    def _check_table(self) -> None:
        inspector = sa.inspect(self._connection)
        expected = ", ".join(EXPECTED_COLUMNS)
        if not inspector.has_table(RASA_EVENTS.name):
            raise TrackerStoreError(f"{self.store.describe()} has no table {RASA_EVENTS.name!r}: not a Rasa SQL tracker "
                                    f"store (Rasa writes events({expected}))")
        found = {column["name"] for column in inspector.get_columns(RASA_EVENTS.name)}
        missing = [name for name in EXPECTED_COLUMNS if name not in found]
        if missing:
            raise TrackerStoreError(f"the table {RASA_EVENTS.name!r} of {self.store.describe()} is not Rasa's: it has no "
                                    f"column {', '.join(missing)} (Rasa writes events({expected}))")

    def count(self, selection: Selection) -> tuple[int, int]:
        """(events, conversations) selected."""
        query = sa.select(sa.func.count(), sa.func.count(sa.distinct(RASA_EVENTS.c.sender_id))).where(selection.where())
        try:
            events, conversations = self._connection.execute(query).one()
        except sa.exc.DBAPIError as exc:
            raise TrackerStoreError(self._connection_problem(exc)) from None
        return events, conversations

    def batches(self, selection: Selection, size: int = BATCH_SIZE) -> Iterator[list[tuple]]:
        """The selected rows (EXPECTED_COLUMNS), conversation by conversation, in Rasa's order."""
        try:
            if self.store.is_sqlite:
                yield from self._pages(selection, size)
                return
            # A server-side cursor on PostgreSQL: a million rows are not held in memory, and the
            # read-only snapshot keeps no lock that would stop Rasa writing.
            result = self._connection.execution_options(stream_results=True, yield_per=size).execute(_rows(selection))
            for partition in result.partitions(size):
                yield [tuple(row) for row in partition]
        except sa.exc.DBAPIError as exc:
            raise TrackerStoreError(self._connection_problem(exc)) from None

    def _pages(self, selection: Selection, size: int) -> Iterator[list[tuple]]:
        """SQLite keeps a reader's lock for as long as its statement runs, and in the rollback
        journal Rasa leaves it in, a writer cannot commit meanwhile: a live bot would fail with
        "database is locked". So one short statement per page, each after the last row read."""
        after = selection.after
        while True:
            page = Selection(selection.conversations, selection.since, selection.until, after)
            rows = [tuple(row) for row in self._connection.execute(_rows(page).limit(size)).all()]
            if not rows:
                return
            yield rows
            after = (rows[-1][1], rows[-1][0])

    def close(self) -> None:
        connection = getattr(self, "_connection", None)
        if connection is not None:
            try:
                connection.close()  # rolls the read-only transaction back: nothing to keep
            except sa.exc.DBAPIError:
                pass
        self._engine.dispose()


def _rows(selection: Selection):
    table = RASA_EVENTS.c
    return (sa.select(*(table[name] for name in EXPECTED_COLUMNS)).where(selection.where())
            .order_by(table.sender_id, table.id))


# ----- a row as the event the broker would have carried ------------------------------------------
def body_of_row(sender_id, data) -> bytes:
    """The body Rasa's event broker publishes for this row: `data` with the sender id first.

    Spliced as text, not re-serialised: for the `json.dumps` text Rasa writes this gives the
    broker's body byte for byte (and parse_event checks the JSON anyway).
    """
    if not isinstance(data, str):
        raise BadEvent("the row's data is empty" if data is None else "the row's data is not text")
    text = data.lstrip()
    if not text.startswith("{"):
        raise BadEvent("the row's data is not a JSON object")
    if not isinstance(sender_id, str):
        raise BadEvent("the row's sender_id is not text")
    rest = text[1:]
    separator = "" if rest.lstrip().startswith("}") else ", "
    return f'{{"sender_id": {json.dumps(sender_id)}{separator}{rest}'.encode("utf-8", "surrogatepass")


def _has_sender_id(data: str) -> bool:
    try:
        value = json.loads(data)
    except (ValueError, RecursionError):
        return False  # parse_event says what is wrong with it
    return isinstance(value, dict) and "sender_id" in value


def event_of_row(row: tuple, environment: str) -> Event:
    """The storable event of one tracker-store row; BadEvent says why Rasa could not have written it."""
    _id, sender_id, type_name, timestamp, _intent, _action, data = row
    if isinstance(data, str) and "sender_id" in data and _has_sender_id(data):  # the exact check only when needed
        raise BadEvent("the row's data has a sender_id of its own (Rasa never writes one there)")
    event = parse_event(body_of_row(sender_id, data), environment)
    if event.type_name != type_name:
        raise BadEvent(f"type_name {type_name!r} of the row differs from the event type {event.type_name!r} in its data")
    if timestamp is not None and timestamp != event.timestamp:
        raise BadEvent(f"timestamp {timestamp!r} of the row differs from {event.timestamp!r} in its data")
    return event


# ----- the import --------------------------------------------------------------------------------
@dataclass
class Summary:
    tracker_store: str
    dry_run: bool
    events_selected: int = 0
    conversations_selected: int = 0
    events_read: int = 0
    conversations_done: int = 0
    # With dry_run: what an import would store, and the events already stored.
    stored: int = 0
    skipped_duplicate: int = 0
    refused: int = 0
    refused_reasons: collections.Counter = field(default_factory=collections.Counter)
    refused_rows: list = field(default_factory=list)
    seconds: float = 0.0
    interrupted: bool = False
    # (sender_id, row id) of the last row read and committed: Selection.after of a continuation.
    last_row: tuple[str, int] | None = None

    @property
    def events_per_second(self) -> float:
        return self.events_read / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict:
        return {
            "tracker_store": self.tracker_store,
            "dry_run": self.dry_run,
            # Read to the end (a SQLite store, read page by page, may have grown meanwhile).
            "complete": not self.interrupted,
            "interrupted": self.interrupted,
            "events_selected": self.events_selected,
            "conversations_selected": self.conversations_selected,
            "events_read": self.events_read,
            "conversations_done": self.conversations_done,
            "stored": self.stored,
            "skipped_duplicate": self.skipped_duplicate,
            "refused": self.refused,
            "refused_reasons": dict(self.refused_reasons),
            "refused_rows": self.refused_rows,
            "seconds": round(self.seconds, 2),
            "events_per_second": round(self.events_per_second, 1),
            "last_row": list(self.last_row) if self.last_row else None,
        }

    def refuse(self, row: tuple, reason: str) -> None:
        self.refused += 1
        kind = reason.split(":")[0]
        self.refused_reasons[kind] += 1
        if len(self.refused_rows) < REFUSED_EXAMPLES:
            self.refused_rows.append({"row_id": row[0], "sender_id": row[1], "reason": reason})


@dataclass(frozen=True)
class Progress:
    events_read: int
    events_selected: int
    conversations_done: int
    conversations_selected: int
    events_per_second: float
    eta_seconds: float | None

    def as_dict(self) -> dict:
        return {"events_read": self.events_read, "events_selected": self.events_selected,
                "conversations_done": self.conversations_done, "conversations_selected": self.conversations_selected,
                "events_per_second": round(self.events_per_second, 1),
                "eta_seconds": None if self.eta_seconds is None else round(self.eta_seconds, 1)}


class EventDatabaseError(RuntimeError):
    """The event database (rasa-x's) failed: one line, with what was committed before."""


def import_conversations(
    store: TrackerStore,
    db: DatabaseSettings,
    selection: Selection = Selection(),
    *,
    dry_run: bool = False,
    environment: str = DEFAULT_RASA_ENVIRONMENT,
    batch_size: int = BATCH_SIZE,
    progress: Callable[[Progress], None] | None = None,
    stop: threading.Event | None = None,
) -> Summary:
    """Store the selected events of `store` in `db` (or with `dry_run`, count what would be).

    `stop` set: the batch in hand is committed, then the import ends with `interrupted`.
    """
    summary = Summary(store.describe(), dry_run)
    reader = Reader(store)
    try:
        target = _DryRun(db) if dry_run else _Writer(db)
    except BaseException:
        reader.close()
        raise
    started = reported = time.monotonic()
    batches = None
    try:
        summary.events_selected, summary.conversations_selected = reader.count(selection)
        last_sender = None
        batches = _Prefetch(_parsed(reader.batches(selection, batch_size), environment))
        for batch in batches:
            for row, reason in batch.refused:
                summary.refuse(row, reason)
            result = target.write(batch.events, summary)
            summary.stored += result.inserted
            summary.skipped_duplicate += result.duplicates
            for event, reason in result.rejected:
                summary.refuse((batch.row_ids[id(event)], event.sender_id), reason)
            # Conversations come one after the other: a new sender completes the one before.
            for sender in batch.senders:
                if sender != last_sender:
                    summary.conversations_done += last_sender is not None
                    last_sender = sender
            summary.events_read += batch.rows
            summary.last_row = batch.last_row
            now = time.monotonic()
            summary.seconds = now - started
            if progress is not None and now - reported >= PROGRESS_INTERVAL:
                reported = now
                progress(_progress(summary))
            if stop is not None and stop.is_set():
                summary.interrupted = True
                break
        if not summary.interrupted and last_sender is not None:
            summary.conversations_done += 1
    finally:
        if batches is not None:
            batches.close()
        reader.close()
        target.close()
    summary.seconds = time.monotonic() - started
    if progress is not None:
        progress(_progress(summary))
    return summary


@dataclass
class _Batch:
    rows: int
    events: list[Event]
    row_ids: dict[int, int]  # id(event) → its row's id
    refused: list[tuple[tuple, str]]
    senders: list[str]  # in order, each once per run of rows
    last_row: tuple[str, int] | None = None


def _parsed(batches: Iterator[list[tuple]], environment: str) -> Iterator[_Batch]:
    for rows in batches:
        batch = _Batch(len(rows), [], {}, [], [])
        for row in rows:
            if not batch.senders or batch.senders[-1] != row[1]:
                batch.senders.append(row[1])
            try:
                event = event_of_row(row, environment)
            except BadEvent as exc:
                batch.refused.append((row, str(exc)))
                continue
            batch.events.append(event)
            batch.row_ids[id(event)] = row[0]
        if rows:
            batch.last_row = (rows[-1][1], rows[-1][0])
        yield batch


class _Prefetch:
    """The next batches read and parsed in a thread while the current one is written: the
    database clients wait without the interpreter lock, so reading and parsing overlap the
    store's round trips."""

    _END = object()

    def __init__(self, iterator: Iterator, depth: int = 2):
        self._queue: queue.Queue = queue.Queue(depth)
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(iterator,), name="tracker-reader", daemon=True)
        self._thread.start()

    def _run(self, iterator: Iterator) -> None:
        try:
            for item in iterator:
                if not self._put(item):
                    return
            self._put(self._END)
        except BaseException as exc:  # noqa: BLE001 - handed to the consuming thread
            self._put(exc)

    def _put(self, item) -> bool:
        while not self._closed.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self):
        while True:
            item = self._queue.get()
            if item is self._END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        """Stop reading ahead; returns once the reader thread is done with the connection."""
        self._closed.set()
        self._thread.join()


def _progress(summary: Summary) -> Progress:
    rate = summary.events_per_second
    left = max(summary.events_selected - summary.events_read, 0)
    return Progress(summary.events_read, summary.events_selected, summary.conversations_done,
                    summary.conversations_selected, rate, left / rate if rate else None)


class _Writer:
    """EventStore.write, with the event database's failures as one line that says how to go on."""

    def __init__(self, db: DatabaseSettings):
        self.db = db
        self.store = EventStore(db)

    def write(self, events: list[Event], summary: Summary):
        try:
            return self.store.write(events)
        except CONNECTION_ERRORS as exc:
            raise EventDatabaseError(
                f"lost the event database {self.db.user}@{self.db.host}:{self.db.port}/{self.db.database} after "
                f"{summary.stored} event(s) stored: {one_line(exc)}; run the same import again, it goes on where "
                f"it stopped") from None

    def close(self) -> None:
        self.store.close()


class _DryRun:
    """What a write would do, read-only: which events of the batch are stored already."""

    def __init__(self, db: DatabaseSettings):
        self.db = db
        try:
            self.connection = connect(db, application_name="rasax-conversations-import")
        except CONNECTION_ERRORS as exc:
            raise EventDatabaseError(f"cannot reach the event database {self.db.user}@{self.db.host}:{self.db.port}/"
                                     f"{self.db.database}: {one_line(exc)}") from None
        self.connection.set_session(readonly=True)
        # Keys of the conversation being read: equal keys always share a sender id, and the
        # rows come conversation by conversation.
        self.sender = None
        self.seen: set[bytes] = set()

    def write(self, events: list[Event], summary: Summary):
        from .store import WriteResult

        with self.connection.cursor() as cursor:
            cursor.execute("SELECT dedupe_key FROM conversation_event WHERE dedupe_key = ANY(%s)",
                           ([event.dedupe_key for event in events],))
            stored = {bytes(key) for (key,) in cursor.fetchall()}
        self.connection.rollback()
        result = WriteResult()
        for event in events:
            if event.sender_id != self.sender:
                self.sender, self.seen = event.sender_id, set()
            if event.dedupe_key in stored or event.dedupe_key in self.seen:
                result.duplicates += 1
            else:
                result.inserted += 1
            self.seen.add(event.dedupe_key)
        return result

    def close(self) -> None:
        self.connection.close()
