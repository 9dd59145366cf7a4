"""The Rasa images (Rasa Open Source and the Rasa SDK action server), built here with no registry.

Rasa 3.6 needs Python 3.8-3.10, which Debian bookworm lacks, so both images are built FROM a local
Debian bullseye base (Python 3.9, made with mmdebstrap like the stack's bookworm base). Containers
may not reach PyPI: every pinned distribution of deploy/images/<name>/requirements-<version>.txt is
downloaded on the host into a wheel cache (binary cp39 manylinux wheels where PyPI has them, the
source otherwise), copied into the build context, and the image installs from it with --no-index;
the few source-only pins are built into wheels in a builder stage of the image.

The cache is a plain folder of files named by version (RASAX_WHEEL_CACHE, by default
~/.cache/rasax-deploy/wheels-cp39-manylinux_x86_64): a file is only ever added, so a rebuild, or a
build of the other image, downloads nothing it already has.

Like deploy/images.py, each image carries the hash of what went into it (base image id, Dockerfile,
requirements file); an image whose hash is present is not rebuilt.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import images
from .images import HASH_LABEL, IMAGES_DIR, ImageError, Progress

DEFAULT_RASA_VERSION = "3.6.21"
SUITE = "bullseye"
BASE_IMAGE = f"rasax/debian:{SUITE}"
REPOSITORIES = {"rasa": "rasax/rasa", "rasa-sdk": "rasax/rasa-sdk"}
# Debian bullseye's python3 and the glibc (2.31) wheels must be built for. The full version: some
# pins' Requires-Python excludes 3.9.0 and 3.9.1, which is what a bare "3.9" would be taken for.
TARGET_PYTHON = "3.9.2"
_ABI = "cp39"
TARGET_PLATFORMS = tuple(f"manylinux_2_{minor}" for minor in range(31, 16, -1)) + (
    "manylinux2014", "manylinux2010", "manylinux1")
DEFAULT_CACHE = Path("~/.cache/rasax-deploy/wheels-cp39-manylinux_x86_64")


# ---- planning (pure) -------------------------------------------------------------------------

def requirements_file(name: str, version: str) -> Path:
    """deploy/images/<name>/requirements-<version>.txt, or an error naming the versions there are."""
    folder = IMAGES_DIR / name
    path = folder / f"requirements-{version}.txt"
    if not path.is_file():
        known = sorted(p.stem.removeprefix("requirements-") for p in folder.glob("requirements-*.txt"))
        what = "RASA_VERSION" if name == "rasa" else f"{name} version"
        raise ImageError(
            f"{what} {version} cannot be built: its dependency set is not pinned in this installer "
            f"(no {path.relative_to(IMAGES_DIR.parent.parent)}); versions that can: {', '.join(known) or 'none'}"
        )
    return path


def pins(path: Path) -> list[tuple[str, str]]:
    """(name, version) of each `name==version` line; anything else is an error, not a guess."""
    result = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.+!-]+)", line)
        if match is None:
            raise ImageError(f"{path.name}:{number}: not a `name==version` pin: {line!r}")
        result.append((match.group(1), match.group(2)))
    return result


def sdk_version(rasa_version: str) -> str:
    """The rasa-sdk version a Rasa version pins: the action server's image follows it."""
    for name, version in pins(requirements_file("rasa", rasa_version)):
        if _canonical(name) == "rasa-sdk":
            return version
    raise ImageError(f"requirements-{rasa_version}.txt of rasa pins no rasa-sdk")


def image_versions(rasa_version: str = DEFAULT_RASA_VERSION) -> dict[str, str]:
    return {"rasa": rasa_version, "rasa-sdk": sdk_version(rasa_version)}


def image_tag(name: str, version: str) -> str:
    return f"{REPOSITORIES[name]}:{version}"


def image_tags(rasa_version: str = DEFAULT_RASA_VERSION) -> dict[str, str]:
    """name → tag of both Rasa images of a Rasa version: what the compose file runs."""
    return {name: image_tag(name, version) for name, version in image_versions(rasa_version).items()}


