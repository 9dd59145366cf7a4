"""The files of an import (YAML files, or one .tar.gz / .zip of a project) and the export archive.

Archives are read in memory, never unpacked to disk, with bounds on the number of members and on
their unpacked size (an archive bomb is refused, not inflated). Of a project archive only the
Rasa files are read: `tests/` (test stories), endpoints.yml, credentials.yml and anything that is
not YAML are skipped, as `rasa train` skips them.
"""

from __future__ import annotations

import io
import posixpath
import tarfile
import time
import zipfile

from .rasa_yaml import FormatError

MAX_MEMBERS = 1000
MAX_UNPACKED_BYTES = 64 * 2**20
SKIPPED_NAMES = {"endpoints.yml", "endpoints.yaml", "credentials.yml", "credentials.yaml"}
SKIPPED_FOLDERS = {"tests", "models", "actions", ".rasa", "results"}


def _wanted(path: str) -> bool:
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if not parts or not parts[-1].endswith((".yml", ".yaml")) or parts[-1] in SKIPPED_NAMES:
        return False
    return not any(p in SKIPPED_FOLDERS or p.startswith(".") for p in parts[:-1]) and not parts[-1].startswith(".")


def _tar_members(filename: str, data: bytes) -> list[tuple[str, bytes]]:
    try:
        archive = tarfile.open(fileobj=io.BytesIO(data), mode="r:*")
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise FormatError(filename, None, f"not a readable .tar.gz: {exc}") from None
    result, total = [], 0
    with archive:
        try:
            members = archive.getmembers()
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise FormatError(filename, None, f"the archive is damaged: {exc}") from None
        if len(members) > MAX_MEMBERS:
            raise FormatError(filename, None, f"the archive has more than {MAX_MEMBERS} members")
        for member in members:
            path = posixpath.normpath(member.name)
            if not member.isfile() or not _wanted(path):
                continue
            total += member.size
            if total > MAX_UNPACKED_BYTES:
                raise FormatError(filename, None, f"the archive unpacks to more than {MAX_UNPACKED_BYTES} bytes")
            result.append((f"{filename}:{path}", archive.extractfile(member).read()))
    return result


def _zip_members(filename: str, data: bytes) -> list[tuple[str, bytes]]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError) as exc:
        raise FormatError(filename, None, f"not a readable .zip: {exc}") from None
    result, total = [], 0
    with archive:
        infos = archive.infolist()
        if len(infos) > MAX_MEMBERS:
            raise FormatError(filename, None, f"the archive has more than {MAX_MEMBERS} members")
        for info in infos:
            path = posixpath.normpath(info.filename)
            if info.is_dir() or not _wanted(path):
                continue
            total += info.file_size
            if total > MAX_UNPACKED_BYTES:
                raise FormatError(filename, None, f"the archive unpacks to more than {MAX_UNPACKED_BYTES} bytes")
            try:
                # read() checks the CRC and stops at file_size: a lying header cannot inflate more.
                result.append((f"{filename}:{path}", archive.read(info)))
            except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError) as exc:
                raise FormatError(filename, None, f"cannot read {path}: {exc}") from None
    return result


def upload_files(uploads: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """(name, content) of every YAML file of the upload: files as they are, archives opened."""
    files = []
    for name, data in uploads:
        lowered = name.lower()
        if lowered.endswith((".tar.gz", ".tgz", ".tar")):
            files += _tar_members(name, data)
        elif lowered.endswith(".zip"):
            files += _zip_members(name, data)
        elif lowered.endswith((".yml", ".yaml")):
            files.append((name, data))
        else:
            raise FormatError(name, None, "expected a .yml/.yaml file, or one .tar.gz or .zip of a Rasa project")
    return files


def export_archive(files: dict[str, str]) -> bytes:
    """A .tar.gz of `files` (path → text), as `rasa train` reads an unpacked project."""
    buffer = io.BytesIO()
    now = time.time()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path, text in files.items():
            data = text.encode("utf-8")
            info = tarfile.TarInfo(path)
            info.size, info.mtime, info.mode = len(data), now, 0o644
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()
