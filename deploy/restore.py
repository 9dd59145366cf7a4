"""`restore FILE`: an installation back from a `backup` archive, into an empty folder (a new
machine) or over the installation it came from.

Nothing changes until the whole archive is read and every member matches its manifest's
checksum, and the archive is one this version can restore (not a newer rasax-deploy's, not a
newer PostgreSQL's). Over an existing installation the current state is backed up first, and a
restore that fails after that point names the command that puts it back.

Then: the installation's files are put in place (with their modes and owners), only the
database service is started, on fresh data volumes, each database is dropped, created and
filled by `pg_restore` from its dump, and `up` starts the rest (the migrator brings an older
backup's schema to the current head).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from . import backup, images, render, stack
from .backup import BackupError
from .compose import PROJECT_LABEL
from .files import CREATED, Outcome
from .layout import Layout, parse_env
from .output import Output
from .stack import RefusedError, Target


def _top_level(manifest: dict) -> list[str]:
    """The installation's files and folders in the archive (the dumps are not files of the folder)."""
    return sorted({name.split("/")[0] for name in manifest["members"]} - {backup.DATABASES_DIR})


def _check_destination(layout: Layout, replacing: bool) -> None:
    root = layout.root
    if layout.env_file.exists():
        if not replacing:
            raise RefusedError(f"{root} is an installation: restoring over it replaces its data and files (after "
                               f"a backup of them); confirm with -y")
        return
    if root.exists() and any(root.iterdir()):
        raise RefusedError(f"{root} is not empty and not an installation: restore into an empty or new folder")


def _check_no_leftovers(docker_client, project: str, root: Path) -> None:
    """A new folder restores onto new volumes: data of the same project would be written over."""
    label = {"label": f"{PROJECT_LABEL}={project}"}
    volumes = sorted(v.name for v in docker_client.volumes.list(filters=label))
    containers = docker_client.containers.list(all=True, filters=label)
    if volumes or containers:
        raise RefusedError(
            f"project {project!r} still has {'data volumes ' + ' '.join(volumes) if volumes else 'containers'} on "
            f"this machine, which the restore would write over. Nothing was changed. Restore over that installation "
            f"(`--dir` its folder, -y: it is backed up first), or remove it first: "
            f"`rasax-deploy down -p {project} --dir {root} --volumes`")


def _put_files(staging: Path, layout: Layout, manifest: dict, modes: dict) -> list[Outcome]:
    """Each file and folder of the archive replaces the installation's (same filesystem: a rename)."""
    layout.root.mkdir(parents=True, exist_ok=True)
    outcomes = []
    for name in _top_level(manifest):
        destination = layout.root / name
        if destination.is_dir() and not destination.is_symlink():
            shutil.rmtree(destination)
        elif destination.exists() or destination.is_symlink():
            destination.unlink()
        os.replace(staging / name, destination)
        outcomes.append(Outcome(destination, "restored"))
    # Deepest first, so a folder's mode cannot lock us out of what is still to be set inside it.
    for name, (mode, uid, gid) in sorted(modes.items(), key=lambda item: -item[0].count("/")):
        if name.split("/")[0] == backup.DATABASES_DIR:
            continue
        path = layout.root / name
        if os.geteuid() == 0:
            os.chown(path, uid, gid)
        os.chmod(path, mode)
    return outcomes


def _chunks(path: Path):
    with open(path, "rb") as handle:
        while chunk := handle.read(backup.CHUNK):
            yield chunk


def restore(target: Target, archive: Path, out: Output, replacing: bool = False, timeout: float = 300) -> dict:
    """Restore; the manifest of the archive (with `previous`: the automatic backup, if one was made)."""
    archive = Path(archive)
    if not archive.is_file():
        raise FileNotFoundError(f"{archive} does not exist")
    layout = target.layout
    _check_destination(layout, replacing)
    layout.root.parent.mkdir(parents=True, exist_ok=True)
    # Beside the folder: the same filesystem, so the files move into place by renaming.
    staging = Path(tempfile.mkdtemp(prefix=f".{layout.root.name}.restore-", dir=layout.root.parent))
    try:
        out.step(f"Reading and checking {archive}")
        manifest, modes = backup.extract_verified(archive, staging)
        backup.check_compatible(manifest, archive, images.STACK_IMAGES["postgres"])
        out.note(f"backup of project {manifest['project']} made {manifest['created_at']} by rasax-deploy "
                 f"{manifest['rasax_deploy_version']}: every checksum matches")
        project = parse_env((staging / ".env").read_text()).get("COMPOSE_PROJECT_NAME") or manifest["project"]
        if target.project_option and target.project_option != project:
            raise RefusedError(f"{archive} holds project {project!r}, not {target.project_option!r}: drop "
                               f"--project-name (a restored installation keeps its name, its volumes are named after it)")
        docker_client = stack.ensure_engine(out)
        previous = None
        if layout.env_file.exists():
            if target.project != project:
                raise RefusedError(f"{layout.root} is project {target.project!r}, the archive project {project!r}: "
                                   f"restore it into its own folder")
            out.step("Backing up the current installation first")
            backup.start_database(docker_client, stack.plan(target, set()), out.event, timeout)
            previous, _ = backup.create(target, note=out.note, docker_client=docker_client)
            out.outcome(Outcome(previous, CREATED), layout.root)
            stack.down(target, out, volumes=True)
        else:
            _check_no_leftovers(docker_client, project, layout.root)
        manifest["previous"] = str(previous) if previous else None
        try:
            _restore_into(Target(layout), staging, manifest, modes, out, docker_client, timeout)
        except Exception as exc:
            if previous is None:
                raise
            raise RefusedError(f"{exc}; the installation as it was before is in {previous}: "
                               f"`rasax-deploy restore {previous} --dir {layout.root} -y` puts it back") from None
        return manifest
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _restore_into(target: Target, staging: Path, manifest: dict, modes: dict, out: Output, docker_client,
                  timeout: float) -> None:
    layout = target.layout
    out.step(f"Putting the files of the installation back into {layout.root}")
    for outcome in _put_files(staging, layout, manifest, modes):
        out.outcome(outcome, layout.root)
    stack.init(target, out)  # models/, logs/ ... that the archive did not hold
    options = render.load_options(layout)
    stack.render_files(target, out, options)
    plan = stack.plan(target, set())
    stack.obtain_images(docker_client, plan, out)
    out.step("Starting the database alone, on new data volumes")
    backup.start_database(docker_client, plan, out.event, timeout)
    database = backup.Database.of(target, docker_client)
    for key, entry in manifest["databases"].items():
        if entry is None:
            out.note(f"the {key} database was not in the backup (not created yet when it was made)")
            continue
        out.step(f"Restoring database {entry['name']}")
        database.restore(entry["name"], _chunks(staging / entry["member"]))
        out.event(entry["name"], "restored", kind="database")
    stack.up(target, out, options, set(), timeout)
