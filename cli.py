"""`rasax-deploy`: the command line. Thin: each command parses its options, calls the `deploy`
library and prints what it returns.

Every option has a `RASAX_` environment twin (click's auto_envvar_prefix), so CI pipelines and
runbooks can set them without flags. The library is imported inside the commands: `--help` and
`--version` stay instant.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from contextlib import contextmanager

import click

from deploy import DEFAULT_DIR
from services import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"], "auto_envvar_prefix": "RASAX"})
@click.version_option(__version__, "-V", "--version", prog_name="rasax-deploy")
def main() -> None:
    """Install and run a self-hosted Rasa X server side (rasa-x, event service, database)."""


# ---- what every command opens with -----------------------------------------------------------

class Session:
    """A command's installation (`target`, None for commands without --dir) and its output."""

    def __init__(self, target, out):
        self.target = target
        self.out = out


@contextmanager
def failures(out):
    """Known failures end as one clear line on stderr (and the failing service's log lines), never a
    traceback; with --json a last JSON line says what the run changed before it failed."""
    import docker

    from deploy.compose import ComposeError
    from deploy.docker_engine import DockerEngineError
    from deploy.images import ImageError
    from deploy.migrations import MigrationError
    from deploy.runtime import DeployError
    from deploy.stack import InputError, RefusedError

    def fail(message: str, code: int = 1):
        out.failed(message)
        click.echo(f"error: {message}", err=True)
        sys.exit(code)

    try:
        yield
    except InputError as exc:  # a folder or name that does not exist: a usage error
        fail(str(exc), 2)
    except MigrationError as exc:
        fail(str(exc), exc.code)
    except DeployError as exc:
        if exc.logs:
            click.echo(f"--- last log lines of {exc.service} ---\n{exc.logs.rstrip()}\n---", err=True)
        fail(f"{exc} (more: rasax-deploy logs {exc.service})" if exc.service else str(exc))
    except (ComposeError, DockerEngineError, ImageError, RefusedError, FileNotFoundError, ValueError) as exc:
        fail(str(exc))
    except docker.errors.APIError as exc:  # e.g. a published port already taken on the host
        fail(f"Docker engine: {exc.explanation or exc}")


def command(group, name=None, *, folder=True, folder_default=DEFAULT_DIR, project=True, installed=False,
            quiet=False, json_help="One JSON line per change, each with \"changed\": true|false."):
    """A command of `group` whose function takes a Session first.

    folder: --dir (RASAX_DIR) and, with `project`, --project-name; `installed` refuses a folder
    that is not an installation (exit 2). Every command gets --json; `quiet` adds -q.
    """

    def decorate(f):
        @functools.wraps(f)
        def run(*args, as_json=False, install_dir=None, project_name=None, quiet=False, **kwargs):
            from deploy.output import Output

            out = Output(as_json, quiet)
            with failures(out):
                target = None
                if folder:
                    from deploy.stack import Target

                    target = Target.at(install_dir or DEFAULT_DIR, project_name)
                    if installed:
                        target.require_installation()
                return f(Session(target, out), *args, **kwargs)

        if quiet:
            run = click.option("-q", "--quiet", is_flag=True, help="Print only the final line.")(run)
        run = click.option("--json", "as_json", is_flag=True, help=json_help)(run)
        if folder and project:
            run = click.option("--project-name", "-p", envvar="RASAX_PROJECT_NAME",
                               help="Compose project name (default: COMPOSE_PROJECT_NAME in .env, else rasa).")(run)
        if folder:
            # install_dir, not directory: a command's own DIRECTORY argument (images save) keeps its name.
            run = click.option("--dir", "install_dir", envvar="RASAX_DIR", default=folder_default,
                               show_default=DEFAULT_DIR, help="Installation folder [env: RASAX_DIR].")(run)
        return group.command(name)(run)

    return decorate


