"""`conversations import`: the history a Rasa bot already had, from its SQL tracker store.

Two modes, as for migrations (deploy/migrations.py):
- DB_* exported and no --dir: the import runs here, into the database DB_* names
  (services/event_service/tracker_import.py does the work).
- An installation (--dir): its PostgreSQL is not published on the host, so the import runs
  inside the stack, in a one-off container of the project image on the stack's network with
  the environment of the db-migration service, as `rasax-deploy conversations import --json`.
  Its progress lines are relayed as they come; its last stdout line is the summary. Without a
  tracker store URL it reads the stack's own tracker database (DB_TRACKER_DATABASE). A SQLite
  file is mounted read-only into that container.

The tracker store URL (with its password) reaches the container in its environment, never in
its command line.
"""

from __future__ import annotations

import json
import threading
import uuid
from pathlib import PurePosixPath
from typing import Callable

from . import images
from .compose import PROJECT_LABEL, SERVICE_LABEL
from .migrations import MIGRATOR_SERVICE
from .stack import RefusedError, Target, plan

# The environment twin of --tracker-store: how the URL reaches the one-off container.
TRACKER_STORE_VARIABLE = "RASAX_TRACKER_STORE"
# Where a SQLite tracker store's folder is mounted in the one-off container.
SQLITE_MOUNT = "/tracker-store"
# Exit status of an import that was interrupted (SIGINT, SIGTERM) after committing its batch.
INTERRUPTED = 130
Progress = Callable[[dict], None]


class HistoryImportError(RuntimeError):
    """One line for the user; `code` is the exit status (2: the input was wrong)."""

    def __init__(self, message: str, code: int = 1, summary: dict | None = None):
        super().__init__(message)
        self.code = code
        self.summary = summary


def import_here(tracker_store: str | None, password: str | None, conversations: tuple[str, ...] = (),
                since: float | None = None, until: float | None = None, dry_run: bool = False,
                environment: str | None = None, progress: Progress | None = None,
                stop: threading.Event | None = None) -> dict:
    """Import into the DB_* database; without `tracker_store`, from its DB_TRACKER_DATABASE."""
    from services.common.amqp import DEFAULT_RASA_ENVIRONMENT
    from services.common.config import ConfigError, database_settings
    from services.event_service import tracker_import as ti

    try:
        db = database_settings()
    except ConfigError as exc:
        raise HistoryImportError(f"configuration: {exc}", 2) from None
    try:
        store = ti.TrackerStore.parse(tracker_store, password) if tracker_store else ti.TrackerStore.of_stack(db)
    except ti.TrackerStoreError as exc:
        raise HistoryImportError(str(exc), 2) from None
    try:
        summary = ti.import_conversations(
            store, db, ti.Selection(tuple(conversations), since, until), dry_run=dry_run,
            environment=environment or DEFAULT_RASA_ENVIRONMENT,
            progress=(lambda p: progress(p.as_dict())) if progress else None, stop=stop,
        )
    except (ti.TrackerStoreError, ti.EventDatabaseError) as exc:
        raise HistoryImportError(str(exc)) from None
    return summary.as_dict()


def import_in_stack(target: Target, tracker_store: str | None, arguments: list[str],
                    progress: Progress | None = None, stop: threading.Event | None = None) -> dict:
    """Run `rasax-deploy conversations import --json ARGUMENTS` inside the installation's stack.

    `arguments` are the selection options (never the URL, which goes in the environment).
    """
    import docker

    stack = plan(target, set())
    migrator = _project_service(stack)
    client = images.client()
    if not client.networks.list(names=[stack.network]):
        raise RefusedError(f"the stack of project {stack.project} is not running (no network {stack.network}): "
                           f"`rasax-deploy up --dir {target.layout.root}` first")
    environment = dict(migrator.environment)
    volumes = {}
    if tracker_store:
        url, volumes = _reachable_from_container(tracker_store)
        environment[TRACKER_STORE_VARIABLE] = url
    container = client.containers.create(
        migrator.image, command=["rasax-deploy", "conversations", "import", "--json", *arguments],
        environment=environment, network=stack.network, user=migrator.user, volumes=volumes,
        name=f"{stack.project}_conversations_import_{uuid.uuid4().hex[:8]}",
        # What `docker-compose run` sets: `down` removes a one-off that outlived its command.
        labels={PROJECT_LABEL: stack.project, SERVICE_LABEL: migrator.name, "com.docker.compose.oneoff": "True"},
    )
    watcher = None
    try:
        container.start()
        if stop is not None:
            # SIGINT here: SIGTERM there, which commits the batch in hand and reports.
            def forward():
                stop.wait()
                try:
                    container.stop(timeout=60)
                except docker.errors.APIError:
                    pass

            watcher = threading.Thread(target=forward, daemon=True)
            watcher.start()
        last_error = ""
        for line in container.logs(stdout=False, stderr=True, stream=True, follow=True):
            text = line.decode(errors="replace").rstrip("\n")
            record = _json(text)
            if record is not None and "progress" in record:
                if progress:
                    progress(record["progress"])
            elif text.strip():
                last_error = text
        code = container.wait()["StatusCode"]
        stdout = container.logs(stdout=True, stderr=False).decode(errors="replace")
    finally:
        container.remove(force=True)
    summaries = [record for record in map(_json, stdout.splitlines()) if record and "events_selected" in record]
    failure = [record for record in map(_json, stdout.splitlines()) if record and record.get("done") is False]
    if code not in (0, INTERRUPTED) or not summaries:
        message = failure[-1]["error"] if failure else last_error.removeprefix("error: ") or f"exit status {code}"
        raise HistoryImportError(_with_hint(message, tracker_store), 2 if code == 2 else 1)
    return summaries[-1]


