"""`backup`: one archive of an installation, taken while its stack runs.

The archive is an uncompressed tar (the dumps and models are compressed already):
- `databases/<name>.dump`: `pg_dump -Fc` of the rasa-x database and of Rasa's tracker database
  (when Rasa has created it), run inside the db container and streamed into the archive;
- the installation's own files: `.env`, `credentials/`, `auth/` (the key pair), `certs/`, the
  override file, `actions/`, `rasax-state.json` and `models/` (unless excluded); the rendered
  files are not kept, `restore` renders them again;
- `manifest.json`, last: format, project, versions (rasax-deploy, PostgreSQL major, Rasa), time,
  and the sha256 and size of every other member, so `restore` can refuse a corrupt archive.

It is written 0600 under a temporary name in the destination folder and renamed when complete:
a failed or interrupted backup leaves no archive that looks whole. A dump is streamed into its
tar member and the member's header is written again with the size once known, so nothing holds
a whole dump in memory or on disk twice.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tarfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable

from services import __version__

from . import container_exec, images, runtime
from .compose import Plan
from .files import atomic_writer
from .layout import Layout, read_env
from .preflight import RefusedError
from .stack import Target, plan

FORMAT = "rasax-deploy-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DATABASES_DIR = "databases"
MODELS = "models"
EXCLUDABLE = (MODELS,)
DB_SERVICE = "db"
BACKUPS_DIR = "backups"
ARCHIVE_NAME = re.compile(r"^rasax-backup-(?P<project>.+)-(?P<stamp>\d{8}T\d{6}Z)\.tar$")
CHUNK = 1 << 20

Note = Callable[[str], None]


class BackupError(RefusedError):
    """A backup that could not be taken, or an archive that cannot be restored: says why."""


def installation_members(layout: Layout, exclude: Iterable[str] = ()) -> list[Path]:
    """The installation's own files and folders a backup carries, those that exist."""
    # The Rasa files (endpoints.yml, ...) are rendered like docker-compose.yml: restore renders them.
    paths = [layout.env_file, layout.credentials, layout.auth, layout.certs, layout.override_file,
             layout.state_file, layout.actions]
    if MODELS not in exclude:
        paths.append(layout.root / MODELS)
    return [path for path in paths if path.exists()]


def pg_major(image: str) -> int:
    """The PostgreSQL major version of the stack's image, from its tag (rasax/postgres:15)."""
    return int(image.rsplit(":", 1)[1].split(".")[0])


def version_tuple(version: str) -> tuple[int, ...]:
    """`0.1.0` → (0, 1, 0); what a newer or older version means for restore and upgrade."""
    return tuple(int(part) for part in re.findall(r"\d+", version.split("+")[0])[:3])


def default_path(layout: Layout, project: str, now: datetime | None = None) -> Path:
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
    return layout.root / BACKUPS_DIR / f"rasax-backup-{project}-{stamp}.tar"


# ---- the database, inside the db container ---------------------------------------------------

@dataclass
class Database:
    """The stack's PostgreSQL, reached with `docker exec` in its container (not published on the host)."""

    container: object
    user: str

    @classmethod
    def of(cls, target: Target, docker_client=None) -> "Database":
        stack = plan(target, set())
        docker_client = docker_client or images.client()
        name = stack.service(DB_SERVICE).container
        try:
            container = docker_client.containers.get(name)
        except Exception:  # docker.errors.NotFound, or the engine is away
            container = None
        if container is None or container.status != "running":
            raise BackupError(f"the database container {name} is not running: a backup is taken from the running "
                              f"stack (`rasax-deploy up --dir {target.layout.root}` first)")
        return cls(container, read_env(target.layout).get("DB_USER", "admin"))

    def query(self, sql: str, database: str = "postgres") -> str:
        return container_exec.run(self.container, ["psql", "-U", self.user, "-d", database, "-tAc", sql])[1].strip()

    def exists(self, database: str) -> bool:
        return self.query(f"SELECT 1 FROM pg_database WHERE datname = '{database}'") == "1"

    def major(self) -> int:
        return int(self.query("SHOW server_version_num")) // 10000

    def dump(self, database: str):
        return container_exec.stream_out(self.container, ["pg_dump", "-U", self.user, "-Fc", database])

    def restore(self, database: str, chunks) -> None:
        """Drop and create `database` from a custom-format dump, owned by the stack's user."""
        container_exec.run(self.container, ["dropdb", "-U", self.user, "--if-exists", database])
        container_exec.run(self.container, ["createdb", "-U", self.user, database])
        container_exec.stream_in(self.container, ["pg_restore", "-U", self.user, "-d", database, "--no-owner",
                                                  "--no-acl", "--exit-on-error"], chunks)


