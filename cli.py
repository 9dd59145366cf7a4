"""`rasax-deploy`: the command line. Thin: each command parses its options and calls the library.

Every option has a `RASAX_` environment twin (click's auto_envvar_prefix), so CI pipelines and
runbooks can set them without flags.
"""

from __future__ import annotations

import json
import sys

import click

from services import __version__


def fail(message: str, code: int = 1) -> None:
    """One line on stderr, a non-zero exit: what runbooks and CI logs want."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def _database_engine():
    """The engine for the database the environment names, or a one-line error (exit 2)."""
    from services.common.config import ConfigError, database_settings
    from services.common.db import create_engine

    try:
        db = database_settings()
    except ConfigError as exc:
        fail(f"configuration: {exc}", 2)
    return db, create_engine(db, pool_size=1, application_name="rasax-deploy")


def _connection_error(db, exc) -> str:
    from services.common.db import describe
    from services.common.retry import one_line

    return f"cannot connect to PostgreSQL at {describe(db)}: {one_line(exc)}"


@click.group(context_settings={"help_option_names": ["-h", "--help"], "auto_envvar_prefix": "RASAX"})
@click.version_option(__version__, "-V", "--version", prog_name="rasax-deploy")
def main() -> None:
    """Install and run a self-hosted Rasa X server side (rasa-x, event service, database)."""


@main.command()
@click.option("--create-database/--no-create-database", default=True, show_default=True,
              help="Create DB_DATABASE first when the server does not have it.")
@click.option("--json", "as_json", is_flag=True, help="Print each state change as a JSON line.")
def migrate(create_database: bool, as_json: bool) -> None:
    """Bring the database schema (DB_* variables) to the current version."""
    import sqlalchemy as sa

    from services.db_migration.migrator import COMPLETED, Migrator, ensure_database

    db, engine = _database_engine()

    def report(state):
        if as_json:
            click.echo(json.dumps(state.as_dict()))
        else:
            click.echo(f"▶ {state.status:<11} {state.progress_in_percent:5.1f}%  "
                       f"revision {state.current_revision or '(empty)'} → {state.target_revision}")

    try:
        if create_database:
            ensure_database(engine)
        state = Migrator(engine, on_state=report).run()
    except sa.exc.OperationalError as exc:
        fail(_connection_error(db, exc))
    finally:
        engine.dispose()
    if state.status != COMPLETED:
        fail(f"migration failed, the database was left at {state.current_revision}: {state.reason}")


@main.command("migration-status")
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def migration_status(as_json: bool) -> None:
    """Show the schema's revision and whether it is current. Exit 3 when it is behind."""
    import sqlalchemy as sa

    from services.db_migration.migrator import COMPLETED, read_state

    db, engine = _database_engine()
    try:
        state = read_state(engine)
    except sa.exc.OperationalError as exc:
        fail(_connection_error(db, exc))
    finally:
        engine.dispose()
    if as_json:
        click.echo(json.dumps(state.as_dict()))
    else:
        click.echo(f"status:   {state.status}\ncurrent:  {state.current_revision or '(empty database)'}\n"
                   f"target:   {state.target_revision}")
    if state.status != COMPLETED:
        sys.exit(3)


if __name__ == "__main__":
    main()
