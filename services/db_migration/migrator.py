"""Brings the schema to the head revision, once, however many migrators start.

`Migrator.run()` takes a PostgreSQL advisory lock, applies every pending Alembic revision in one
transaction, and reports its state (pending → in_progress → completed | failed) to whoever
watches: the status endpoint of the service, the CLI's progress, the tests. A second migrator
that starts meanwhile waits on the lock, then finds nothing to do.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import asdict, dataclass, replace
from typing import Callable

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine

log = logging.getLogger(__name__)

SCRIPT_LOCATION = os.path.dirname(os.path.abspath(__file__))
# Arbitrary but fixed: every migrator of every version must use the same key.
ADVISORY_LOCK_KEY = 0x5241_5841  # "RAXA"

PENDING, IN_PROGRESS, COMPLETED, FAILED = "pending", "in_progress", "completed", "failed"


@dataclass(frozen=True)
class MigrationState:
    status: str
    current_revision: str | None
    target_revision: str | None
    progress_in_percent: float
    reason: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def alembic_config(script_location: str = SCRIPT_LOCATION) -> Config:
    config = Config()
    config.set_main_option("script_location", script_location)
    return config


def head_revision(script_location: str = SCRIPT_LOCATION) -> str | None:
    heads = ScriptDirectory.from_config(alembic_config(script_location)).get_heads()
    if len(heads) > 1:
        raise RuntimeError(f"the migration scripts have several heads {heads}: merge them")
    return heads[0] if heads else None


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def read_state(engine: Engine, script_location: str = SCRIPT_LOCATION) -> MigrationState:
    """The state as seen from the database alone, for `migration-status` and the waiters."""
    return database_state(engine, head_revision(script_location))


def database_state(engine: Engine, target: str | None) -> MigrationState:
    """The state as seen from the database alone, against the head revision `target` (read
    once by a caller that asks often: reading the scripts costs more than asking the database)."""
    with engine.connect() as connection:
        current = current_revision(connection)
    if current == target:
        return MigrationState(COMPLETED, current, target, 100.0)
    return MigrationState(PENDING, current, target, 0.0)


class Migrator:
    def __init__(
        self,
        engine: Engine,
        script_location: str = SCRIPT_LOCATION,
        on_state: Callable[[MigrationState], None] | None = None,
    ):
        self.engine = engine
        self.script_location = script_location
        self.on_state = on_state
        self._lock = threading.Lock()
        self._state = MigrationState(PENDING, None, head_revision(script_location), 0.0)
        # Revisions this migrator applied and committed (its /metrics).
        self.applied = 0

    @property
    def state(self) -> MigrationState:
        with self._lock:
            return self._state

    def _set(self, **changes) -> None:
        with self._lock:
            self._state = replace(self._state, **changes)
            state = self._state
        if self.on_state:
            self.on_state(state)

    def run(self) -> MigrationState:
        """Migrate to head. Returns the final state; never raises for a failed migration."""
        target = head_revision(self.script_location)
        config = alembic_config(self.script_location)
        script = ScriptDirectory.from_config(config)
        with self.engine.connect() as connection:
            self._set(current_revision=current_revision(connection), target_revision=target)
            connection.commit()
            log.info("waiting for the migration lock")
            connection.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
            connection.commit()
            try:
                return self._migrate_locked(connection, config, script, target)
            finally:
                connection.rollback()
                connection.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": ADVISORY_LOCK_KEY})
                connection.commit()

    def _migrate_locked(self, connection, config, script, target) -> MigrationState:
        # Read again under the lock: another migrator may have finished meanwhile.
        start = current_revision(connection)
        connection.commit()
        steps = list(script.iterate_revisions(target, start)) if start != target else []
        total = len(steps)
        if total == 0:
            log.info("schema is at %s, nothing to do", target)
            self._set(status=COMPLETED, current_revision=start, progress_in_percent=100.0)
            return self.state

        log.info("migrating %d revision(s): %s -> %s", total, start, target)
        self._set(status=IN_PROGRESS, current_revision=start, progress_in_percent=0.0)
        done = 0

        def on_version_apply(ctx, step, heads, run_args):
            nonlocal done
            done += 1
            log.info("applied revision %s (%d/%d)", step.up_revision_id, done, total)
            # Not committed until the last one: report progress, but keep current_revision
            # at what the database really holds.
            self._set(progress_in_percent=round(100.0 * done / total, 1))

        config.attributes["connection"] = connection
        config.attributes["on_version_apply"] = on_version_apply
        try:
            with connection.begin():
                command.upgrade(config, target)
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}".splitlines()[0]
            log.error("migration failed, the database is left at %s: %s", start, reason)
            self._set(status=FAILED, current_revision=start, progress_in_percent=0.0, reason=reason)
            return self.state
        self.applied += total
        self._set(status=COMPLETED, current_revision=current_revision(connection), progress_in_percent=100.0)
        connection.commit()
        log.info("schema is at %s", target)
        return self.state


def ensure_database(engine: Engine) -> bool:
    """Create the engine's database when missing (an existing PostgreSQL server, not ours).

    Returns True when it was created. Needs CREATEDB; without it, the caller's connect fails
    with PostgreSQL's own clear message.
    """
    url = engine.url
    name = url.database
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            exists = connection.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).scalar()
            if exists:
                return False
            try:
                connection.execute(sa.text(f'CREATE DATABASE "{name.replace(chr(34), chr(34) * 2)}"'))
            except sa.exc.DBAPIError as exc:  # created by a concurrent migrator
                if "already exists" not in str(exc) and "duplicate key" not in str(exc):
                    raise
                return False
            log.info("created database %s", name)
            return True
    finally:
        admin.dispose()