def render_options(f):
    f = click.option("--key", type=click.Path(dir_okay=False), help="TLS private key (PEM) to install.")(f)
    f = click.option("--cert", type=click.Path(dir_okay=False),
                     help="TLS certificate chain (PEM) to install; implies --tls.")(f)
    f = click.option("--tls/--no-tls", default=None, help="Serve HTTPS on 8443 (host --https-port), HTTP redirects.")(f)
    f = click.option("--https-port", help="Host [IP:]PORT for HTTPS (default 443; remembered).")(f)
    f = click.option("--http-port", help="Host [IP:]PORT for HTTP (default 80; remembered).")(f)
    f = click.option("--rasa/--no-rasa", "rasa", default=None,
                     help="Run rasa-production, rasa-worker and app in the stack (default on; remembered). "
                          "--no-rasa when your Rasa runs elsewhere.")(f)
    f = click.option("--single-container/--no-single-container", "single_container", default=None,
                     help="Run db-migration, event-service and rasa-x as one container (services.all), "
                          "for the smallest VMs and demos (default off; remembered).")(f)
    return f


def print_changes(out, changes, root) -> None:
    """A dry run's plan: one line per thing, then how many would change."""
    from pathlib import Path

    out.step("Planning (dry run: nothing is written, started or stopped)")
    for change in changes:
        name = change.name
        if change.kind == "file" and Path(name).is_relative_to(root):
            name = str(Path(name).relative_to(root))
        details = {"reason": change.reason} if change.reason else {}
        out.event(name, change.action if change.changed else "kept", changed=change.changed, kind=change.kind,
                  dry_run=True, **details)
    count = sum(c.changed for c in changes)
    out.final(f"dry run: {count} change(s) planned, nothing was executed", changes=count, dry_run=True)


# ---- database schema -------------------------------------------------------------------------

def _print_state(out, state: dict) -> None:
    if out.as_json:
        click.echo(json.dumps(state))
    else:
        click.echo(f"▶ {state['status']:<11} {state['progress_in_percent']:5.1f}%  "
                   f"revision {state['current_revision'] or '(empty)'} → {state['target_revision']}")


def _schema_of(session):
    """The installation, or None for the database DB_* names (exported, and no --dir/RASAX_DIR)."""
    from deploy import migrations

    directory = click.get_current_context().params.get("install_dir")
    if migrations.uses_environment(directory, os.environ):
        return None
    return session.target.require_installation()


@command(main, folder_default=None, json_help="Print each state change as a JSON line.")
@click.option("--create-database/--no-create-database", default=True, show_default=True,
              help="Create DB_DATABASE first when the server does not have it.")
def migrate(session, create_database: bool) -> None:
    """Bring the installation's database schema to the current version (inside its stack).

    With DB_* exported and no --dir, the database those variables name instead.
    """
    from deploy import migrations

    migrations.migrate(_schema_of(session), functools.partial(_print_state, session.out), create_database)


@command(main, "migration-status", folder_default=None, json_help="Print the status as JSON.")
def migration_status(session) -> None:
    """Show the schema's revision and whether it is current. Exit 3 when it is behind."""
    from deploy import migrations

    state = migrations.status(_schema_of(session))
    if session.out.as_json:
        click.echo(json.dumps(state))
    else:
        click.echo(f"status:   {state['status']}\ncurrent:  {state['current_revision'] or '(empty database)'}\n"
                   f"target:   {state['target_revision']}")
    if not migrations.is_current(state):
        sys.exit(3)


# ---- installer and Docker runtime (deploy/) --------------------------------------------------

@command(main)
def init(session):
    """Create the installation folder: secrets, key pair, .env, Rasa files. Changes nothing that exists."""
    from deploy import stack

    stack.init(session.target, session.out)


@command(main, project=False)
@render_options
@click.option("--dry-run", is_flag=True,
              help="Change nothing: print the files (with --json: which would change).")