def _project_service(stack):
    """The service whose image and environment the one-off container takes: db-migration (the
    project image with DB_* only), or in a stack without it the first one of the project image."""
    try:
        return stack.service(MIGRATOR_SERVICE)
    except KeyError:
        project_image = images.STACK_IMAGES["project"]
        for service in stack.services:
            if service.image == project_image:
                return service
        raise RefusedError(f"the stack of project {stack.project} runs no {project_image} service to import with") from None


def _json(text: str) -> dict | None:
    if not text.startswith("{"):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _reachable_from_container(tracker_store: str) -> tuple[str, dict]:
    """The URL as the one-off container must see it, and the mount a SQLite file needs."""
    import os

    import sqlalchemy as sa

    try:
        url = sa.engine.make_url(tracker_store)
    except sa.exc.ArgumentError:
        return tracker_store, {}  # the import in the container names what is wrong with it
    if url.get_backend_name() != "sqlite" or not url.database:
        return tracker_store, {}
    path = os.path.abspath(url.database)
    if not os.path.isfile(path):
        raise HistoryImportError(f"no SQLite file at {path}", 2)
    inside = PurePosixPath(SQLITE_MOUNT) / os.path.basename(path)
    return f"sqlite:///{inside}", {os.path.dirname(path): {"bind": SQLITE_MOUNT, "mode": "ro"}}


def _with_hint(message: str, tracker_store: str | None) -> str:
    if tracker_store and any(host in tracker_store for host in ("@localhost", "@127.", "//localhost", "//127.")):
        return (f"{message} (the import runs inside the stack's network, where localhost is the import's own "
                f"container: name a host the stack can reach)")
    return message


def parse_time(text: str) -> float:
    """--since/--until: Unix seconds, or an ISO 8601 date or time (UTC unless it says otherwise)."""
    from datetime import datetime, timezone

    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is neither Unix seconds nor an ISO 8601 time like 2026-11-30T12:00:00Z") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def describe_progress(p: dict) -> str:
    eta = "" if p["eta_seconds"] is None else f", ETA {p['eta_seconds']:.0f} s"
    return (f"  {p['events_read']:,}/{p['events_selected']:,} events, {p['conversations_done']:,}/"
            f"{p['conversations_selected']:,} conversations, {p['events_per_second']:,.0f} events/s{eta}")


def describe_summary(s: dict) -> list[str]:
    verb = ("would store", "already stored") if s["dry_run"] else ("stored", "skipped as duplicate")
    lines = [f"{'✔' if s['complete'] else '✖'} {s['events_read']:,} of {s['events_selected']:,} events read from "
             f"{s['tracker_store']} ({s['conversations_done']:,}/{s['conversations_selected']:,} conversations, "
             f"{s['seconds']:.1f} s, {s['events_per_second']:,.0f} events/s)",
             f"  {verb[0]}: {s['stored']:,}   {verb[1]}: {s['skipped_duplicate']:,}   refused: {s['refused']:,}"]
    lines += [f"  refused ({count}): {reason}" for reason, count in s["refused_reasons"].items()]
    lines += [f"    row {row['row_id']} of {row['sender_id']!r}: {row['reason']}" for row in s["refused_rows"]]
    if s["interrupted"]:
        lines.append("  interrupted: run the same command again, it goes on where it stopped")
    return lines
