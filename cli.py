"""`rasax-deploy`: the command line. Thin: each command parses its options and calls the library.

Every option has a `RASAX_` environment twin (click's auto_envvar_prefix), so CI pipelines and
runbooks can set them without flags.
"""

from __future__ import annotations

import json
import os
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


# ---- installer and Docker runtime (deploy/) --------------------------------------------------

def _dir_option(f):
    return click.option("--dir", "directory", default=lambda: os.environ.get("RASAX_DIR", "/etc/rasa"),
                        show_default="/etc/rasa", help="Installation folder [env: RASAX_DIR].")(f)


def _project_option(f):
    return click.option("--project-name", "-p", envvar="RASAX_PROJECT_NAME",
                        help="Compose project name (default: COMPOSE_PROJECT_NAME in .env, else rasa).")(f)


def _render_options(f):
    f = click.option("--key", type=click.Path(dir_okay=False), help="TLS private key (PEM) to install.")(f)
    f = click.option("--cert", type=click.Path(dir_okay=False), help="TLS certificate chain (PEM) to install.")(f)
    f = click.option("--tls/--no-tls", default=None, help="Serve HTTPS on 8443 (host --https-port), HTTP redirects.")(f)
    f = click.option("--https-port", help="Host [IP:]PORT for HTTPS (default 443; remembered).")(f)
    f = click.option("--http-port", help="Host [IP:]PORT for HTTP (default 80; remembered).")(f)
    return f


def _target(directory, project=None):
    from deploy.stack import Target

    return Target.at(directory, project)


def _render_choice(target, http_port, https_port, tls, cert):
    from deploy.render import load_options

    return load_options(target.layout).merged(
        http_port=http_port, https_port=https_port, tls=True if (cert and tls is None) else tls)


def _run(action):
    """Known failures end as one clear line (and the failing service's log lines), not a traceback."""
    import docker

    from deploy.compose import ComposeError
    from deploy.docker_engine import DockerEngineError
    from deploy.images import ImageError
    from deploy.runtime import DeployError
    from deploy.stack import RefusedError

    try:
        return action()
    except DeployError as exc:
        if exc.logs:
            click.echo(f"--- last log lines of {exc.service} ---\n{exc.logs.rstrip()}\n---", err=True)
        fail(f"{exc} (more: rasax-deploy logs {exc.service})" if exc.service else str(exc))
    except (ComposeError, DockerEngineError, ImageError, RefusedError, FileNotFoundError, ValueError) as exc:
        fail(str(exc))
    except docker.errors.APIError as exc:  # e.g. a published port already taken on the host
        fail(f"Docker engine: {exc.explanation or exc}")


@main.command()
@_dir_option
@_project_option
@click.option("--json", "as_json", is_flag=True, help="One JSON line per path.")
def init(directory, project_name, as_json):
    """Create the installation folder: secrets, key pair, .env, Rasa files. Changes nothing that exists."""
    from deploy import stack
    from deploy.output import Output

    target = _target(directory, project_name)
    _run(lambda: stack.init(target, Output(as_json)))


@main.command()
@_dir_option
@_render_options
@click.option("--dry-run", is_flag=True, help="Print the files instead of writing them.")
def render(directory, http_port, https_port, tls, cert, key, dry_run):
    """Write docker-compose.yml and the nginx config from templates/ (never the override file)."""
    from deploy import render as rendering
    from deploy import stack
    from deploy.output import Output

    target = _target(directory)
    options = _render_choice(target, http_port, https_port, tls, cert)
    if dry_run:
        for path, text in _run(lambda: rendering.plan(options)).items():
            click.echo(f"# ---- {target.layout.root / path}\n{text}")
        return
    _run(lambda: stack.render_files(target, Output(), options, cert, key))


@main.command()
@_dir_option
@_project_option
@_render_options
@click.option("--profile", "profiles", multiple=True, envvar="COMPOSE_PROFILES",
              help="Optional services to run too: rasa-production, rasa-worker, app, duckling.")
@click.option("--timeout", default=300, show_default=True, help="Seconds each service may take to become healthy.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable progress, one JSON object a line.")
@click.option("-q", "--quiet", is_flag=True, help="Only the final line.")
def up(directory, project_name, http_port, https_port, tls, cert, key, profiles, timeout, as_json, quiet):
    """Install or upgrade, and start the stack: init, render, images, start, wait until healthy."""
    from deploy import stack
    from deploy.output import Output

    out = Output(as_json, quiet)
    target = _target(directory, project_name)
    selected = {p.strip() for value in profiles for p in value.split(",") if p.strip()}

    def go():
        options = _render_choice(target, http_port, https_port, tls, cert)
        return stack.up(target, out, options, selected, timeout, cert, key)

    plan = _run(go)
    address = stack.url(target)
    out.final(
        f"✔ {plan.project} is up at {address} ({int(out.elapsed())} s)\n"
        f"  log in as {_admin(target)} with the password in {target.layout.credentials / 'RASA_X_PASSWORD'}\n"
        f"  next: rasax-deploy status --dir {target.layout.root}",
        url=address, project=plan.project,
    )