def render(session, rasa, single_container, http_port, https_port, tls, cert, key, dry_run):
    """Write docker-compose.yml and the nginx config from the templates (never the override file)."""
    from deploy import preview, stack
    from deploy import render as rendering

    target = session.target
    options = stack.render_choice(target, http_port, https_port, tls, cert, rasa, single_container)
    if dry_run and session.out.as_json:
        stack.check_certificate_pair(cert, key)
        print_changes(session.out, preview.render_changes(target, options, cert, key), target.layout.root)
    elif dry_run:
        for path, text in rendering.plan(options).items():
            click.echo(f"# ---- {target.layout.root / path}\n{text}")
    else:
        stack.render_files(target, session.out, options, cert, key)


@command(main, quiet=True)
@render_options
@click.option("--profile", "profiles", multiple=True, envvar="COMPOSE_PROFILES",
              help="Optional services to run too: duckling (a registry image), or your override's.")
@click.option("--timeout", default=300, show_default=True, help="Seconds each service may take to become healthy.")
@click.option("--dry-run", is_flag=True, help="Change nothing: show which files, images and containers would change.")
def up(session, rasa, single_container, http_port, https_port, tls, cert, key, profiles, timeout, dry_run):
    """Install or upgrade, and start the stack: init, render, images, start, wait until healthy."""
    from deploy import preview, stack

    target, out = session.target, session.out
    selected = {p.strip() for value in profiles for p in value.split(",") if p.strip()}
    options = stack.render_choice(target, http_port, https_port, tls, cert, rasa, single_container)
    if dry_run:
        print_changes(out, preview.up_changes(target, options, selected, cert, key), target.layout.root)
        return
    stack.check_choices(target, options, selected, cert, key)
    plan = stack.up(target, out, options, selected, timeout, cert, key)
    address = stack.url(target)
    out.final(
        f"✔ {plan.project} is up at {address} ({int(out.elapsed())} s)",
        f"  log in as {stack.admin_user(target)} with the password in "
        f"{target.layout.credentials / 'RASA_X_PASSWORD'}",
        f"  next: rasax-deploy status --dir {target.layout.root}",
        url=address, project=plan.project,
    )


@command(main, installed=True)
@click.option("--volumes", is_flag=True, help="Also delete the data volumes (database, broker): asks first.")
@click.option("-y", "--yes", is_flag=True, help="Do not ask before deleting volumes.")
def down(session, volumes, yes):
    """Stop and remove the containers and network; data volumes stay unless --volumes."""
    from deploy import stack

    if volumes and not yes:
        click.confirm(f"Delete every data volume of project {session.target.project} (database, broker, Redis)?",
                      abort=True)
    stack.down(session.target, session.out, volumes)


@command(main, installed=True, json_help="Print a JSON list.")
def status(session):
    """Each service: state, health, image, uptime, the model a Rasa server runs. Exit 1 when a service
    is not running or unhealthy."""
    from deploy import stack

    target = session.target
    rows = stack.status(target)
    if session.out.as_json:
        click.echo(json.dumps(rows))
    elif not rows:
        click.echo(f"no container of project {target.project} exists (rasax-deploy up --dir {target.layout.root})")
    else:
        click.echo(f"{'SERVICE':<16} {'STATE':<10} {'HEALTH':<10} {'UPTIME':>8}  {'IMAGE':<28} MODEL")
        for row in rows:
            click.echo(f"{row['service']:<16} {row['state']:<10} {row['health']:<10} {row['uptime']:>8}  "
                       f"{row['image']:<28} {row['model'] or '-'}")
    if not stack.healthy(rows):
        sys.exit(1)


@command(main, installed=True, json_help="Each line as JSON: service and line.")
@click.argument("service", required=False)
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines.")
@click.option("--tail", default="all", help="Only the last N lines.")
def logs(session, service, follow, tail):
    """Logs of one service (or all)."""
    from deploy import stack

    for name, line in stack.logs(session.target, service, follow, int(tail) if str(tail).isdigit() else "all"):
        if session.out.as_json:
            click.echo(json.dumps({"service": name, "line": line}))
        else:
            click.echo(line if service else f"{name:<16}| {line}")


