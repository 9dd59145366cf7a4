"""The pika consumer: deliveries in, batches to PostgreSQL, acknowledgements after commit.

One thread owns the AMQP connection (pika's BlockingConnection is not thread-safe); WRITERS
writer threads, each with its own PostgreSQL connection, parse and store batches while the
connection thread keeps receiving, so broker I/O, parsing and database round trips overlap.
A free writer takes everything received so far: small batches when traffic is light (low
latency), large ones under load (low cost per event), bounded by the prefetch window.

A batch is acknowledged with one `basic_ack(multiple=True)` after its transaction committed
and its bad messages are safely in the dead-letter queue. Whatever is not acknowledged when the
process dies — SIGKILL, a lost connection — is redelivered and ignored by the dedupe key.
"""

from __future__ import annotations

import collections
import logging
import os
import queue
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

import pika
import pika.exceptions
import psycopg2.extensions

from services.common.amqp import connection_parameters, declare_rasa_topology
from services.common.config import RabbitSettings
from services.common.retry import Backoff, one_line

from .metrics import observe
from .parsing import BadEvent, parse_event
from .store import CONNECTION_ERRORS, EventStore, WriteResult

log = logging.getLogger(__name__)

EXPORT_HEADER = "rasa-export-process-id"  # set by `rasa export` on every event it publishes
REASON_HEADER = "x-rasax-dead-letter-reason"
# Unacknowledged deliveries the broker may send ahead. A batch is acked only after its commit,
# so the window must cover the deliveries waiting in writers and commits, or the broker stops
# sending while the database works: 1000 stalled the pipe (~45% of the raw consume rate on the
# benchmark), 4000 keeps it full. Memory: ~4000 × a typical 1–2 KiB event.
PREFETCH = 4000
# Batches written at the same time, each on its own connection: while one waits for its
# commit, the next is already being parsed and sent.
WRITERS = 2
# A lost broker is retried for ever (events wait safely in the queue); the pause grows to this.
MAX_BACKOFF = 30.0
# A batch waits for the database for ever too, retried at most this far apart.
DATABASE_MAX_BACKOFF = 10.0
# How often the broker is asked how many messages wait in the queues (for /metrics).
QUEUE_CHECK_SECONDS = 5.0


def dead_letter_queue(name: str) -> str:
    return f"{name}_dead_letter"


@dataclass
class Stats:
    """Counters for /health and /metrics, updated by the consumer, read by the health thread."""

    consumed: int = 0
    stored: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    dead_letter_reasons: collections.Counter = field(default_factory=collections.Counter)
    exported_events: int = 0
    batches: int = 0
    # Batch latencies, see metrics.observe.
    batch_seconds: collections.Counter = field(default_factory=collections.Counter)
    # Queue name → messages ready in it, as the broker said at queue_measured_at (time.time()).
    queue_messages: dict = field(default_factory=dict)
    queue_measured_at: float = 0.0
    broker_connected: bool = False
    state: str = "starting"

    def as_dict(self) -> dict:
        return {
            "events_consumed": self.consumed,
            "events_stored": self.stored,
            "duplicates_ignored": self.duplicates,
            "events_dead_lettered": self.dead_lettered,
            "dead_letter_reasons": dict(self.dead_letter_reasons),
            "exported_events_received": self.exported_events,
            "batches": self.batches,
            "batch_seconds": dict(self.batch_seconds),
            "queue_messages": dict(self.queue_messages),
            "queue_measured_at": self.queue_measured_at,
        }


class Stopped(Exception):
    """The service is stopping while the database is unreachable: leave the batch unacked."""


class _Batch:
    __slots__ = ("messages", "future", "started")

    def __init__(self, messages: list, future):
        self.messages = messages
        self.future = future
        self.started = time.monotonic()


