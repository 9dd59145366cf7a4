"""`python -m services.all`: the three services of the project image in one container.

For the smallest VMs and for demos (`rasax-deploy up --single-container`). The schema is first
brought to head here, in this process, the way the migrator does it; then the event service and
the backend run as child processes, each with its own default port (5673, 5002) and its own
health endpoint. Supervised: when either child ends, the other is stopped and the container
exits non-zero, so Docker's restart policy (or an operator) sees it; SIGTERM stops both cleanly
and exits 0 when they did.

Reads the union of what the three services read (SERVICE_ENVIRONMENT); SELF_PORT is not passed
on, since the two children serve on different ports.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time

import sqlalchemy as sa

from services.common.config import SELF_PORT, database_settings, load_or_exit
from services.common.db import create_engine, describe
from services.common.logging import setup_logging
from services.common.retry import GaveUp, retry
from services.db_migration.migrator import COMPLETED, Migrator, ensure_database

log = logging.getLogger("services.all")

# (name in the logs, command): started in this order, stopped in reverse.
CHILDREN = (
    ("event-service", (sys.executable, "-m", "services.event_service")),
    ("rasa-x", (sys.executable, "-m", "services.backend")),
)
# How long the children may take to stop after SIGTERM: gunicorn's graceful_timeout, plus a margin.
STOP_SECONDS = 35.0
POLL_SECONDS = 0.5


def migrate(stop: threading.Event) -> bool:
    """The schema at head (True), or False when the migration failed or a stop came first."""
    db = load_or_exit(database_settings)
    engine = create_engine(db, pool_size=1, application_name="rasax-all-migration")
    try:
        retry(lambda: ensure_database(engine), what=f"PostgreSQL at {describe(db)}",
              retry_on=(sa.exc.OperationalError,), stop=stop)
        state = Migrator(engine).run()
    except GaveUp as exc:
        log.error("%s", exc)
        return False
    finally:
        engine.dispose()
    if state.status != COMPLETED:
        log.error("migration failed at revision %s: %s", state.current_revision, state.reason)
        return False
    log.info("schema is at %s", state.current_revision)
    return True


def exit_code(returncode: int) -> int:
    """A child's status as a shell reports it (killed by signal N: 128+N)."""
    return 128 - returncode if returncode < 0 else returncode


def supervise(stop: threading.Event, children=CHILDREN) -> int:
    """Run the children until one ends or `stop` is set; then stop the rest. The exit status."""
    env = {k: v for k, v in os.environ.items() if k != SELF_PORT}
    running: dict[str, subprocess.Popen] = {}
    for name, command in children:
        running[name] = subprocess.Popen(command, env=env)
        log.info("started %s (pid %d)", name, running[name].pid)
    failed = None
    while failed is None and not stop.is_set():
        failed = next((name for name, process in running.items() if process.poll() is not None), None)
        stop.wait(POLL_SECONDS)
    if failed is not None:
        log.error("%s exited with status %d: stopping the others", failed, exit_code(running[failed].returncode))
    codes = terminate(running)
    if failed is not None:
        return codes[failed] or 1  # a child that ends on its own is a failure, even with status 0
    return max(codes.values(), default=0)


def terminate(running: dict[str, subprocess.Popen]) -> dict[str, int]:
    """SIGTERM to every child still running, in reverse order; SIGKILL to any still there after
    STOP_SECONDS. Each child's exit status."""
    for process in reversed(running.values()):
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_SECONDS
    codes = {}
    for name, process in running.items():
        try:
            process.wait(max(deadline - time.monotonic(), 0))
        except subprocess.TimeoutExpired:
            log.error("%s did not stop within %.0f s: killing it", name, STOP_SECONDS)
            process.kill()
            process.wait()
        codes[name] = exit_code(process.returncode)
    log.info("stopped", extra={"fields": codes})
    return codes


def main() -> int:
    db = load_or_exit(database_settings)
    setup_logging("rasa-x-all", [db.password])
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if not migrate(stop):
        return 0 if stop.is_set() else 1
    if stop.is_set():
        return 0
    return supervise(stop)


if __name__ == "__main__":
    raise SystemExit(main())