# ---- backup and restore ----------------------------------------------------------------------

@command(main, "backup", installed=True, quiet=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Archive to write (default: backups/rasax-backup-<project>-<time>.tar in the folder).")
@click.option("--exclude", multiple=True, help="Leave out: models (a lighter archive).")
@click.option("--keep", type=int, help="Then delete all but the newest N archives of the project in that folder.")
def backup_command(session, output, exclude, keep):
    """One archive of the running installation: both databases, models, secrets, key pair, config."""
    from pathlib import Path

    from deploy import backup
    from deploy.files import CREATED, Outcome

    target, out = session.target, session.out
    out.step(f"Backing up project {target.project}")
    path, manifest = backup.create(target, Path(output) if output else None, exclude, out.note)
    out.outcome(Outcome(path, CREATED))
    for removed in backup.prune(path.parent, target.project, keep) if keep is not None else []:
        out.outcome(Outcome(removed, "removed"))
    size = path.stat().st_size
    out.final(f"✔ backup of {target.project} in {path} ({size / 2**20:.1f} MiB, {out.elapsed():.1f} s)",
              f"  restore it: rasax-deploy restore {path} --dir {target.layout.root}",
              path=str(path), size=size, databases=manifest["databases"])


@command(main, "restore", quiet=True)
@click.argument("archive", type=click.Path(dir_okay=False))
@click.option("-y", "--yes", is_flag=True, help="Restore over an existing installation without asking (it is backed up first).")
@click.option("--timeout", default=300, show_default=True, help="Seconds each service may take to become healthy.")
def restore_command(session, archive, yes, timeout):
    """Restore a `backup` archive into an empty folder, or over the installation (backed up first)."""
    from pathlib import Path

    from deploy import restore

    target, out = session.target, session.out
    if target.layout.env_file.exists() and not yes:
        click.confirm(f"Replace the installation in {target.layout.root} (files and data) with {archive}? "
                      f"It is backed up first", abort=True)
    manifest = restore.restore(target, Path(archive), out, replacing=True, timeout=timeout)
    out.final(f"✔ {manifest['project']} restored from {archive} ({int(out.elapsed())} s)",
              *([f"  the installation as it was before: {manifest['previous']}"] if manifest["previous"] else []),
              f"  next: rasax-deploy status --dir {target.layout.root}",
              project=manifest["project"], previous=manifest["previous"])


@command(main, "upgrade", installed=True, quiet=True)
@click.option("--to", "to", help="The version to go to: only this rasax-deploy's own (the default).")
@click.option("--timeout", default=300, show_default=True, help="Seconds each service may take to become healthy.")
def upgrade_command(session, to, timeout):
    """Upgrade the installation to this rasax-deploy's version: backup first, render, images, migrate, roll."""
    from deploy import upgrade

    done = upgrade.upgrade(session.target, session.out, to, timeout)
    session.out.final(f"✔ {session.target.project} upgraded from {done['from']} to {done['to']} "
                      f"({int(session.out.elapsed())} s)",
                      f"  the backup taken first: {done['backup']}", **done)


@command(main, installed=True, json_help="Print the checks as a JSON list.")
def doctor(session):
    """Read-only checks of a running installation, each PASS, WARN or FAIL with its fix. Exit 1 on a FAIL."""
    from deploy import doctor as checks

    results = checks.run(session.target)
    if session.out.as_json:
        click.echo(json.dumps(checks.as_dicts(results)))
    for result in [] if session.out.as_json else results:
        click.echo(f"{result.status:<5} {result.name}: {result.found}")
        if result.status != checks.PASS:
            for label, text in (("expected", result.expected), ("fix", result.fix)):
                if text:
                    click.echo(f"      {label}: {text}")
    if checks.failed(results):
        sys.exit(1)


# ---- users of rasa-x (through its API) --------------------------------------------------------

@main.group("users")
def users_group():
    """rasa-x's accounts (roles admin, annotator, tester, guest), through the running stack's API."""


password_stdin_option = click.option("--password-stdin", is_flag=True,
                                     help="Read the password from the first line of stdin.")


def read_password(from_stdin: bool) -> str:
    """From stdin or a hidden prompt (typed twice), never from argv."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True, err=True)


def role_option(f):
    return click.option("--role", "roles", multiple=True,
                        help="admin, annotator, tester or guest (repeat for several).")(f)


@command(users_group, "list", installed=True, json_help="Print a JSON list.")
def users_list(session):
    """Every user with its roles."""
    from deploy import stack_api, users

    rows = users.list_users(stack_api.as_admin(session.target))
    if session.out.as_json:
        click.echo(json.dumps(rows))
        return
    click.echo(f"{'USERNAME':<24} {'ROLES':<28} NAME")
    for row in rows:
        click.echo(f"{row['username']:<24} {','.join(row['roles']):<28} {row.get('name') or ''}")


@command(users_group, "create", installed=True)
@click.argument("username")
@role_option
@click.option("--name", help="Display name.")
@password_stdin_option
def users_create(session, username, roles, name, password_stdin):
    """Create USERNAME with --role (default annotator); the password is asked for, or read from stdin."""
    from deploy import stack_api, users

    api = stack_api.as_admin(session.target)
    users.create(api, username, read_password(password_stdin), list(roles) or ["annotator"], name)
    session.out.event(username, "created", kind="user", roles=list(roles) or ["annotator"])


@command(users_group, "update", installed=True)
@click.argument("username")
@role_option
@click.option("--name", help="Display name.")
@click.option("--password", "new_password", is_flag=True, help="Set a new password (asked for).")
@password_stdin_option
def users_update(session, username, roles, name, new_password, password_stdin):
    """Change USERNAME's roles (--role replaces them all), name or password."""
    from deploy import stack_api, users

    password = read_password(password_stdin) if new_password or password_stdin else None
    users.update(stack_api.as_admin(session.target), username, list(roles) or None, password, name)
    session.out.event(username, "updated", kind="user")


@command(users_group, "delete", installed=True)
@click.argument("username")
@click.option("-y", "--yes", is_flag=True, help="Do not ask first.")
def users_delete(session, username, yes):
    """Delete USERNAME (the last admin cannot be deleted)."""
    from deploy import stack_api, users

    if not yes:
        click.confirm(f"Delete user {username!r}?", abort=True)
    users.delete(stack_api.as_admin(session.target), username)
    session.out.event(username, "deleted", kind="user")


# ---- training data of rasa-x (through its API) ------------------------------------------------

@main.group("data")
def data_group():
    """Training data of rasa-x as Rasa 3.x files (data/*.yml, domain.yml, config.yml), through its API."""


@command(data_group, "import", installed=True, json_help="Print the result as JSON.")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--mode", type=click.Choice(["merge", "replace"]), default="merge", show_default=True,
              help="merge: add and update; replace: each part the files carry replaces that part.")
