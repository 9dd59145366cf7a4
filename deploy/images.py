"""Images without a registry: a Debian base made locally, every stack image built FROM it.

Each built image carries a label with the hash of what went into it (base image id, Dockerfile,
files, for the project image its source); a build whose hash is already present is skipped, so
CI and every `up` after the first pay only for what changed.
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable, Iterator

from services import __version__

from . import SOURCE_ROOT, docker_engine, ui_build

SUITE = "bookworm"


def base_image(suite: str) -> str:
    """The local Debian base image of a suite (made by make_base)."""
    return f"rasax/debian:{suite}"


BASE_IMAGE = base_image(SUITE)
HASH_LABEL = "org.rasax.content-hash"
IMAGES_DIR = Path(__file__).resolve().parent / "images"
# The interpreter of the project image: Debian bookworm's python3 and the glibc tags it accepts.
TARGET_PYTHON = "3.11.2"
TARGET_PLATFORMS = ("manylinux_2_36", "manylinux_2_34", "manylinux_2_28", "manylinux_2_17", "manylinux2014", "linux")
STACK_IMAGES = {
    "project": f"rasax/rasa-x:{__version__}",
    "postgres": "rasax/postgres:15",
    "rabbitmq": "rasax/rabbitmq:3.10",
    "redis": "rasax/redis:7.0",
    "nginx": "rasax/nginx:1.22",
}
# The PostgreSQL majors the db image builds for (its tag names the major), each from the Debian
# suite that ships it: the stack runs STACK_IMAGES' one; an older one is what an installation made
# before a PostgreSQL upgrade runs, from which `upgrade`'s dump-and-restore step is tested.
POSTGRES_SUITES = {15: "bookworm", 13: "bullseye"}
# What goes into the project wheel: a change here is a change of the project image (whose
# Dockerfile is deploy/images/project/, hashed like every image's folder).
_PROJECT_SOURCES = ("cli.py", "setup.cfg", "pyproject.toml", "services", "deploy", "frontend")
# Package data under deploy/ that only the host reads (the Ansible role, the other images'
# Dockerfiles, the templates and the Compose schema `render` uses, the dockerd starter): it is in
# the wheel, but nothing in the project image reads it, so an edit there must not rebuild
# rasax/rasa-x.
_NOT_READ_IN_PROJECT_IMAGE = ("deploy/ansible/", "deploy/images/", "deploy/templates/", "deploy/compose-spec/",
                              "deploy/start-dockerd.sh")

Progress = Callable[[str], None]


class ImageError(RuntimeError):
    pass


# ---- planning (pure) -------------------------------------------------------------------------

def host_apt_sources(paths: list[str] | None = None) -> list[str]:
    """The host's Debian mirrors as one-line `deb URI SUITE COMPONENTS` entries, so that builds
    use the mirror this machine is known to reach (one-line .list and deb822 .sources files)."""
    if paths is None:
        paths = ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*.list")) + sorted(
            glob.glob("/etc/apt/sources.list.d/*.sources")
        )
    entries: list[str] = []
    for path in paths:
        try:
            text = Path(path).read_text()
        except OSError:
            continue
        if path.endswith(".sources"):
            for stanza in re.split(r"\n\s*\n", text):
                fields = dict(
                    (k.strip().lower(), v.strip())
                    for k, _, v in (line.partition(":") for line in stanza.splitlines() if not line.startswith("#"))
                    if v
                )
                if "deb" not in fields.get("types", "").split() or fields.get("enabled", "yes") == "no":
                    continue
                for uri in fields.get("uris", "").split():
                    for suite in fields.get("suites", "").split():
                        entries.append(f"deb {uri} {suite} {fields.get('components', 'main')}")
        else:
            for line in text.splitlines():
                line = re.sub(r"\[[^]]*\]\s*", "", line.split("#", 1)[0]).strip()
                if line.startswith("deb "):
                    entries.append(line)
    # Only Debian's own archive for our suite: third-party repositories do not belong in images.
    return [e for e in entries if e.split()[2].startswith(SUITE)]


def _hash_files(digest, root: Path, names: tuple[str, ...] | list[str], skip: tuple[str, ...] = ()) -> None:
    for name in names:
        path = root / name
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for file in files:
            if "__pycache__" in file.parts or file.suffix == ".pyc":
                continue
            if skip and file.relative_to(root).as_posix().startswith(skip):
                continue
            digest.update(str(file.relative_to(root)).encode() + b"\0" + file.read_bytes() + b"\0")


def content_hash(name: str, base_id: str, buildargs: dict[str, str] | None = None) -> str:
    digest = hashlib.sha256(base_id.encode())
    if buildargs:
        digest.update(repr(sorted(buildargs.items())).encode())
    _hash_files(digest, IMAGES_DIR / name, ["."])
    if name == "project":
        # The built web UI is hashed through its sources in frontend/ (deploy/ui_build.py).
        _hash_files(digest, SOURCE_ROOT, _PROJECT_SOURCES, skip=_NOT_READ_IN_PROJECT_IMAGE + ui_build.DERIVED)
    return digest.hexdigest()[:16]


def from_source_tree() -> bool:
    """Whether this package runs from a checkout (pip install -e), which the project image is built
    from; an install from a wheel has the package but not the source to make a wheel of."""
    return all((SOURCE_ROOT / name).is_file() for name in ("setup.cfg", "pyproject.toml", "cli.py"))


def can_build(name: str) -> bool:
    if name == "project" and not from_source_tree():
        return False
    return (IMAGES_DIR / name / "Dockerfile").is_file()


def _refuse_project_without_source() -> None:
    others = " ".join(n for n in STACK_IMAGES if n != "project")
    raise ImageError(
        f"{STACK_IMAGES['project']} is built from a source checkout of rasax-deploy (it packs a wheel of the "
        f"source), and this rasax-deploy is installed from a wheel ({SOURCE_ROOT} has no setup.cfg). Either run "
        f"`pip install -e .` in a checkout and build it there, or on a machine with the image run "
        f"`rasax-deploy images save DIR`, copy DIR here and run `rasax-deploy images load DIR`. "
        f"The other images build from here: `rasax-deploy images build {others}`"
    )


# ---- execution (Docker SDK) ------------------------------------------------------------------

def client():
    return docker_engine.connect()


def _image(docker_client, tag: str):
    import docker

    try:
        return docker_client.images.get(tag)
    except docker.errors.ImageNotFound:
        return None


def make_base(docker_client, progress: Progress, force: bool = False, suite: str = SUITE,
              image: str = BASE_IMAGE) -> str:
    """`mmdebstrap --variant=minbase` (or debootstrap) piped into `docker import`.

    Another suite (bullseye, for the Rasa images' Python 3.9) uses the host's mirrors with the
    suite renamed: bookworm-security becomes bullseye-security on the same mirror."""
    existing = _image(docker_client, image)
    if existing is not None and not force:
        progress(f"{image}: exists, kept")
        return existing.id
    sources = [re.sub(rf"^(deb \S+ ){SUITE}", rf"\g<1>{suite}", entry) for entry in host_apt_sources()] or [
        f"deb http://deb.debian.org/debian {suite} main"]
    with tempfile.TemporaryDirectory(prefix="rasax-base-") as tmp:
        tarball = Path(tmp) / "rootfs.tar"
        if shutil.which("mmdebstrap"):
            command = ["mmdebstrap", "--variant=minbase", "--quiet", suite, str(tarball), *sources]
        elif shutil.which("debootstrap"):
            raise ImageError("only debootstrap is installed; `apt-get install mmdebstrap` (it makes a tarball as a normal user)")
        else:
            raise ImageError("making the base image needs mmdebstrap: `apt-get install mmdebstrap`")
        progress(f"{image}: debootstrapping Debian {suite} from {sources[0].split()[1]} (about 30 s)")
        _run(command, "mmdebstrap")
        with tarball.open("rb") as data:
            docker_client.api.import_image_from_data(data, repository=image.split(":")[0], tag=image.split(":")[1])
    created = docker_client.images.get(image)
    progress(f"{image}: created ({created.short_id})")
    return created.id


def _project_context(context: Path, progress: Progress) -> None:
    """Dockerfile + wheels/ of the project and all its dependencies, made on this host.

    Dependencies are resolved for the image's interpreter (Debian's python3), not the host's:
    markers such as `python_full_version < "3.11.3"` must come out as they will inside.
    """
    shutil.copy(IMAGES_DIR / "project" / "Dockerfile", context / "Dockerfile")
    try:
        ui_build.build(progress)  # into services/backend/ui/dist, package data of the wheel below
    except ui_build.UiBuildError as exc:
        raise ImageError(str(exc)) from None
    # setuptools copies package data into build/lib and never prunes it: drop an earlier UI build
    # there so that the wheel holds only the assets index.html names.
    shutil.rmtree(SOURCE_ROOT / "build" / "lib" / "services" / "backend" / "ui", ignore_errors=True)
    wheels = context / "wheels"
    progress("project: building wheels of the project and its dependencies")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    _run(pip + ["wheel", "--no-deps", "--wheel-dir", str(wheels), str(SOURCE_ROOT)], "pip wheel")
    platforms = [f"--platform={tag}_x86_64" for tag in TARGET_PLATFORMS]
    download = pip + ["download", "--only-binary=:all:", f"--python-version={TARGET_PYTHON}",
                      "--implementation=cp", "--abi=cp311", *platforms, "--dest", str(wheels)]
    _run(download + [str(w) for w in wheels.glob("*.whl")], "pip download")
    # pip judges python_full_version markers by the host interpreter: add what the target lacks.
    for _ in range(5):
        missing = missing_requirements(wheels)
        if not missing:
            return
        _run(download + missing, "pip download")
    raise ImageError(f"cannot complete the wheels for Python {TARGET_PYTHON}: still missing {missing}")


def missing_requirements(wheels: Path) -> list[str]:
    """Requirements of the wheels in `wheels`, evaluated for the image's Python, that no wheel there meets."""
    import zipfile

    try:
        from packaging.markers import default_environment
        from packaging.requirements import Requirement
        from packaging.utils import canonicalize_name
    except ImportError:  # pip always carries a copy
        from pip._vendor.packaging.markers import default_environment
        from pip._vendor.packaging.requirements import Requirement
        from pip._vendor.packaging.utils import canonicalize_name
    environment = dict(default_environment(), python_full_version=TARGET_PYTHON,
                       python_version=TARGET_PYTHON.rsplit(".", 1)[0], platform_machine="x86_64",
                       sys_platform="linux", platform_system="Linux")
    present, requirements = set(), []
    for wheel in wheels.glob("*.whl"):
        present.add(canonicalize_name(wheel.name.split("-")[0]))
        with zipfile.ZipFile(wheel) as archive:
            metadata = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
            for line in archive.read(metadata).decode().splitlines():
                if line.startswith("Requires-Dist:"):
                    requirements.append(Requirement(line.split(":", 1)[1].strip()))
    missing = set()
    for requirement in requirements:
        # Extras: only those the project itself asks for (pyjwt[crypto]) are in the set already.
        if requirement.marker is not None and not requirement.marker.evaluate(dict(environment, extra="")):
            continue
        if canonicalize_name(requirement.name) not in present:
            missing.add(str(requirement).split(";")[0].strip())
    return sorted(missing)