class Consumer:
    def __init__(
        self,
        rabbit: RabbitSettings,
        store_factory: Callable[[], EventStore],
        stop: threading.Event,
        stats: Stats | None = None,
        prefetch: int = PREFETCH,
        writers: int = WRITERS,
    ):
        self.rabbit = rabbit
        self.stop = stop
        self.stats = stats or Stats()
        self.prefetch = prefetch
        self.writers = writers
        self.database_ok = True
        # One database connection per writer thread.
        self._stores: queue.SimpleQueue[EventStore] = queue.SimpleQueue()
        self._all_stores = [store_factory() for _ in range(writers)]
        for store in self._all_stores:
            self._stores.put(store)
        self._executor = ThreadPoolExecutor(max_workers=writers, thread_name_prefix="writer")
        self._export_ids: set[str] = set()
        self._reset_session()

    def _reset_session(self) -> None:
        self._connection = None
        self._channel = None
        self._pending: list = []
        # Batches handed to writers, in delivery order; acked strictly in this order.
        self._inflight: collections.deque[_Batch] = collections.deque()
        self._halted = False

    # ----- outer loop: (re)connect --------------------------------------------------------
    def run(self) -> None:
        backoff = Backoff(0.5, MAX_BACKOFF)
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                self._session()
            except pika.exceptions.AMQPError as exc:
                reason = one_line(exc) or type(exc).__name__
                self._abandon()
                self.stats.state = "waiting for the broker"
                if self.stop.is_set():
                    break
                # A connection that worked for a while is retried quickly.
                delay = backoff.after_run(time.monotonic() - started)
                log.warning(
                    "broker connection lost or refused: %s; reconnecting in %.1fs",
                    reason,
                    delay,
                    extra={"fields": {"host": self.rabbit.host, "port": self.rabbit.port, "vhost": self.rabbit.vhost}},
                )
                self.stop.wait(delay)
        self._executor.shutdown(wait=True)
        for store in self._all_stores:
            store.close()
        self.stats.state = "stopped"

    def _abandon(self) -> None:
        """The connection is gone: its unacked deliveries will be redelivered, drop them."""
        self.stats.broker_connected = False
        for batch in self._inflight:
            # Let the writers finish (they may commit): those events come back and are ignored.
            try:
                batch.future.result()
            except Exception:  # noqa: BLE001 - logged by the writer; nothing to ack any more
                pass
        connection = self._connection
        self._reset_session()
        if connection is not None and connection.is_open:
            try:
                connection.close()
            except pika.exceptions.AMQPError:
                pass

    def _session(self) -> None:
        # Named so that an operator (or a test) can tell this connection apart in the broker.
        name = f"rasax-event-service {socket.gethostname()} pid {os.getpid()}"
        parameters = connection_parameters(self.rabbit, client_properties={"connection_name": name})
        self._connection = connection = pika.BlockingConnection(parameters)
        channel = self._channel = connection.channel()
        declare_rasa_topology(channel, self.rabbit)
        channel.queue_declare(dead_letter_queue(self.rabbit.queue), durable=True)
        # Dead letters are published with confirms, so a message is acked only once its
        # dead-letter copy is safe with the broker.
        channel.confirm_delivery()
        channel.basic_qos(prefetch_count=self.prefetch)
        self._measure_queues(channel)
        consumer_tag = channel.basic_consume(self.rabbit.queue, self._on_message)
        self.stats.broker_connected = True
        self.stats.state = "consuming"
        log.info(
            "consuming",
            extra={"fields": {"queue": self.rabbit.queue, "exchange": self.rabbit.exchange, "vhost": self.rabbit.vhost}},
        )
        while not self.stop.is_set():
            connection.process_data_events(time_limit=0.2)
            if time.time() - self.stats.queue_measured_at >= QUEUE_CHECK_SECONDS:
                self._measure_queues(channel)
        # SIGTERM: return what was not handed to us yet, store what was, then close.
        self.stats.state = "draining"
        channel.basic_cancel(consumer_tag)
        while (self._pending and not self._halted) or self._inflight:
            self._submit()
            connection.process_data_events(time_limit=0.2)
        connection.close()
        self._reset_session()
        self.stats.broker_connected = False
        log.info("stopped consuming", extra={"fields": {"queue": self.rabbit.queue}})

    def _measure_queues(self, channel) -> None:
        """Ask the broker how many messages wait (a passive declare creates nothing)."""
        for name in (self.rabbit.queue, dead_letter_queue(self.rabbit.queue)):
            self.stats.queue_messages[name] = channel.queue_declare(name, passive=True).method.message_count
        self.stats.queue_measured_at = time.time()

    # ----- connection thread: deliveries and acks ----------------------------------------
    def _on_message(self, channel, method, properties, body: bytes) -> None:
        self._pending.append((method.delivery_tag, properties, body))
        headers = properties.headers
        if headers and EXPORT_HEADER in headers:
            self._note_export(headers[EXPORT_HEADER])
        self._submit()

    def _submit(self) -> None:
        """Hand everything received so far to a writer, if one is free."""
        if not self._pending or self._halted or len(self._inflight) >= self.writers:
            return
        messages, self._pending = self._pending, []
        connection = self._connection
        future = self._executor.submit(self._process, messages)
        self._inflight.append(_Batch(messages, future))

        def done(_future) -> None:
            # Runs in the writer thread: hand the result back to the connection's thread.
            try:
                connection.add_callback_threadsafe(self._finish)
            except pika.exceptions.ConnectionWrongStateError:
                pass  # the connection is gone; the batch will be redelivered

        future.add_done_callback(done)

    def _finish(self) -> None:
        """Acknowledge the finished batches at the head of the line, oldest first.

        A multiple ack covers every earlier delivery, so a batch is acked only when all
        batches before it are stored too.
        """
        stats = self.stats
        while self._inflight and self._inflight[0].future.done():
            batch = self._inflight.popleft()
            try:
                result, bad = batch.future.result()
            except Stopped:
                # Not stored: nothing of this session may be acked any more; the broker
                # redelivers it all once we close.
                self._halted = True
                self._pending = []
                continue
            if self._halted:
                continue
            for (_tag, properties, body), reason in bad:
                self._dead_letter(properties, body, reason)
            self._channel.basic_ack(batch.messages[-1][0], multiple=True)
            stats.consumed += len(batch.messages)
            observe(stats.batch_seconds, time.monotonic() - batch.started)
            stats.stored += result.inserted
            stats.duplicates += result.duplicates
            stats.batches += 1
        if not self.stop.is_set():
            self._submit()

    def _dead_letter(self, properties, body: bytes, reason: str) -> None:
        headers = dict(properties.headers or {})
        headers[REASON_HEADER] = reason
        headers["x-rasax-original-queue"] = self.rabbit.queue
        self._channel.basic_publish(
            exchange="",
            routing_key=dead_letter_queue(self.rabbit.queue),
            body=body,
            properties=pika.BasicProperties(
                delivery_mode=2,
                headers=headers,
                app_id=properties.app_id,
                message_id=properties.message_id,
                content_type=properties.content_type,
            ),
        )
        self.stats.dead_lettered += 1
        self.stats.dead_letter_reasons[reason.split(":")[0]] += 1
        log.warning(
            "dead-lettered a message",
            extra={
                "fields": {
                    "reason": reason,
                    "bytes": len(body),
                    "dead_letter_queue": dead_letter_queue(self.rabbit.queue),
                }
            },
        )

    # ----- writer thread ----------------------------------------------------------------------
    def _process(self, batch: list):
        """Parse and store one batch. Returns (WriteResult, [(message, reason) to dead-letter])."""
        events, owners, bad = [], [], []
        for message in batch:
            _tag, properties, body = message
            try:
                events.append(parse_event(body, properties.app_id))
                owners.append(message)
            except BadEvent as exc:
                bad.append((message, str(exc)))
            except Exception as exc:  # noqa: BLE001 - one odd message must not stop the queue
                log.exception("unexpected error parsing a message")
                bad.append((message, f"unexpected error: {one_line(exc)}"))
        result = self._write(events) if events else WriteResult()
        if result.rejected:
            message_of = {id(event): message for event, message in zip(events, owners)}
            bad.extend((message_of[id(event)], reason) for event, reason in result.rejected)
        return result, bad

    def _note_export(self, process_id) -> None:
        self.stats.exported_events += 1
        if process_id not in self._export_ids:
            self._export_ids.add(process_id)
            log.info("importing a `rasa export` stream", extra={"fields": {"export_process_id": str(process_id)}})

    def _write(self, events) -> WriteResult:
        store = self._stores.get()
        try:
            return self._write_with(store, events)
        finally:
            self._stores.put(store)

    def _write_with(self, store: EventStore, events) -> WriteResult:
        backoff = Backoff(0.5, DATABASE_MAX_BACKOFF)
        while True:
            try:
                result = store.write(events)
                self.database_ok = True
                return result
            except CONNECTION_ERRORS as exc:
                store.reset()
                self.database_ok = False
                if isinstance(exc, psycopg2.extensions.TransactionRollbackError):
                    continue  # a deadlock or serialization failure: simply try again
                delay = backoff.next()
                log.warning("database unavailable: %s; retrying the batch in %.1fs", one_line(exc), delay)
                if self.stop.wait(delay):
                    raise Stopped() from exc

