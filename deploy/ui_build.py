"""The web UI's build: frontend/ (Vite, TypeScript, Preact) into services/backend/ui/dist.

The project image's wheel carries that folder as package data of services.backend, so the
image serves the UI with nothing fetched at run time. The build runs on the host from the lock
file (`npm ci`: the npm registry, or npm's cache, only) and is skipped while frontend/ is
unchanged. Callers: the project image's build context (deploy/images.py) and the browser tests,
so that the tests serve the same files the image does.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from pathlib import Path
from typing import Callable

from . import SOURCE_ROOT

FRONTEND = SOURCE_ROOT / "frontend"
DIST = SOURCE_ROOT / "services" / "backend" / "ui" / "dist"
# Made from the frontend sources: hashed through them, never as themselves (deploy/images.py).
DERIVED = ("frontend/node_modules/", "services/backend/ui/dist/")
# Vite 8's floor (frontend/package.json "engines").
MIN_NODE = (20, 19)
# Stamps inside node_modules/, so `npm ci` (which empties it) also forgets them.
_LOCK_STAMP = "node_modules/.rasax-lock-sha256"
_BUILD_STAMP = "node_modules/.rasax-build-sha256"


class UiBuildError(RuntimeError):
    pass


def source_hash() -> str:
    """The hash of every file the build reads (frontend/ less node_modules)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in FRONTEND.rglob("*") if p.is_file()):
        relative = path.relative_to(FRONTEND).as_posix()
        if relative.startswith("node_modules/"):
            continue
        digest.update(relative.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _check_node() -> None:
    node = shutil.which("node")
    if node is None or shutil.which("npm") is None:
        raise UiBuildError(
            "building the web UI needs Node.js >= 20.19 and npm on this host, and neither node nor npm is on "
            "PATH: install them (Debian bookworm's own nodejs is 18, too old: use the NodeSource packages)"
        )
    version = subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip()
    found = tuple(int(n) for n in re.findall(r"\d+", version)[:2])
    if found < MIN_NODE:
        raise UiBuildError(f"building the web UI needs Node.js >= {'.'.join(map(str, MIN_NODE))}; this host has {version}")


def _npm(*args: str) -> None:
    result = subprocess.run(["npm", *args], cwd=FRONTEND, capture_output=True, text=True)
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip()
        raise UiBuildError(f"`npm {' '.join(args)}` in {FRONTEND} failed:\n{output[-3000:]}")


def build(progress: Callable[[str], None] = lambda _: None, force: bool = False) -> Path:
    """Build the UI into DIST unless it is already built from these sources; return DIST."""
    if not (FRONTEND / "package-lock.json").is_file():
        raise UiBuildError(f"no {FRONTEND}/package-lock.json: the web UI builds only from a checkout of rasax-deploy")
    wanted = source_hash()
    build_stamp = FRONTEND / _BUILD_STAMP
    if not force and (DIST / "index.html").is_file() and build_stamp.is_file() and build_stamp.read_text() == wanted:
        progress("web UI: built from these sources, kept")
        return DIST
    _check_node()
    lock = _sha256(FRONTEND / "package-lock.json")
    lock_stamp = FRONTEND / _LOCK_STAMP
    if not (lock_stamp.is_file() and lock_stamp.read_text() == lock):
        progress("web UI: npm ci (the packages of frontend/package-lock.json)")
        _npm("ci", "--prefer-offline", "--no-audit", "--no-fund")
        lock_stamp.write_text(lock)
    progress("web UI: type check and vite build")
    _npm("run", "build")
    build_stamp.write_text(wanted)
    return DIST
