"""The live-update hub of one rasa-x worker process: one LISTEN connection, many subscribers.

The event service NOTIFYs services/common/live_feed.CHANNEL inside each storing transaction, so a
notice arrives only for committed events. Each worker process runs one listener thread (started
with its first subscriber) that receives those notices and, per notice, reads the new events of
the conversations its subscribers watch ONCE from the database, then hands them to every
subscriber watching: the database does one query per notice and watched conversation, never
one per client. Every rasa-x worker and replica listens on its own, so any of them can hold a
socket and all deliver.

Subscribers also get "the conversation list changed" notices, coalesced to at most one per
LIST_NOTICE_SECONDS. When the listener lost its connection, notices of the gap are gone:
subscribers then get a `resync` telling them to reload what they show.

Sending is the subscriber's own thread's job (api/live.py): the hub only queues and rings the
subscriber's doorbell, so a slow or stalled client cannot hold up the others.
"""

from __future__ import annotations

import json
import logging
import os
import select
import threading
import time
from collections import OrderedDict, deque
from typing import Callable

import psycopg2
import sqlalchemy as sa

from services.common import live_feed
from services.common.config import LIVE_SOCKETS_PER_WORKER, DatabaseSettings
from services.common.db import connect
from services.common.retry import one_line

log = logging.getLogger(__name__)

LIST_NOTICE_SECONDS = 1.0
# A list notice names at most this many conversations; beyond that it says "many" (null).
LIST_NOTICE_MAX_IDS = 100
# Events of a conversation a subscriber remembers having sent: a notice's id range may cover events
# an earlier notice already delivered (ranges of concurrent batches can interleave).
REMEMBERED_EVENT_IDS = 5000
# Messages a subscriber may have waiting before it counts as stalled and is dropped.
MAX_QUEUED = 1000
RECONNECT_SECONDS = (0.5, 1, 2, 5, 10)

# A socket holds a gunicorn thread for its whole life (gthread runs one request per thread), so
# each worker gets this many threads on top of GUNICORN_THREADS, and refuses sockets beyond it:
# the API's threads stay free however many browsers are open. Each socket costs two threads
# (simple-websocket reads in one of its own), each mostly idle, about 100 kB resident together.
SOCKETS_ENV = LIVE_SOCKETS_PER_WORKER
DEFAULT_SOCKETS = 64


def sockets_per_worker() -> int:
    raw = os.environ.get(SOCKETS_ENV) or str(DEFAULT_SOCKETS)
    if not raw.isdigit() or not 1 <= int(raw) <= 10_000:
        raise ValueError(f"{SOCKETS_ENV}: must be a whole number from 1 to 10000, got {raw!r}")
    return int(raw)


# The gunicorn worker of this process (post_worker_init): a socket handler ends when it stops,
# so a graceful restart is not held up by open sockets for its whole graceful timeout.
_worker = None


def worker_started(worker) -> None:
    global _worker
    _worker = worker


def stopping() -> bool:
    return _worker is not None and not _worker.alive


class Subscriber:
    def __init__(self, doorbell: Callable[[], None]):
        self._doorbell = doorbell
        self._lock = threading.Lock()
        self._outbox: deque[str] = deque()
        self._watching: str | None = None
        self._sent: OrderedDict[int, None] = OrderedDict()
        self.overflowed = False

    @property
    def watching(self) -> str | None:
        return self._watching

    def watch(self, sender_id: str | None, stored_ids: list[int]) -> None:
        """Watch `sender_id` (None: none), whose events `stored_ids` are stored already."""
        with self._lock:
            self._watching = sender_id
            self._sent.clear()
            for event_id in stored_ids:
                self._remember(event_id)

    def _remember(self, event_id: int) -> None:
        self._sent[event_id] = None
        if len(self._sent) > REMEMBERED_EVENT_IDS:
            self._sent.popitem(last=False)

    def offer_events(self, sender_id: str, rows: list[tuple[int, dict]]) -> None:
        with self._lock:
            if sender_id != self._watching:
                return  # the subscriber switched conversations meanwhile
            new = []
            for event_id, event in rows:
                if event_id not in self._sent:
                    new.append(event)
                    self._remember(event_id)
        if new:
            self.push({"type": "events", "conversation_id": sender_id, "events": new})

    def push(self, message: dict) -> None:
        with self._lock:
            if len(self._outbox) >= MAX_QUEUED:
                self.overflowed = True
            else:
                self._outbox.append(json.dumps(message))
        self._doorbell()

    def take(self) -> list[str]:
        with self._lock:
            messages = list(self._outbox)
            self._outbox.clear()
        return messages


