"""`python -m services.event_service`: wait for the schema, then consume Rasa events for ever.

Reads only DB_*, RABBITMQ_* and SELF_PORT (default 5673). `GET /health` answers from the start:
503 with the reason while it waits for migrations, the broker or the database; 200 once both
are reachable and it consumes. SIGTERM stores what was already received, then exits 0.
"""

from __future__ import annotations

import logging
import signal
import threading
import time

from services.common.config import database_settings, load_or_exit, rabbit_settings, self_port
from services.common.db import create_engine
from services.common.health import HealthServer
from services.common.logging import setup_logging
from services.common.retry import GaveUp
from services.db_migration import wait_for_schema

from .consumer import Consumer, Stats, dead_letter_queue
from .store import EventStore

log = logging.getLogger("services.event_service")
DEFAULT_PORT = 5673


class CachedPing:
    """PostgreSQL reachability at most every PING_INTERVAL seconds: a probe polled often must
    not cost a database connection each time."""

    PING_INTERVAL = 2.0

    def __init__(self, store: EventStore):
        self.store = store
        self.lock = threading.Lock()
        self.checked_at = -self.PING_INTERVAL
        self.result = False

    def __call__(self) -> bool:
        with self.lock:
            if time.monotonic() - self.checked_at >= self.PING_INTERVAL:
                self.result = self.store.ping()
                self.checked_at = time.monotonic()
            return self.result


def main() -> int:
    db = load_or_exit(database_settings)
    rabbit = load_or_exit(rabbit_settings)
    port = load_or_exit(self_port, DEFAULT_PORT)
    setup_logging("event-service", [db.password, rabbit.password])

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    store = EventStore(db)
    stats = Stats(state="waiting for database migrations")
    consumer = Consumer(rabbit, lambda: EventStore(db), stop, stats)

    ping = CachedPing(store)

    def health():
        database = ping() and consumer.database_ok
        broker = stats.broker_connected
        ok = database and broker and stats.state == "consuming"
        body = {
            "status": "ok" if ok else "unavailable",
            "state": stats.state,
            "database": database,
            "broker": broker,
            "queue": rabbit.queue,
            "dead_letter_queue": dead_letter_queue(rabbit.queue),
            **stats.as_dict(),
        }
        return (200 if ok else 503), body

    server = HealthServer({"/health": health}, port).start()
    log.info("health on port %d", server.port)

    engine = create_engine(db, pool_size=1, application_name="rasax-event-service")
    try:
        wait_for_schema(engine, stop=stop)
    except GaveUp as exc:
        log.error("%s", exc)
        return 0 if stop.is_set() else 1
    finally:
        engine.dispose()

    stats.state = "connecting to the broker"
    consumer.run()
    server.stop()
    log.info("stopped", extra={"fields": stats.as_dict()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