def buildable(tag: str) -> tuple[str, str] | None:
    """(name, version) when `tag` is a Rasa image this installer can build, else None."""
    repository, _, version = tag.partition(":")
    for name, ours in REPOSITORIES.items():
        if repository == ours and (IMAGES_DIR / name / f"requirements-{version}.txt").is_file():
            return name, version
    return None


def content_hash(name: str, version: str, base_id: str) -> str:
    """What an image is made of: the base, the Dockerfile and the pins (the wheels follow from them)."""
    digest = hashlib.sha256(base_id.encode() + b"\0" + version.encode() + b"\0")
    for path in (*_image_files(name), requirements_file(name, version)):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _image_files(name: str) -> list[Path]:
    """The files of an image's folder that go into its build context (the Dockerfile and what it
    copies), without the pins: only the requested version's goes in, as requirements.txt."""
    return sorted(p for p in (IMAGES_DIR / name).iterdir() if p.is_file() and not p.name.startswith("requirements-"))


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _file_pin(filename: str) -> tuple[str, str] | None:
    """(canonical name, version) of a wheel or sdist file name."""
    if filename.endswith(".whl"):
        parts = filename[:-4].split("-")
        return (_canonical(parts[0]), parts[1]) if len(parts) >= 5 else None
    for suffix in (".tar.gz", ".zip", ".tar.bz2"):
        if filename.endswith(suffix):
            stem = filename[: -len(suffix)]
            name, _, version = stem.rpartition("-")
            return (_canonical(name), version) if name else None
    return None


def _same_version(a: str, b: str) -> bool:
    try:
        from packaging.version import Version
    except ImportError:  # pip always carries a copy
        from pip._vendor.packaging.version import Version
    try:
        return Version(a) == Version(b)
    except Exception:
        return a == b


def cached(cache: Path, name: str, version: str) -> Path | None:
    """The cache's file for a pin: its wheel if there is one, else its source archive."""
    found = []
    if cache.is_dir():
        for path in cache.iterdir():
            parsed = _file_pin(path.name)
            if parsed and parsed[0] == _canonical(name) and _same_version(parsed[1], version):
                found.append(path)
    found.sort(key=lambda p: (not p.name.endswith(".whl"), p.name))
    return found[0] if found else None


def cache_dir(cache: Path | str | None = None) -> Path:
    return Path(cache or os.environ.get("RASAX_WHEEL_CACHE") or DEFAULT_CACHE).expanduser()


# ---- the host side: downloads ----------------------------------------------------------------

def _pip_download(options: list[str], pins: list[str], dest: Path, progress: Progress, total: int,
                  done: set[str]) -> tuple[int, str]:
    """`pip download --no-deps` of `pins` into dest, a progress line per file; (return code, errors)."""
    command = [sys.executable, "-m", "pip", "--disable-pip-version-check", "download", "--no-deps",
               "--progress-bar=off", *options, "--dest", str(dest), *pins]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in process.stdout:
        # "  Downloading tensorflow-2.12.0-cp39-...whl (585.9 MB)" and "  File was already downloaded"
        # (a file of a local index or --find-links folder is "Processing /path/...whl")
        match = re.match(r"\s*(?:Downloading|Using cached|Processing) (\S+\.(?:whl|tar\.gz|zip))(?: \(([^)]*)\))?", line)
        name = match and match.group(1).rsplit("/", 1)[-1]
        if name and name not in done:  # pip may fetch a file twice when a run is repeated
            done.add(name)
            progress(f"wheels: [{len(done)}/{total}] {name}" + (f" ({match.group(2)})" if match.group(2) else ""))
    errors = process.stderr.read()
    return process.wait(), errors


