"""Writing files the way an installer must: atomically, with the right mode, never clobbering."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

CREATED, KEPT, UPDATED, UNCHANGED = "created", "exists, kept", "updated", "unchanged"
# The actions that left the disk as it was. Any other (created, updated, restored...) is a change:
# Outcome.changed says so, and whatever reports (the CLI's JSON lines, the Ansible role) reads
# that flag instead of the wording.
UNCHANGED_ACTIONS = frozenset({KEPT, UNCHANGED})


@dataclass(frozen=True)
class Outcome:
    """What a step did to one path; the CLI prints these one per line."""

    path: Path
    action: str

    @property
    def changed(self) -> bool:
        return self.action not in UNCHANGED_ACTIONS


@contextmanager
def atomic_writer(path: Path, mode: int = 0o644, suffix: str = ""):
    """A binary handle on a temp file beside `path`, renamed to `path` when the block ends well:
    a crash or an error leaves the old file or the new, never half, and no temp file.

    The mode is set before any byte is written, so a secret is never readable by others even
    for an instant.
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def write_atomic(path: Path, data: bytes | str, mode: int = 0o644) -> None:
    """`data` written to `path` with `atomic_writer`."""
    if isinstance(data, str):
        data = data.encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_writer(path, mode) as handle:
        handle.write(data)


def create_if_absent(path: Path, data: bytes | str, mode: int = 0o644) -> Outcome:
    """The user's file from then on: written only when missing."""
    if path.exists():
        return Outcome(path, KEPT)
    write_atomic(path, data, mode)
    return Outcome(path, CREATED)


def write_if_changed(path: Path, data: bytes | str, mode: int = 0o644) -> Outcome:
    """A file the tool owns (regenerated on each render): rewritten only when its content changes."""
    if isinstance(data, str):
        data = data.encode()
    if path.exists():
        if path.read_bytes() == data:
            return Outcome(path, UNCHANGED)
        write_atomic(path, data, mode)
        return Outcome(path, UPDATED)
    write_atomic(path, data, mode)
    return Outcome(path, CREATED)


def ensure_dir(path: Path, mode: int, owner: tuple[int, int] | None = None) -> Outcome:
    """A folder with its mode and (as root) its owner; an existing one keeps what the user set."""
    if path.is_dir():
        return Outcome(path, KEPT)
    path.mkdir(parents=True, mode=mode)
    os.chmod(path, mode)  # mkdir's mode is filtered by the umask
    if owner is not None and os.geteuid() == 0:
        os.chown(path, *owner)
    return Outcome(path, CREATED)