def start_database(docker_client, plan: Plan, report, timeout: float) -> None:
    """The database service alone, healthy (restore fills it before anything else connects;
    upgrade backs up a stopped stack). Nothing else of the project is touched.

    A db container that exists is started as it is, never replaced by the plan's: before an
    upgrade the plan may name a newer PostgreSQL, which refuses the data of the older one, and the
    backup must come from the server that wrote it."""
    import docker

    db = plan.service(DB_SERVICE)
    runtime.ensure_network(docker_client, plan, report)
    runtime.ensure_volumes(docker_client, plan, report)
    try:
        container = docker_client.containers.get(db.container)
    except docker.errors.NotFound:
        runtime.ensure_container(docker_client, db, report)
    else:
        if container.status != "running":
            container.start()
            report(db.name, "started")
    runtime.wait_for(docker_client, db, "service_healthy", report, timeout)


# ---- writing an archive ------------------------------------------------------------------------

class _Hashing:
    """A file read through it has its sha256 taken on the way (tarfile reads it once)."""

    def __init__(self, handle):
        self.handle, self.digest = handle, hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self.handle.read(size)
        self.digest.update(data)
        return data


@dataclass
class _Writer:
    tar: tarfile.TarFile
    members: dict = field(default_factory=dict)

    def add_path(self, path: Path, name: str) -> None:
        """A file or folder of the installation, recursively, with its mode and owner."""
        info = self.tar.gettarinfo(str(path), arcname=name)
        if info.isdir():
            self.tar.addfile(info)
            self.members[name] = {"type": "dir"}
            for child in sorted(path.iterdir()):
                if child.is_file() or child.is_dir():  # symlinks and sockets are not data
                    self.add_path(child, f"{name}/{child.name}")
        elif info.isreg():
            with open(path, "rb") as handle:
                hashing = _Hashing(handle)
                self.tar.addfile(info, hashing)
            self.members[name] = {"sha256": hashing.digest.hexdigest(), "size": info.size}

    def add_bytes(self, name: str, data: bytes) -> None:
        import io

        info = tarfile.TarInfo(name)
        info.size, info.mode, info.mtime = len(data), 0o600, int(time.time())
        self.tar.addfile(info, io.BytesIO(data))

    def add_stream(self, name: str, chunks) -> int:
        """A member of unknown size: header, data as it comes, then the header again with the size
        (GNU format: the header keeps its length whatever the size, so it can be rewritten in place)."""
        handle = self.tar.fileobj
        info = tarfile.TarInfo(name)
        info.mode, info.mtime, info.size = 0o600, int(time.time()), 0
        start = handle.tell()
        header = info.tobuf(tarfile.GNU_FORMAT, self.tar.encoding, self.tar.errors)
        handle.write(header)
        digest, size = hashlib.sha256(), 0
        for chunk in chunks:
            handle.write(chunk)
            digest.update(chunk)
            size += len(chunk)
        padding = -size % tarfile.BLOCKSIZE
        handle.write(tarfile.NUL * padding)
        end = handle.tell()
        info.size = size
        final = info.tobuf(tarfile.GNU_FORMAT, self.tar.encoding, self.tar.errors)
        assert len(final) == len(header)
        handle.seek(start)
        handle.write(final)
        handle.seek(end)
        self.tar.offset = end  # tarfile's own count of what it wrote, for the end-of-archive blocks
        self.members[name] = {"sha256": digest.hexdigest(), "size": size}
        return size