def download(missing: list[tuple[str, str]], cache: Path, progress: Progress) -> None:
    """The pins into the cache: cp39 manylinux wheels in one pip run; the source of pins without one.

    A pin with no such wheel fails the whole run before anything is downloaded; it is set aside
    for a source download and the run repeated (pip caches the index pages, so this is quick).
    """
    platforms = [f"--platform={tag}_x86_64" for tag in TARGET_PLATFORMS]
    binary = ["--only-binary=:all:", f"--python-version={TARGET_PYTHON}", "--implementation=cp",
              f"--abi={_ABI}", *platforms]
    wanted = [f"{name}=={version}" for name, version in missing]
    source_only: list[str] = []
    done: set[str] = set()
    cache.mkdir(parents=True, exist_ok=True)
    # Into a private folder first: a file appears in the cache only once it is complete.
    with tempfile.TemporaryDirectory(prefix=".part-", dir=cache) as tmp:
        while wanted:
            code, errors = _pip_download(binary, wanted, Path(tmp), progress, len(missing), done)
            if code == 0:
                break
            match = re.search(r"No matching distribution found for ([^=\s]+)", errors)
            pin = next((p for p in wanted if match and _canonical(p.split("==")[0]) == _canonical(match.group(1))), None)
            if pin is None:
                raise ImageError(f"pip download failed: {errors.strip()[-1500:]}")
            wanted.remove(pin)
            source_only.append(pin)
            progress(f"wheels: {pin} has no {_ABI} manylinux wheel: "
                     f"its source is downloaded, the image builds it")
        if source_only:
            code, errors = _pip_download(["--no-binary=:all:"], source_only, Path(tmp), progress,
                                         len(missing), done)
            if code != 0:
                raise ImageError(f"cannot download the source of {', '.join(source_only)}: "
                                 f"{errors.strip()[-1500:]}")
        for path in Path(tmp).iterdir():
            os.replace(path, cache / path.name)


def fetch(requirements: Path, cache: Path, progress: Progress) -> list[Path]:
    """Every pin of a requirements file in the cache (downloading what is missing), in file order."""
    wanted = pins(requirements)
    missing = [(name, version) for name, version in wanted if cached(cache, name, version) is None]
    progress(f"wheels: {len(wanted) - len(missing)} of {len(wanted)} pins of {requirements.name} cached in {cache}")
    if missing:
        started = time.monotonic()
        download(missing, cache, progress)
        progress(f"wheels: {len(missing)} downloaded in {time.monotonic() - started:.0f} s")
    files = []
    for name, version in wanted:
        path = cached(cache, name, version)
        if path is None:
            raise ImageError(f"{name}=={version} was downloaded but no file of it is in {cache}")
        files.append(path)
    return files


def prepare_context(name: str, version: str, context: Path, cache: Path, progress: Progress) -> None:
    """Dockerfile, requirements.txt and wheels/ (every pinned file, from the cache) in `context`."""
    requirements = requirements_file(name, version)
    files = fetch(requirements, cache, progress)
    for path in _image_files(name):
        shutil.copy(path, context / path.name)
    shutil.copy(requirements, context / "requirements.txt")
    wheels = context / "wheels"
    wheels.mkdir()
    for path in files:
        try:
            os.link(path, wheels / path.name)  # same file system: no copy of a gigabyte
        except OSError:
            shutil.copy(path, wheels / path.name)


# ---- execution (Docker SDK) ------------------------------------------------------------------

def base(docker_client, progress: Progress) -> str:
    """The local Debian bullseye base image (made once with mmdebstrap, like the bookworm one)."""
    existing = images._image(docker_client, BASE_IMAGE)
    if existing is not None:
        return existing.id
    return images.make_base(docker_client, progress, suite=SUITE, image=BASE_IMAGE)


def build(docker_client, name: str, version: str, progress: Progress, force: bool = False,
          cache: Path | str | None = None, carried: bool = False) -> str:
    """Build rasax/<name>:<version> unless an image with the same content hash is already there
    (carried: or one whose base is missing, as images.build)."""
    image_id, builders = _build(docker_client, name, version, progress, force, cache, carried)
    _remove_builder_stages(docker_client, builders)
    return image_id