def _admin(target):
    from deploy.layout import read_env

    return read_env(target.layout).get("RASA_X_USERNAME", "admin")


@main.command()
@_dir_option
@_project_option
@click.option("--volumes", is_flag=True, help="Also delete the data volumes (database, broker): asks first.")
@click.option("-y", "--yes", is_flag=True, help="Do not ask before deleting volumes.")
def down(directory, project_name, volumes, yes):
    """Stop and remove the containers and network; data volumes stay unless --volumes."""
    from deploy import images, runtime
    from deploy.output import Output

    target = _target(directory, project_name)
    if volumes and not yes:
        click.confirm(f"Delete every data volume of project {target.project} (database, broker, Redis)?",
                      abort=True)
    out = Output()
    out.step(f"Stopping project {target.project}")
    _run(lambda: runtime.down(images.client(), target.project, out.event, volumes))


@main.command()
@_dir_option
@_project_option
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
def status(directory, project_name, as_json):
    """Each service: state, health, image, uptime. Exit 1 when a service is not running or unhealthy."""
    from deploy import images, runtime

    target = _target(directory, project_name)
    rows = _run(lambda: runtime.status(images.client(), target.project))
    if as_json:
        click.echo(json.dumps(rows))
    elif not rows:
        click.echo(f"no container of project {target.project} exists (rasax-deploy up --dir {target.layout.root})")
    else:
        click.echo(f"{'SERVICE':<16} {'STATE':<10} {'HEALTH':<10} {'UPTIME':>8}  IMAGE")
        for row in rows:
            up_s = row["uptime_seconds"]
            uptime = "-" if up_s is None else (f"{up_s // 3600}h{up_s % 3600 // 60:02d}m" if up_s >= 3600
                                                else f"{up_s // 60}m{up_s % 60:02d}s")
            click.echo(f"{row['service']:<16} {row['state']:<10} {row['health']:<10} {uptime:>8}  {row['image']}")
    if not rows or any(r["state"] != "running" or r["health"] not in ("healthy", "-") for r in rows):
        sys.exit(1)


@main.command()
@_dir_option
@_project_option
@click.argument("service", required=False)
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines.")
@click.option("--tail", default="all", help="Only the last N lines.")
def logs(directory, project_name, service, follow, tail):
    """Logs of one service (or all)."""
    from deploy import images, runtime

    target = _target(directory, project_name)
    tail_value = int(tail) if str(tail).isdigit() else "all"

    def show():
        for name, line in runtime.logs(images.client(), target.project, service, follow, tail_value):
            click.echo(line if service else f"{name:<16}| {line}")

    _run(show)


@main.group("images")
def images_group():
    """Images without a registry: a local Debian base, builds from it, save/load for air-gapped hosts."""


@images_group.command("base")
@click.option("--force", is_flag=True, help="Make it again even if it exists.")
def images_base(force):
    """Make the Debian base image with mmdebstrap and `docker import`."""
    from deploy import images
    from deploy.docker_engine import ensure_running
    from deploy.output import Output

    out = Output()
    out.step("Making the Debian base image")

    def make():
        ensure_running(out.note)
        images.make_base(images.client(), out.note, force)

    _run(make)


@images_group.command("build")
@click.argument("names", nargs=-1)
@click.option("--force", is_flag=True, help="Build even when an image with the same content exists.")
def images_build(names, force):
    """Build the stack's images (project, postgres, rabbitmq, redis, nginx); unchanged ones are kept."""
    from deploy import images
    from deploy.docker_engine import ensure_running
    from deploy.output import Output

    unknown = set(names) - set(images.STACK_IMAGES)
    if unknown:
        fail(f"unknown image(s) {', '.join(sorted(unknown))}; choose from {', '.join(images.STACK_IMAGES)}")
    out = Output()
    out.step("Building images")

    def build():
        ensure_running(out.note)
        images.build_all(images.client(), out.note, list(names) or None, force)

    _run(build)


@images_group.command("save")
@click.argument("directory", type=click.Path(file_okay=False))
def images_save(directory):
    """Write every stack image to DIRECTORY/*.tar, to carry to a machine without network."""
    from pathlib import Path

    from deploy import images
    from deploy.output import Output

    out = Output()
    out.step(f"Saving images to {directory}")
    _run(lambda: images.save(images.client(), Path(directory), out.note))


@images_group.command("load")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
def images_load(paths):
    """Load images saved by `images save` (archives or folders of them)."""
    from pathlib import Path

    from deploy import images
    from deploy.output import Output

    out = Output()
    out.step("Loading images")
    _run(lambda: images.load(images.client(), [Path(p) for p in paths], out.note))


if __name__ == "__main__":
    main()