def data_import(session, paths, mode):
    """Import PATHS: a Rasa project folder, YAML files, or a .tar.gz/.zip of a project. All or nothing."""
    from pathlib import Path

    from deploy import training_data

    result = training_data.import_data(session.target, [Path(p) for p in paths], mode)
    if session.out.as_json:
        click.echo(json.dumps(result))
        return
    click.echo(f"✔ imported ({mode}) {', '.join(result['parts'])}: {result['examples']} NLU examples, "
               f"{result['stories']} stories, {result['rules']} rules; data version {result['version'][:12]}")
    for warning in result["warnings"]:
        click.echo(f"  warning: {warning['message']}")


@command(data_group, "export", installed=True)
@click.argument("destination", type=click.Path())
def data_export(session, destination):
    """Export to DESTINATION: a project folder (data/nlu.yml, ..., config.yml) or a .tar.gz file."""
    from pathlib import Path

    from deploy import training_data

    version, outcomes = training_data.export_data(session.target, Path(destination))
    for outcome in outcomes:
        session.out.outcome(outcome)
    session.out.final(f"✔ exported data version {version[:12]} to {destination}", version=version)


@command(main, "train", installed=True, quiet=True, json_help="One JSON line per job state, then the result.")
@click.option("--tag", help="Tag the trained model, e.g. production: rasa-production then pulls it.")
@click.option("--name", "model_name", help="The model's name (default: the time and the job's id).")
@click.option("--no-wait", is_flag=True, help="Return once the job is queued.")
@click.option("--timeout", default=6 * 3600, show_default=True, help="Seconds to wait for the training.")
def train_command(session, tag, model_name, no_wait, timeout):
    """Train rasa-x's training data on rasa-worker; the model is stored in rasa-x (and tagged)."""
    from deploy import train

    out = session.out
    out.step("Training on rasa-worker")
    job = train.train(session.target, model_name=model_name, tag=tag, wait=not no_wait, timeout=timeout,
                      progress=lambda job: out.event(f"job {job['id']}", job["status"], changed=True, kind="job"))
    shown = f"model {job['model']}" + (f", tagged {tag}" if tag else "")
    if job["status"] == "finished":
        out.final(f"✔ trained {shown} in {int(out.elapsed())} s (data version {job['data_version'][:12]})", job=job)
    else:
        out.final(f"✔ training job {job['id']} {job['status']}: {shown}",
                  f"  follow it: GET /api/projects/default/models/jobs/{job['id']}", job=job)


