"""`python -m services.db_migration`: migrate to head, then keep answering status on SELF_PORT.

It stays up after `completed` so that compose can gate the other services on its health check
(`GET /health` is 200 only when the schema is at head) and operators can read `GET /`;
`GET /metrics`: Prometheus metrics (metrics.py).
"""

from __future__ import annotations

import logging
import signal
import threading

import sqlalchemy as sa

from services.common.config import database_settings, load_or_exit, self_port
from services.common.db import create_engine, describe
from services.common.health import HealthServer
from services.common.logging import setup_logging
from services.common.metrics import metrics_route
from services.common.retry import retry

from .metrics import MigratorCollector
from .migrator import COMPLETED, Migrator, ensure_database

log = logging.getLogger("services.db_migration")
DEFAULT_PORT = 8000


def main() -> int:
    db = load_or_exit(database_settings)
    port = load_or_exit(self_port, DEFAULT_PORT)
    setup_logging("db-migration", [db.password])

    engine = create_engine(db, pool_size=1, application_name="rasax-db-migration")
    migrator = Migrator(engine)

    def status():
        return 200, migrator.state.as_dict()

    def health():
        state = migrator.state
        ok = state.status == COMPLETED
        return (200 if ok else 503), {"status": state.status, "reason": state.reason or ("" if ok else "migrating")}

    routes = {"/": status, "/health": health, "/metrics": metrics_route(MigratorCollector(migrator))}
    server = HealthServer(routes, port).start()
    log.info("status on port %d", server.port)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    retry(
        lambda: ensure_database(engine),
        what=f"PostgreSQL at {describe(db)}",
        retry_on=(sa.exc.OperationalError,),
        stop=stop,
    )
    migrator.run()
    stop.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