class Hub:
    """The subscribers of this process and the thread that feeds them."""

    def __init__(self, db: DatabaseSettings, engine: sa.engine.Engine, capacity: int):
        self.db = db
        self.engine = engine
        self.capacity = capacity
        self._lock = threading.Lock()
        self._subscribers: set[Subscriber] = set()
        self._thread: threading.Thread | None = None
        self._changed: set[str] = set()
        self._changed_overflow = False
        self._next_list_notice = 0.0
        self.listening = threading.Event()

    def stored_ids(self, sender_id: str) -> list[int]:
        """The ids of the newest events stored in `sender_id`: a new watcher has those already."""
        with self.engine.connect() as connection:
            return connection.execute(
                sa.text("SELECT id FROM conversation_event WHERE conversation_id = :s ORDER BY id DESC LIMIT :n"),
                {"s": sender_id, "n": REMEMBERED_EVENT_IDS},
            ).scalars().all()

    # ----- subscribers ---------------------------------------------------------------------
    def subscribe(self, doorbell: Callable[[], None]) -> Subscriber | None:
        """A new subscriber, or None when this process already holds `capacity` of them."""
        with self._lock:
            if len(self._subscribers) >= self.capacity:
                return None
            subscriber = Subscriber(doorbell)
            self._subscribers.add(subscriber)
            if self._thread is None:
                # Started here, not at import: gunicorn forks its workers after loading nothing
                # of the app, but a thread started before a fork would not exist in the child.
                self._thread = threading.Thread(target=self._listen_forever, name="rasax-live", daemon=True)
                self._thread.start()
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        with self._lock:
            self._subscribers.discard(subscriber)

    def count(self) -> int:
        with self._lock:
            return len(self._subscribers)

    def _all(self) -> list[Subscriber]:
        with self._lock:
            return list(self._subscribers)

    # ----- the listener --------------------------------------------------------------------
    def _listen_forever(self) -> None:
        failures = 0
        while True:
            try:
                connection = connect(self.db, "rasax-live")
            except psycopg2.Error as exc:
                delay = RECONNECT_SECONDS[min(failures, len(RECONNECT_SECONDS) - 1)]
                log.warning("live updates: cannot reach PostgreSQL (%s); retrying in %s s", one_line(exc), delay)
                failures += 1
                time.sleep(delay)
                continue
            try:
                connection.autocommit = True
                with connection.cursor() as cursor:
                    cursor.execute(f"LISTEN {live_feed.CHANNEL}")
                if failures:
                    log.info("live updates: listening again; subscribers are told to reload")
                    for subscriber in self._all():
                        subscriber.push({"type": "resync"})
                failures = 0
                self.listening.set()
                self._listen(connection)
            except psycopg2.Error as exc:
                log.warning("live updates: the listening connection failed (%s); reconnecting", one_line(exc))
                failures += 1
            except Exception:  # noqa: BLE001 - a bug must not end live updates for the process
                log.exception("live updates: unexpected error; reconnecting")
                failures += 1
            finally:
                self.listening.clear()
                connection.close()

    def _listen(self, connection) -> None:
        while True:
            timeout = max(0.0, self._next_list_notice - time.monotonic()) if self._changed or self._changed_overflow else 30.0
            readable, _, _ = select.select([connection], [], [], timeout)
            if readable:
                connection.poll()
            else:
                with connection.cursor() as cursor:  # an idle connection's liveness check
                    cursor.execute("SELECT 1")
            stored: list[live_feed.Stored] = []
            while connection.notifies:
                stored.extend(live_feed.parse(connection.notifies.pop(0).payload))
            if stored:
                self._deliver(stored)
            self._maybe_send_list_notice()

    def _deliver(self, stored: list[live_feed.Stored]) -> None:
        subscribers = self._all()
        watched: dict[str, list[Subscriber]] = {}
        for subscriber in subscribers:
            if subscriber.watching is not None:
                watched.setdefault(subscriber.watching, []).append(subscriber)
        wanted = [item for item in stored if item.sender_id in watched]
        if wanted:
            for sender_id, rows in self._read(wanted).items():
                for subscriber in watched[sender_id]:
                    subscriber.offer_events(sender_id, rows)
        for item in stored:
            if len(self._changed) < LIST_NOTICE_MAX_IDS:
                self._changed.add(item.sender_id)
            elif item.sender_id not in self._changed:
                self._changed_overflow = True

    def _read(self, wanted: list[live_feed.Stored]) -> dict[str, list[tuple[int, dict]]]:
        """The events of each notice's range, as GET /api/conversations/{id} shows them."""
        result: dict[str, list[tuple[int, dict]]] = {}
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.text(
                    "SELECT e.conversation_id, e.id, e.data, e.is_flagged FROM conversation_event e "
                    "JOIN unnest(CAST(:senders AS text[]), CAST(:firsts AS int8[]), CAST(:lasts AS int8[])) "
                    "AS w(sender_id, first_id, last_id) "
                    "ON e.conversation_id = w.sender_id AND e.id BETWEEN w.first_id AND w.last_id "
                    "ORDER BY e.conversation_id, e.timestamp, e.id"
                ),
                {"senders": [w.sender_id for w in wanted], "firsts": [w.first for w in wanted],
                 "lasts": [w.last for w in wanted]},
            ).all()
        for row in rows:
            result.setdefault(row.conversation_id, []).append(
                (row.id, dict(json.loads(row.data), is_flagged=row.is_flagged))
            )
        return result

    def _maybe_send_list_notice(self) -> None:
        if not (self._changed or self._changed_overflow) or time.monotonic() < self._next_list_notice:
            return
        ids = None if self._changed_overflow else sorted(self._changed)
        self._changed.clear()
        self._changed_overflow = False
        self._next_list_notice = time.monotonic() + LIST_NOTICE_SECONDS
        for subscriber in self._all():
            subscriber.push({"type": "conversations_changed", "conversation_ids": ids})