@main.group("images")
def images_group():
    """Images without a registry: a local Debian base, builds from it, save/load for air-gapped hosts."""


@command(images_group, "base", folder=False)
@click.option("--force", is_flag=True, help="Make it again even if it exists.")
def images_base(session, force):
    """Make the Debian base image with mmdebstrap and `docker import`."""
    from deploy import stack

    stack.make_base_image(session.out, force)


def rasa_version_option(f):
    from deploy.rasa_images import DEFAULT_RASA_VERSION

    return click.option("--rasa-version", default=DEFAULT_RASA_VERSION, show_default=True,
                        help="Rasa Open Source version of the rasa and rasa-sdk images (RASA_VERSION of .env).")(f)


@command(images_group, "build", folder=False)
@click.argument("names", nargs=-1)
@click.option("--force", is_flag=True, help="Build even when an image with the same content exists.")
@rasa_version_option
def images_build(session, names, force, rasa_version):
    """Build the stack's images (project, postgres, rabbitmq, redis, nginx, rasa, rasa-sdk); unchanged
    ones are kept. rasa and rasa-sdk take many minutes the first time (about 1 GB of downloads)."""
    from deploy import stack

    stack.build_images(session.out, list(names), force, rasa_version)


@command(images_group, "save", folder=False)
@click.argument("directory", type=click.Path(file_okay=False))
@click.argument("names", nargs=-1)
@rasa_version_option
def images_save(session, directory, names, rasa_version):
    """Write the stack's images (or NAMES) to DIRECTORY/*.tar, to carry to a machine without network."""
    from pathlib import Path

    from deploy import stack

    stack.save_images(session.out, Path(directory), list(names), rasa_version)


@command(images_group, "load", folder=False)
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
def images_load(session, paths):
    """Load images saved by `images save` (archives or folders of them)."""
    from pathlib import Path

    from deploy import stack

    stack.load_images(session.out, [Path(p) for p in paths])


# ---- Kubernetes (deploy/kubernetes.py) --------------------------------------------------------

@main.group("k8s")
def k8s_group():
    """Kubernetes manifests from the installation's settings and secrets (schema-validated, not cluster-tested)."""


def _replicas(values):
    from deploy.kubernetes import parse_replicas

    try:
        return parse_replicas(values)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@command(k8s_group, "render", installed=True, project=False)
