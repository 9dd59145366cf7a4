"""`python -m services.event_service`: wait for the schema, then consume Rasa events for ever.

Reads only DB_*, RABBITMQ_*, SELF_PORT (default 5673) and EVENT_SERVICE_WORKERS (consumer
processes, default one per CPU up to 4; see workers.py). `GET /health` answers from the start:
503 with the reason while it waits for migrations, the broker or the database; 200 once both
are reachable and every worker consumes. `GET /metrics` on the same port: Prometheus metrics
(metrics.py). SIGTERM stores what was already received, then exits 0.
"""

from __future__ import annotations

import logging
import signal
import threading
import time

from services.common.config import database_settings, event_service_workers, load_or_exit, rabbit_settings, self_port
from services.common.db import create_engine
from services.common.health import HealthServer
from services.common.logging import setup_logging
from services.common.metrics import metrics_route
from services.common.retry import GaveUp
from services.db_migration import wait_for_schema

from .consumer import dead_letter_queue
from .metrics import PoolCollector
from .store import EventStore
from .workers import WorkerPool

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
    workers = load_or_exit(event_service_workers)
    secrets = [db.password, rabbit.password]
    setup_logging("event-service", secrets)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    pool = WorkerPool(workers, db, rabbit, secrets)
    ping = CachedPing(EventStore(db))
    state = {"value": "waiting for database migrations"}

    def health():
        body = pool.health()
        if state["value"] != "consuming":  # the workers are not started yet, or stopped
            body["state"] = state["value"]
        workers_reach_database = body.pop("database_ok")
        database = ping() and workers_reach_database
        ok = database and body["broker"] and body["state"] == "consuming"
        return (200 if ok else 503), {
            "status": "ok" if ok else "unavailable",
            "database": database,
            "queue": rabbit.queue,
            "dead_letter_queue": dead_letter_queue(rabbit.queue),
            **body,
        }

    server = HealthServer({"/health": health, "/metrics": metrics_route(PoolCollector(pool))}, port).start()
    log.info("health on port %d", server.port)

    engine = create_engine(db, pool_size=1, application_name="rasax-event-service")
    try:
        wait_for_schema(engine, stop=stop)
    except GaveUp as exc:
        log.error("%s", exc)
        return 0 if stop.is_set() else 1
    finally:
        engine.dispose()

    state["value"] = "consuming"
    log.info("starting %d worker processes", workers, extra={"fields": {"queue": rabbit.queue}})
    status = pool.run(stop)
    state["value"] = "stopped"
    server.stop()
    log.info("stopped", extra={"fields": {k: v for k, v in pool.health().items() if k != "workers"}})
    return status


if __name__ == "__main__":
    raise SystemExit(main())