def _run(command: list[str], what: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise ImageError(f"{what} failed: {result.stderr.strip()[-2000:]}")


def build(docker_client, name: str, progress: Progress, force: bool = False, carried: bool = False) -> str:
    """Build one stack image unless an image with the same content hash is already there.

    carried: keep an image whose base is missing (`up` on a machine the images were loaded onto).
    """
    if name == "project" and not from_source_tree():
        _refuse_project_without_source()
    tag = STACK_IMAGES[name]
    loaded = carried_in(docker_client, tag, BASE_IMAGE, force, progress) if carried else None
    if loaded is not None:
        return loaded.id
    base = _image(docker_client, BASE_IMAGE)
    base_id = make_base(docker_client, progress) if base is None else base.id
    buildargs = {"PG_MAJOR": tag.rsplit(":", 1)[1]} if name == "postgres" else {}
    return _build(docker_client, name, tag, BASE_IMAGE, base_id, buildargs, progress, force)


def build_postgres(docker_client, major: int, progress: Progress, force: bool = False) -> str:
    """rasax/postgres:<major>, FROM the base of the Debian suite that ships that major."""
    if major not in POSTGRES_SUITES:
        raise ImageError(f"PostgreSQL {major} is not built here: only {', '.join(map(str, POSTGRES_SUITES))}")
    base = base_image(POSTGRES_SUITES[major])
    base_id = make_base(docker_client, progress, suite=POSTGRES_SUITES[major], image=base)
    tag = f"{STACK_IMAGES['postgres'].rsplit(':', 1)[0]}:{major}"
    return _build(docker_client, "postgres", tag, base, base_id, {"PG_MAJOR": str(major)}, progress, force)


def _build(docker_client, name: str, tag: str, base: str, base_id: str, buildargs: dict[str, str],
           progress: Progress, force: bool) -> str:
    wanted = content_hash(name, base_id, buildargs)
    existing = _image(docker_client, tag)
    if existing is not None and existing.labels.get(HASH_LABEL) == wanted and not force:
        progress(f"{tag}: up to date ({wanted}), kept")
        return existing.id
    progress(f"{tag}: building ({'changed' if existing else 'new'}, content {wanted})")
    with tempfile.TemporaryDirectory(prefix=f"rasax-{name}-") as tmp:
        context = Path(tmp)
        if name == "project":
            _project_context(context, progress)
        else:
            shutil.copytree(IMAGES_DIR / name, context, dirs_exist_ok=True)
        for line in _stream(docker_client.api.build(
            path=str(context), tag=tag, buildargs={"BASE_IMAGE": base, **buildargs},
            labels={HASH_LABEL: wanted, "org.rasax.version": __version__},
            rm=True, forcerm=True, decode=True,
        )):
            if line.startswith("Step "):
                progress(f"{tag}: {line}")
    image = docker_client.images.get(tag)
    progress(f"{tag}: built ({image.short_id})")
    if existing is not None and existing.id != image.id:
        _remove_unused(docker_client, existing.id)
    return image.id


def carried_in(docker_client, tag: str, base_tag: str, force: bool, progress: Progress):
    """The image `tag` when it is here but its base is not: it came by `images load` to a machine
    without network, where making the base (mmdebstrap) cannot work. Nothing to compare its content
    hash against, so `up` keeps it as it is; None when the base is here (compare) or the image is
    not. Only `up` asks: `images build` makes the base and compares, or a source change would never
    be built on a machine whose base was deleted."""
    existing = _image(docker_client, tag)
    if existing is None or force or _image(docker_client, base_tag) is not None:
        return None
    progress(f"{tag}: kept as loaded ({base_tag}, its base, is not on this machine to rebuild it from)")
    return existing


def _remove_unused(docker_client, image_id: str) -> None:
    """The image a rebuild replaced: gone unless a container still runs it (then `up` replaces that)."""
    import docker

    try:
        docker_client.images.remove(image_id)
    except docker.errors.APIError:
        pass


def _stream(chunks) -> Iterator[str]:
    tail: list[str] = []
    for chunk in chunks:
        if "error" in chunk:
            raise ImageError(f"{chunk['error'].strip()}\n" + "".join(tail[-15:]))
        text = chunk.get("stream", "")
        if text:
            tail.append(text)
            yield text.strip()


def build_all(docker_client, progress: Progress, names: list[str] | None = None, force: bool = False) -> None:
    names = names or list(STACK_IMAGES)
    if "project" in names and not from_source_tree():
        _refuse_project_without_source()  # before any build: say it at once, not after minutes
    for name in names:
        build(docker_client, name, progress, force)


def ensure(docker_client, wanted: set[str], progress: Progress) -> None:
    """Every image the services need: build ours (cached), use what is present, else pull."""
    import docker

    from . import rasa_images  # it builds on this module

    ours = {tag: name for name, tag in STACK_IMAGES.items()}
    for tag in sorted(wanted):
        if tag in ours and can_build(ours[tag]):
            build(docker_client, ours[tag], progress, carried=True)
            continue
        rasa = rasa_images.buildable(tag)
        if rasa is not None:
            rasa_images.build(docker_client, *rasa, progress, carried=True)
            continue
        if _image(docker_client, tag) is not None:
            progress(f"{tag}: present")
            continue
        progress(f"{tag}: pulling")
        try:
            docker_client.images.pull(tag)
        except docker.errors.APIError as exc:
            raise ImageError(
                f"{tag} is not on this machine and cannot be pulled ({exc.explanation or exc}); "
                f"on a machine with the image: `rasax-deploy images save DIR`, copy DIR here, "
                f"then `rasax-deploy images load DIR`"
            ) from None


def save(docker_client, directory: Path, progress: Progress, tags: list[str] | None = None) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for tag in tags or list(STACK_IMAGES.values()):
        image = _image(docker_client, tag)
        if image is None:
            raise ImageError(f"{tag} is not on this machine: `rasax-deploy images build` first")
        path = directory / (re.sub(r"[^A-Za-z0-9.-]+", "_", tag) + ".tar")
        tmp = path.with_suffix(".tar.part")
        with tmp.open("wb") as out:
            # By name, not by id: the archive must carry this tag (Image.save would pick tags[0]).
            for chunk in docker_client.api.get_image(tag):
                out.write(chunk)
        os.replace(tmp, path)
        progress(f"{tag}: saved to {path} ({path.stat().st_size // 2**20} MiB)")
        written.append(path)
    return written


def load(docker_client, paths: list[Path], progress: Progress) -> list[str]:
    files: list[Path] = []
    for path in paths:
        files += sorted(path.glob("*.tar")) if path.is_dir() else [path]
    if not files:
        raise ImageError("no image archives (*.tar) found in " + ", ".join(map(str, paths)))
    loaded = []
    for file in files:
        with file.open("rb") as data:
            for image in docker_client.images.load(data):
                loaded += image.tags
                progress(f"{', '.join(image.tags) or image.short_id}: loaded from {file}")
    return loaded