def _progress(chunks, note: Note, what: str, every: int = 256 << 20):
    """Pass chunks on; a note every `every` bytes, so a long dump shows it is moving."""
    done, next_note = 0, every
    for chunk in chunks:
        done += len(chunk)
        if done >= next_note:
            note(f"{what}: {done >> 20} MiB so far")
            next_note += every
        yield chunk


def create(target: Target, output: Path | None = None, exclude: Iterable[str] = (), note: Note = print,
           docker_client=None) -> tuple[Path, dict]:
    """Back up the running installation; (the archive's path, its manifest)."""
    target.require_installation()
    env = read_env(target.layout)
    database = Database.of(target, docker_client)
    dumps = {}
    for key, name in (("rasa", env.get("DB_DATABASE", "rasa")), ("tracker", env.get("DB_TRACKER_DATABASE", "tracker"))):
        if database.exists(name):
            dumps[key] = (name, database.dump(name))
        else:
            note(f"database {name} does not exist yet (Rasa creates its tracker database on its first start): "
                 f"not in this backup")
            dumps[key] = None
    facts = {"project": target.project, "postgres_major": database.major(), "rasa_version": env.get("RASA_VERSION")}
    output = Path(output) if output else default_path(target.layout, target.project)
    return output, write(output, target.layout, dumps, facts, exclude, note)


def write(output: Path, layout: Layout, dumps: dict, facts: dict, exclude: Iterable[str] = (),
          note: Note = print) -> dict:
    """The archive at `output`, atomically and 0600; its manifest.

    dumps: key → (database name, its dump as chunks), or None for a database that does not exist;
    facts: project, postgres_major, rasa_version.
    """
    exclude = set(exclude)
    bad = exclude - set(EXCLUDABLE)
    if bad:
        raise BackupError(f"cannot exclude {', '.join(sorted(bad))}: only {', '.join(EXCLUDABLE)}")
    output.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with atomic_writer(output, 0o600, suffix=".partial") as handle, \
            tarfile.open(fileobj=handle, mode="w", format=tarfile.GNU_FORMAT) as tar:
        writer = _Writer(tar)
        databases = {}
        for key, dump in dumps.items():
            if dump is None:
                databases[key] = None
                continue
            name, chunks = dump
            member = f"{DATABASES_DIR}/{key}.dump"
            started = time.monotonic()
            size = writer.add_stream(member, _progress(chunks, note, f"dumping {name}"))
            note(f"database {name}: {size / 2**20:.1f} MiB dumped in {time.monotonic() - started:.1f} s")
            databases[key] = {"name": name, "member": member}
        for path in installation_members(layout, exclude):
            writer.add_path(path, str(path.relative_to(layout.root)))
        if MODELS in exclude:
            note("models/ excluded (--exclude models)")
        manifest = dict(facts, format=FORMAT, format_version=FORMAT_VERSION, rasax_deploy_version=__version__,
                        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                        databases=databases, excluded=sorted(exclude), members=writer.members)
        writer.add_bytes(MANIFEST, json.dumps(manifest, indent=2, sort_keys=True).encode())
    return manifest


def prune(folder: Path, project: str, keep: int) -> list[Path]:
    """Delete all but the newest `keep` archives of `project` in `folder` (named by `default_path`)."""
    if keep < 1:
        raise BackupError("--keep must be at least 1")
    archives = sorted((p for p in folder.iterdir() if (m := ARCHIVE_NAME.match(p.name)) and m["project"] == project),
                      key=lambda p: ARCHIVE_NAME.match(p.name)["stamp"])
    removed = archives[:-keep]
    for path in removed:
        path.unlink()
    return removed


# ---- reading an archive ------------------------------------------------------------------------

def _safe_name(name: str) -> bool:
    parts = Path(name).parts
    return bool(parts) and not Path(name).is_absolute() and ".." not in parts


