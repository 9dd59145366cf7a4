"""`upgrade`: this rasax-deploy's version over the installed one, with a way back.

The installed version is the one the last successful `up` recorded in rasax-state.json. An
upgrade refuses a downgrade (the database may be at a schema the older code does not know), then
takes a full backup, and runs `up`: the files are rendered again (never the override), images
rebuilt, the migrator brings the schema to head, and the services are replaced one by one in
dependency order, each waited for until healthy. A service that does not come up stops the roll:
the ones after it (rasa-x when the migration fails) still run the previous version, and the
failure names the `restore` of the backup that brings everything back.

A change of PostgreSQL major version cannot reuse the data volume: it goes through the backup's
dumps, restored into a new cluster of the new version (`restore` of that archive).
"""

from __future__ import annotations

from pathlib import Path

from services import __version__

from . import backup, images, render, restore, runtime, stack
from .output import Output
from .stack import RefusedError, Target


def installed_version(target: Target) -> str | None:
    return render.load_state(target.layout).get("version")


def check_versions(installed: str | None, to: str | None, root: Path) -> None:
    """Refuse what this rasax-deploy cannot do: another target version, a downgrade."""
    if to is not None and backup.version_tuple(to) != backup.version_tuple(__version__):
        raise RefusedError(f"this rasax-deploy is version {__version__}: it installs only itself. To go to {to}, "
                           f"install rasax-deploy {to} and run its `rasax-deploy upgrade --dir {root}`")
    if installed is None:
        raise RefusedError(f"{root} has no installed version (no `up` has worked there yet): run "
                           f"`rasax-deploy up --dir {root}`")
    if backup.version_tuple(installed) > backup.version_tuple(__version__):
        raise RefusedError(f"{root} runs rasax-deploy {installed}, newer than this one ({__version__}): downgrades "
                           f"are refused (its database may be at a schema {__version__} does not know). Use "
                           f"rasax-deploy {installed}, or restore a backup made by {__version__}")


def upgrade(target: Target, out: Output, to: str | None = None, timeout: float = 300) -> dict:
    """Upgrade; what was done: from, to, backup."""
    target.require_installation()
    root = target.layout.root
    installed = installed_version(target)
    check_versions(installed, to, root)
    docker_client = stack.ensure_engine(out)
    out.step("Ensuring the database runs, for the backup")
    backup.start_database(docker_client, stack.plan(target, set()), out.event, timeout)
    out.step(f"Backing up {target.project} (rasax-deploy {installed}) first")
    archive, manifest = backup.create(target, note=out.note, docker_client=docker_client)
    out.note(f"backup: {archive}")
    way_back = f"`rasax-deploy restore {archive} --dir {root} -y` brings back the installation as it was"
    new_major = backup.pg_major(images.STACK_IMAGES["postgres"])
    try:
        if manifest["postgres_major"] != new_major:
            out.step(f"PostgreSQL {manifest['postgres_major']} → {new_major}: dump and restore into a new cluster")
            restore.restore(target, archive, out, replacing=True, timeout=timeout)
        else:
            out.step(f"Upgrading {target.project}: rasax-deploy {installed} → {__version__}")
            stack.up(target, out, render.load_options(target.layout), set(), timeout)
    except (runtime.DeployError, RefusedError, backup.BackupError) as exc:
        service = getattr(exc, "service", None)
        kept = (" The services after it still run the previous version." if service else "")
        raise runtime.DeployError(f"the upgrade to {__version__} failed: {exc}.{kept} {way_back}",
                                  service, getattr(exc, "logs", "")) from None
    return {"from": installed, "to": __version__, "backup": str(archive)}