@click.option("-o", "--output", type=click.Path(file_okay=False), help="Folder to write to (default: kubernetes/ in --dir).")
@click.option("--namespace", default="rasax", show_default=True, help="Namespace of every object.")
@click.option("--replicas", multiple=True, metavar="SERVICE=N", callback=lambda ctx, param, value: _replicas(value),
              help="Pods of rasa-x, event-service, rasa-production, rasa-worker, app or nginx (repeatable; default 1).")
@click.option("--host", help="Host name of the Ingress (default with TLS: the certificate's DNS name).")
@click.option("--ingress-class", help="ingressClassName of the Ingress (default: the cluster's default class).")
@click.option("--storage-class", help="storageClassName of the volume claims (default: the cluster's default).")
@click.option("--registry", help="Prefix of every image, e.g. registry.example.com/rasax (push `images save` there).")
def k8s_render(session, output, namespace, replicas, host, ingress_class, storage_class, registry):
    """Write Kubernetes manifests: Deployments, StatefulSets, the migration Job, Secrets, ConfigMaps, Ingress."""
    from pathlib import Path

    from deploy import kubernetes

    options = kubernetes.KubernetesOptions(namespace, replicas, host, ingress_class, storage_class, registry)
    session.out.step("Rendering Kubernetes manifests")
    for outcome in kubernetes.apply(session.target.layout, options, Path(output) if output else None):
        session.out.outcome(outcome, session.target.layout.root)


# ---- Docker Swarm (deploy/swarm.py) ---------------------------------------------------------

@main.group("swarm")
def swarm_group():
    """The stack on a Docker Swarm (several nodes), from the installation's settings and secrets."""


def swarm_options(f):
    f = click.option("--rasa/--no-rasa", "rasa", default=None,
                     help="rasa-production, rasa-worker and app in the stack (default: as the installation).")(f)
    f = click.option("--replicas", multiple=True, metavar="SERVICE=N",
                     callback=lambda ctx, param, value: _replicas(value),
                     help="Tasks of rasa-x, event-service, rasa-production, rasa-worker or app (repeatable; "
                          "default 1). nginx runs on every node.")(f)
    f = click.option("--stack", default="rasax", show_default=True, help="Stack name (prefix of every service).")(f)
    f = click.option("-o", "--output", type=click.Path(file_okay=False),
                     help="Folder of the stack file (default: swarm/ in --dir).")(f)
    return f


def _swarm(stack, replicas, rasa):
    from deploy import swarm

    return swarm.SwarmOptions(stack, replicas, rasa)


@command(swarm_group, "render", installed=True, project=False)
@swarm_options
def swarm_render(session, output, stack, replicas, rasa):
    """Write the stack file (compose v3 for `docker stack deploy`) and its nginx config."""
    from pathlib import Path

    from deploy import swarm

    session.out.step("Rendering the swarm stack")
    for outcome in swarm.apply(session.target.layout, _swarm(stack, replicas, rasa), Path(output) if output else None):
        session.out.outcome(outcome, session.target.layout.root)


@command(swarm_group, "deploy", installed=True, project=False)
@swarm_options
@click.option("--data-node", help="Node for PostgreSQL, RabbitMQ and Redis and their volumes (default: the node "
                                  "labelled rasax-data=true, else this one, which gets the label).")
@click.option("--timeout", default=900, show_default=True, help="Seconds to wait for every service to run.")
def swarm_deploy(session, output, stack, replicas, rasa, data_node, timeout):
    """Render and `docker stack deploy` on the swarm manager DOCKER_HOST names; wait until it runs.
    Every node needs the images: `rasax-deploy images save DIR` here, `images load DIR` on each node."""
    from pathlib import Path

    from deploy import swarm

    out = session.out
    out.step("Rendering the swarm stack")
    outcomes, node, states = swarm.deploy(session.target.layout, _swarm(stack, replicas, rasa),
                                          Path(output) if output else None, data_node, timeout)
    for outcome in outcomes:
        out.outcome(outcome, session.target.layout.root)
    out.step(f"Stack {stack} deployed (stateful servers on node {node})")
    for name, state in states.items():
        shown = "completed" if name == swarm.MIGRATOR else f"{state['running']}/{state['wanted']} running"
        out.event(f"{stack}_{name}", shown, changed=True, kind="service")
    out.final(f"✔ stack {stack} runs on the swarm in {int(out.elapsed())} s", stack=stack, data_node=node)


