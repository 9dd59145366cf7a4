"""The database schema of an installation: `migrate` and `migration-status`.

The stack's PostgreSQL is not published on the host. For an installation (`--dir`) the migrator
therefore runs inside the stack: a one-off container of the project image on the stack's network,
with the environment of the db-migration service, running `rasax-deploy migrate|migration-status
--json` there. In that container the command finds DB_* in its environment and works on that
database directly — the same mode a host that reaches a database itself can use.

States are dicts as the migrator reports them: status, current_revision, target_revision,
progress_in_percent, reason.
"""

from __future__ import annotations

import json
import uuid
from contextlib import contextmanager
from typing import Callable

from . import images
from .compose import PROJECT_LABEL, SERVICE_LABEL
from .stack import RefusedError, Target, plan

COMPLETED = "completed"
MIGRATOR_SERVICE = "db-migration"
Report = Callable[[dict], None]


class MigrationError(RuntimeError):
    """One line for the user; `code` is the exit status (2: configuration)."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


def is_current(state: dict) -> bool:
    """The schema is at the head of the migration scripts (else `migration-status` exits 3)."""
    return state["status"] == COMPLETED


def uses_environment(directory: str | None, environ) -> bool:
    """No --dir and DB_HOST exported: the database the environment names, not an installation."""
    return directory is None and "DB_HOST" in environ


# ---- the database the environment names (DB_*) ----------------------------------------------

@contextmanager
def _database():
    """An engine for the DB_* database; configuration and connection failures as one line."""
    import sqlalchemy as sa

    from services.common.config import ConfigError, database_settings
    from services.common.db import create_engine, describe
    from services.common.retry import one_line

    try:
        db = database_settings()
    except ConfigError as exc:
        raise MigrationError(f"configuration: {exc}", 2) from None
    engine = create_engine(db, pool_size=1, application_name="rasax-deploy")
    try:
        yield engine
    except sa.exc.OperationalError as exc:
        raise MigrationError(f"cannot connect to PostgreSQL at {describe(db)}: {one_line(exc)}") from None
    finally:
        engine.dispose()


def _migrate_environment(report: Report, create_database: bool) -> dict:
    from services.db_migration.migrator import Migrator, ensure_database

    with _database() as engine:
        if create_database:
            ensure_database(engine)
        state = Migrator(engine, on_state=lambda s: report(s.as_dict())).run().as_dict()
    if not is_current(state):
        raise MigrationError(f"migration failed, the database was left at {state['current_revision']}: "
                             f"{state['reason']}")
    return state


def _status_environment() -> dict:
    from services.db_migration.migrator import read_state

    with _database() as engine:
        return read_state(engine).as_dict()


# ---- an installation's database, from inside its stack ---------------------------------------

def _run_in_stack(target: Target, arguments: list[str]) -> tuple[int, list[dict], str]:
    """(exit code, JSON lines of stdout, last line of stderr) of `rasax-deploy ARGS` in the stack."""
    stack = plan(target, set())
    migrator = stack.service(MIGRATOR_SERVICE)
    docker_client = images.client()
    if not docker_client.networks.list(names=[stack.network]):
        raise RefusedError(f"the stack of project {stack.project} is not running (no network {stack.network}): "
                           f"`rasax-deploy up --dir {target.layout.root}` first")
    container = docker_client.containers.create(
        migrator.image, command=["rasax-deploy", *arguments], environment=migrator.environment,
        network=stack.network, user=migrator.user, name=f"{stack.project}_{MIGRATOR_SERVICE}_run_{uuid.uuid4().hex[:8]}",
        # What `docker-compose run` sets: `down` removes a one-off that outlived its command.
        labels={PROJECT_LABEL: stack.project, SERVICE_LABEL: MIGRATOR_SERVICE,
                "com.docker.compose.oneoff": "True"},
    )
    try:
        container.start()
        code = container.wait()["StatusCode"]
        stdout = container.logs(stdout=True, stderr=False).decode(errors="replace")
        stderr = container.logs(stdout=False, stderr=True).decode(errors="replace").strip()
    finally:
        container.remove(force=True)
    records = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    states = [record for record in records if "status" in record]
    last = stderr.splitlines()[-1] if stderr else ""
    return code, states, last.removeprefix("error: ")


def _last_state(code: int, states: list[dict], error: str, success: tuple[int, ...]) -> dict:
    if code not in success or not states:
        raise MigrationError(error or f"the migrator exited with code {code}", 2 if code == 2 else 1)
    return states[-1]


# ---- what the commands call ------------------------------------------------------------------

def migrate(target: Target | None, report: Report, create_database: bool = True) -> dict:
    """Bring the schema to head: the installation's (`target`) or, with None, the DB_* database.

    Each reported state carries `changed`: whether the revision moved since the first state.
    """
    first: list[str | None] = []

    def with_changed(state: dict) -> None:
        if not first:
            first.append(state["current_revision"])
        report(dict(state, changed=state["current_revision"] != first[0]))

    return _migrate(target, with_changed, create_database)


def _migrate(target: Target | None, report: Report, create_database: bool) -> dict:
    if target is None:
        return _migrate_environment(report, create_database)
    arguments = ["migrate", "--json"] + ([] if create_database else ["--no-create-database"])
    code, states, error = _run_in_stack(target, arguments)
    for state in states:
        report(state)
    return _last_state(code, states, error, (0,))


def status(target: Target | None) -> dict:
    """The schema's state: the installation's (`target`) or, with None, the DB_* database's."""
    if target is None:
        return _status_environment()
    # Exit 3 is the migrator's "behind", still a state to show.
    return _last_state(*_run_in_stack(target, ["migration-status", "--json"]), success=(0, 3))