def _build(docker_client, name: str, version: str, progress: Progress, force: bool,
           cache: Path | str | None, carried: bool = False) -> tuple[str, list[str]]:
    """(image id, ids of the builder stages this build left behind: untagged, GBs of wheels)."""
    tag = image_tag(name, version)
    requirements_file(name, version)  # an unknown version is refused before anything else
    loaded = images.carried_in(docker_client, tag, BASE_IMAGE, force, progress) if carried else None
    if loaded is not None:
        return loaded.id, []
    wanted = content_hash(name, version, base(docker_client, progress))
    existing = images._image(docker_client, tag)
    if existing is not None and existing.labels.get(HASH_LABEL) == wanted and not force:
        progress(f"{tag}: up to date ({wanted}), kept")
        return existing.id, []
    started = time.monotonic()
    progress(f"{tag}: building ({'changed' if existing else 'new'}, content {wanted})")
    with tempfile.TemporaryDirectory(prefix=f"rasax-{name}-", dir=_context_parent(cache_dir(cache))) as tmp:
        context = Path(tmp)
        prepare_context(name, version, context, cache_dir(cache), progress)
        size = sum(p.stat().st_size for p in (context / "wheels").iterdir())
        progress(f"{tag}: sending {size / 2**20:.0f} MiB of wheels to the Docker engine")
        builders, last_step_image = [], None
        with _long_reads(docker_client) as api:
            for line in images._stream(api.build(
                path=str(context), tag=tag, buildargs={"BASE_IMAGE": BASE_IMAGE},
                labels={HASH_LABEL: wanted, "org.rasax.version": version},
                rm=True, forcerm=True, decode=True,
                # Below other containers' CPU share: the build is long and the machine may be busy.
                container_limits={"cpushares": 256},
            )):
                if line.startswith(("Step ", "rasax-build:", "Building wheel for", "Successfully built")):
                    progress(f"{tag}: {line[:200]} ({time.monotonic() - started:.0f} s)")
                # The classic builder ends each step with "---> <image id>": the one before a
                # later FROM is the finished builder stage.
                step_image = re.fullmatch(r"---> ([0-9a-f]{12})", line)
                if step_image:
                    last_step_image = step_image.group(1)
                elif re.match(r"Step \d+/\d+ : FROM ", line) and last_step_image:
                    builders.append(last_step_image)
    image = docker_client.images.get(tag)
    progress(f"{tag}: built ({image.short_id}, {image.attrs['Size'] / 2**20:.0f} MiB, "
             f"{time.monotonic() - started:.0f} s)")
    if existing is not None and existing.id != image.id:
        images._remove_unused(docker_client, existing.id)
    return image.id, builders


def _remove_builder_stages(docker_client, builders: list[str]) -> None:
    """The builder stages of our builds, with their untagged layers: a compiler, the wheels and a
    second copy of the venv, about 4 GB, that the final image does not use. An unchanged image is
    never rebuilt (content hash), so they would only be kept as a cache for a changed one."""
    for builder in builders:
        images._remove_unused(docker_client, builder)


@contextlib.contextmanager
def _long_reads(docker_client):
    """A long read timeout for the build: installing TensorFlow prints nothing for minutes."""
    api = docker_client.api
    saved, api.timeout = api.timeout, 3600
    try:
        yield api
    finally:
        api.timeout = saved


def _context_parent(cache: Path) -> Path:
    """Next to the cache, so that the context's files are hard links, not copies."""
    cache.mkdir(parents=True, exist_ok=True)
    return cache.parent


def build_all(docker_client, progress: Progress, rasa_version: str = DEFAULT_RASA_VERSION,
              force: bool = False, cache: Path | str | None = None) -> dict[str, str]:
    """Both Rasa images of a Rasa version: {tag: image id}."""
    versions = image_versions(rasa_version)  # refuses an unknown RASA_VERSION before any build
    built, builders = {}, []
    for name, version in versions.items():
        # Both images share their builder's first layers (apt): removed once both are built.
        built[image_tag(name, version)], left = _build(docker_client, name, version, progress, force, cache)
        builders += left
    _remove_builder_stages(docker_client, builders)
    return built