# ---- conversation history (deploy/history_import.py) -----------------------------------------

@main.group("conversations")
def conversations_group():
    """Conversation history: import what a Rasa bot already had."""


def _time_option(name: str, meaning: str):
    def parse(ctx, param, value):
        from deploy.history_import import parse_time

        try:
            return None if value is None else parse_time(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None

    return click.option(name, callback=parse, help=f"{meaning} (Unix seconds or ISO 8601, UTC by default).")


@command(conversations_group, "import", folder_default=None, quiet=True,
         json_help="Print the summary as one JSON object (progress as JSON lines on stderr).")
@click.option("--tracker-store", envvar="RASAX_TRACKER_STORE", metavar="URL",
              help="Rasa's SQL tracker store: postgresql://USER@HOST:PORT/DB or sqlite:///PATH "
                   "[env: RASAX_TRACKER_STORE]. Default: the stack's own tracker database.")
@click.option("--password-stdin", is_flag=True, help="Read the tracker store's password from stdin.")
@click.option("--conversation", "conversations", multiple=True, metavar="ID", help="Only this conversation (repeatable).")
@_time_option("--since", "Only events at or after this time")
@_time_option("--until", "Only events before this time")
@click.option("--environment", help="Rasa environment to file the events under (default: production).")
@click.option("--dry-run", is_flag=True, help="Read everything, write nothing: say what would be stored.")
def conversations_import(session, tracker_store, password_stdin, conversations, since, until, environment, dry_run):
    """Import the conversations of Rasa's SQL tracker store (read-only) into the event store.

    Every event goes through the event service's own path, so what is stored already (imported
    before, or streamed live) is skipped: run it again after an interruption and it goes on.
    With DB_* exported and no --dir, into the database those variables name.
    """
    import signal
    import threading

    from deploy import history_import, migrations

    out = session.out
    password = sys.stdin.readline().rstrip("\n") if password_stdin else None
    if password_stdin and not tracker_store:
        raise click.UsageError("--password-stdin needs --tracker-store")

    def progress(p: dict) -> None:
        if out.as_json:
            click.echo(json.dumps({"progress": p}), err=True)
        elif not out.quiet:
            click.echo(history_import.describe_progress(p), err=True)

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        if migrations.uses_environment(click.get_current_context().params.get("install_dir"), os.environ):
            summary = history_import.import_here(tracker_store, password, conversations, since, until, dry_run,
                                                 environment, progress, stop)
        else:
            target = session.target.require_installation()
            if password is not None:
                from sqlalchemy.engine import make_url

                tracker_store = make_url(tracker_store).set(password=password).render_as_string(hide_password=False)
            arguments = [*(f"--conversation={c}" for c in conversations), *(["--dry-run"] if dry_run else []),
                         *([f"--since={since!r}"] if since is not None else []),
                         *([f"--until={until!r}"] if until is not None else []),
                         *([f"--environment={environment}"] if environment else [])]
            summary = history_import.import_in_stack(target, tracker_store, arguments, progress, stop)
    except history_import.HistoryImportError as exc:
        out.failed(str(exc))
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.code)
    if out.as_json:
        click.echo(json.dumps(summary))
    else:
        lines = history_import.describe_summary(summary)
        click.echo(lines[0])
        if not out.quiet:
            for line in lines[1:]:
                click.echo(line)
    if summary["interrupted"]:
        sys.exit(history_import.INTERRUPTED)


if __name__ == "__main__":
    main()
