"""`rasax-deploy data import|export`: an installation's training data as Rasa 3.x files.

Through the running rasa-x's API behind nginx, logged in as the installation's admin
(deploy/stack_api.py), never into the database: the API checks and stores an import in one
transaction, so a refused import changes nothing, whoever sends it.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from .files import CREATED, UNCHANGED, UPDATED, Outcome, write_atomic
from .stack import Target
from .stack_api import StackApi, as_admin

IMPORT_PATH = "/api/projects/default/import"
EXPORT_PATH = "/api/projects/default/export"
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".zip")
SKIPPED_FOLDERS = {".git", ".rasa", "models", "results", "__pycache__", ".venv", "venv"}


def _project_archive(folder: Path) -> bytes:
    """The YAML files of a project folder as a .tar.gz; the server reads only Rasa's files of it."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path in sorted(folder.rglob("*")):
            relative = path.relative_to(folder)
            if path.is_file() and path.suffix in (".yml", ".yaml") and not SKIPPED_FOLDERS & set(relative.parts[:-1]):
                archive.add(path, arcname=str(relative))
    return buffer.getvalue()


def upload(paths: list[Path]) -> list[tuple[str, bytes]]:
    """(name, content) to send for each path: a folder packed, an archive or YAML file as it is."""
    files = []
    for path in paths:
        if path.is_dir():
            files.append((f"{path.name or 'project'}.tar.gz", _project_archive(path)))
        elif path.is_file() and (path.suffix in (".yml", ".yaml") or path.name.endswith(ARCHIVE_SUFFIXES)):
            files.append((path.name, path.read_bytes()))
        elif path.exists():
            raise ValueError(f"{path}: expected a Rasa project folder, a .yml/.yaml file, or a .tar.gz/.zip of a project")
        else:
            raise FileNotFoundError(f"{path} does not exist")
    return files


def import_data(target: Target, paths: list[Path], mode: str, api: StackApi | None = None) -> dict:
    files = upload(paths)
    api = api or as_admin(target)
    response = api.call("POST", f"{IMPORT_PATH}?mode={mode}", files=[("files", (name, data)) for name, data in files])
    return response.json()


def export_data(target: Target, destination: Path, api: StackApi | None = None) -> tuple[str, list[Outcome]]:
    """Write the export to `destination`: a .tar.gz file as it is, else a project folder's files.
    Returns the data version and what was written."""
    # Only the files an export has are written, so an archive cannot place a file elsewhere.
    from services.backend.training_data.rasa_yaml import EXPORT_FILES

    api = api or as_admin(target)
    response = api.call("GET", EXPORT_PATH)
    version = response.headers.get("X-Data-Version", "")
    if destination.name.endswith((".tar.gz", ".tgz")):
        existed = destination.exists()
        write_atomic(destination, response.content)
        return version, [Outcome(destination, UPDATED if existed else CREATED)]
    outcomes = []
    with tarfile.open(fileobj=io.BytesIO(response.content), mode="r:gz") as archive:
        members = {m.name: m for m in archive.getmembers() if m.isfile()}
        missing = [name for name in EXPORT_FILES.values() if name not in members]
        if missing:
            raise ValueError(f"the export lacks {missing}: is rasa-x older than this rasax-deploy?")
        for name in EXPORT_FILES.values():
            path = destination / name
            data = archive.extractfile(members[name]).read()
            before = path.read_bytes() if path.is_file() else None
            if before != data:
                path.parent.mkdir(parents=True, exist_ok=True)
                write_atomic(path, data)
            outcomes.append(Outcome(path, UNCHANGED if before == data else UPDATED if before is not None else CREATED))
    return version, outcomes