def parse_manifest(data: bytes | None, archive: Path) -> dict:
    """The manifest of an archive, or a refusal saying why the file is not a backup of ours."""
    if data is None:
        raise BackupError(f"{archive} is not a rasax-deploy backup: it has no {MANIFEST}")
    try:
        manifest = json.loads(data)
    except ValueError:
        raise BackupError(f"{archive}: its {MANIFEST} is not JSON: not a rasax-deploy backup") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{archive} is not a rasax-deploy backup (its manifest's format is "
                          f"{manifest.get('format') if isinstance(manifest, dict) else None!r}, expected {FORMAT!r})")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BackupError(f"{archive} is a backup of format {manifest.get('format_version')}, this rasax-deploy "
                          f"reads format {FORMAT_VERSION}: restore it with the rasax-deploy version that made it "
                          f"({manifest.get('rasax_deploy_version')})")
    return manifest


def check_compatible(manifest: dict, archive: Path, postgres_image: str) -> None:
    """Refuse an archive this version cannot restore faithfully: a newer rasax-deploy's (its schema
    may be ahead of our migrations) or a newer PostgreSQL's (pg_restore cannot read newer dumps)."""
    made_by = manifest["rasax_deploy_version"]
    if version_tuple(made_by) > version_tuple(__version__):
        raise BackupError(f"{archive} was made by rasax-deploy {made_by}, newer than this one ({__version__}): "
                          f"its database may be at a schema this version does not know. Install rasax-deploy "
                          f"{made_by} or later to restore it")
    ours = pg_major(postgres_image)
    if manifest["postgres_major"] > ours:
        raise BackupError(f"{archive} holds PostgreSQL {manifest['postgres_major']} dumps; this stack runs "
                          f"PostgreSQL {ours}, whose pg_restore cannot read them")


def extract_verified(archive: Path, into: Path) -> tuple[dict, dict[str, tuple[int, int, int]]]:
    """Unpack every member into `into` (a private folder) in one pass, then check each against the
    manifest (the last member): one missing, unexpected, or with another checksum is refused
    before anything is used. Returns the manifest and each member's (mode, uid, gid)."""
    found: dict[str, str | None] = {}
    modes: dict[str, tuple[int, int, int]] = {}
    manifest_data = None
    try:
        with tarfile.open(archive, mode="r:") as tar:
            for member in tar:
                if not _safe_name(member.name) or member.name in found:
                    raise BackupError(f"{archive} is not a rasax-deploy backup or was tampered with: member "
                                      f"{member.name!r} is unsafe or repeated")
                if member.name == MANIFEST:
                    manifest_data = tar.extractfile(member).read()
                    continue
                modes[member.name] = (member.mode & 0o7777, member.uid, member.gid)
                destination = into / member.name
                if member.isdir():
                    destination.mkdir(parents=True, exist_ok=True)
                    found[member.name] = None
                    continue
                if not member.isreg():
                    raise BackupError(f"{archive}: member {member.name!r} is not a regular file")
                destination.parent.mkdir(parents=True, exist_ok=True)
                digest = hashlib.sha256()
                source = tar.extractfile(member)
                with open(destination, "wb") as handle:
                    os.fchmod(handle.fileno(), 0o600)
                    while chunk := source.read(CHUNK):
                        digest.update(chunk)
                        handle.write(chunk)
                found[member.name] = digest.hexdigest()
    except (tarfile.TarError, EOFError) as exc:
        raise BackupError(f"{archive} is not a readable tar archive ({exc}): not a rasax-deploy backup, "
                          f"or a truncated one") from None
    manifest = parse_manifest(manifest_data, archive)
    expected = manifest.get("members") or {}
    unexpected = sorted(set(found) - set(expected))
    if unexpected:
        raise BackupError(f"{archive} was tampered with: {', '.join(unexpected[:5])} not in its manifest")
    missing = sorted(set(expected) - set(found))
    if missing:
        raise BackupError(f"{archive} is incomplete: {', '.join(missing[:5])} missing")
    for name, digest in found.items():
        if digest is not None and digest != expected[name].get("sha256"):
            raise BackupError(f"{archive} is corrupt: the checksum of {name} differs from the one in its manifest")
    return manifest, modes
