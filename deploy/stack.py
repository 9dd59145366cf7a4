"""The ordered, re-runnable steps behind `up`: init → render → images → start and wait.

Each step is safe to run alone and again; `up` runs them all, so one command installs, repairs
and upgrades.
"""

from __future__ import annotations

import difflib
import fcntl
import hashlib
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from docker import errors as docker_errors

from services import __version__

from . import compose, docker_engine, images, install, rasa_images, rasa_servers, render, runtime
from . import preflight as checks
from .files import UPDATED, Outcome
from .layout import Layout, parse_env, read_env
from .output import Output


from .preflight import RefusedError  # defined with the checks that raise it


class InputError(RefusedError):
    """A name or folder given on the command line that does not exist (the CLI exits 2)."""


def unknown(what: str, given: list[str] | set[str], valid) -> InputError:
    """`unknown profile 'x' (did you mean 'y'?); valid: a, b` — the closest name first."""
    valid = sorted(valid)
    bad = sorted(given)
    hints = [match for name in bad for match in difflib.get_close_matches(name, valid, n=1, cutoff=0.5)]
    hint = f" (did you mean {', '.join(repr(h) for h in hints)}?)" if hints else ""
    return InputError(f"unknown {what} {', '.join(repr(b) for b in bad)}{hint}; valid: {', '.join(valid) or 'none'}")


@dataclass
class Target:
    layout: Layout
    project_option: str | None = None

    @classmethod
    def at(cls, directory: str, project: str | None = None) -> "Target":
        return cls(Layout(Path(directory).resolve()), project)

    @property
    def project(self) -> str:
        if self.project_option:
            return self.project_option
        if self.layout.env_file.exists():
            return parse_env(self.layout.env_file.read_text()).get("COMPOSE_PROJECT_NAME") or "rasa"
        return "rasa"

    def require_installation(self) -> "Target":
        """Commands that read an installation refuse a folder that is not one (no .env).

        An explicit --project-name still reaches that project's containers: after the folder
        was lost, `down -p NAME` must be able to clean up.
        """
        if not self.layout.env_file.is_file() and not self.project_option:
            where = self.layout.root
            reason = "does not exist" if not where.exists() else "has no .env"
            raise InputError(f"{where} is not a rasax-deploy installation ({reason}); give the folder "
                             f"`rasax-deploy up` installed to with --dir (or RASAX_DIR), or create one "
                             f"with `rasax-deploy up --dir {where}`")
        return self


def render_choice(target: Target, http_port: str | None = None, https_port: str | None = None,
                  tls: bool | None = None, cert: str | None = None, rasa: bool | None = None,
                  single_container: bool | None = None) -> render.RenderOptions:
    """The remembered render options with the command line's over them; a certificate given
    without --tls/--no-tls means TLS."""
    if cert and tls is None:
        tls = True
    return render.load_options(target.layout).merged(http_port=http_port, https_port=https_port, tls=tls,
                                                     rasa_services=rasa, single_container=single_container)


def init(target: Target, out: Output) -> None:
    checks.check_new_folder(target.layout, target.project)  # not beside an earlier installation's data
    out.step(f"Ensuring the installation folder {target.layout.root}")
    for outcome in install.initialize(target.layout, target.project):
        out.outcome(outcome, target.layout.root)


def check_certificate_pair(cert: str | None, key: str | None) -> None:
    if bool(cert) != bool(key):
        raise RefusedError("--cert and --key go together: give both files")


def render_files(target: Target, out: Output, options: render.RenderOptions,
                 cert: str | None = None, key: str | None = None, remember: bool = True) -> None:
    if cert or key:
        check_certificate_pair(cert, key)
        out.step("Installing the TLS certificate")
        for outcome in render.install_certificate(target.layout, Path(cert), Path(key)):
            out.outcome(outcome, target.layout.root)
    out.step("Rendering docker-compose.yml and the nginx config")
    for outcome in render.apply(target.layout, options, remember):
        out.outcome(outcome, target.layout.root)
    if target.layout.override_file.exists():
        out.note(f"{target.layout.override_file.name}: yours, merged over docker-compose.yml, not touched")


def preflight(target: Target, docker_client=None, stack: compose.Plan | None = None) -> None:
    """Read-only checks before anything changes: .env against credentials/, and with Docker the
    ports the plan publishes and data volumes left by an earlier installation."""
    checks.check_env(target.layout, target.project_option)
    if docker_client is not None and stack is not None:
        checks.check_volumes(docker_client, stack, target.layout)
        checks.check_ports(docker_client, stack)


def profile_names(model: dict) -> set[str]:
    """Every profile the compose files (ours and the override) declare."""
    return {p for spec in model.get("services", {}).values() for p in spec.get("profiles") or []}


def check_profiles(model: dict, profiles: set[str]) -> None:
    bad = set(profiles) - profile_names(model)
    if bad:
        raise unknown("profile" if len(bad) == 1 else "profiles", bad, profile_names(model))


def proposed_model(target: Target, options: render.RenderOptions) -> dict:
    """The compose model `up` would run: the files about to be rendered, the override, .env."""
    return compose.load(target.layout, compose_text=render.plan(options)["docker-compose.yml"])


def check_choices(target: Target, options: render.RenderOptions, profiles: set[str],
                  cert: str | None = None, key: str | None = None) -> None:
    """What the command line asked for, checked before `up` changes anything."""
    check_certificate_pair(cert, key)
    check_profiles(proposed_model(target, options), profiles)


def plan(target: Target, profiles: set[str]) -> compose.Plan:
    model = compose.load(target.layout)
    check_profiles(model, profiles)
    return compose.make_plan(model, target.layout, target.project, profiles)


def up(target: Target, out: Output, options: render.RenderOptions, profiles: set[str],
       timeout: float = 300, cert: str | None = None, key: str | None = None) -> compose.Plan:
    with _exclusive(target.layout.root):
        return _up(target, out, options, profiles, timeout, cert, key)


@contextmanager
def _exclusive(root: Path):
    """One `up` per installation at a time: two would race to create the same containers."""
    # Outside the folder: it may not exist yet, and init reports what it creates there.
    name = hashlib.sha256(str(root).encode()).hexdigest()[:16]
    with open(Path(tempfile.gettempdir()) / f"rasax-deploy-{name}.lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RefusedError(f"another rasax-deploy is working on {root}; wait for it to finish") from None
        yield


def _up(target, out, options, profiles, timeout, cert, key) -> compose.Plan:
    render.check_options(options)  # an impossible port is refused before the folder is touched
    init(target, out)
    preflight(target)
    # Planned from the files about to be rendered, so the checks see the ports and volumes the
    # stack would get before a file is rewritten or a container stopped.
    proposed = compose.make_plan(proposed_model(target, options), target.layout, target.project, profiles)
    docker_client = ensure_engine(out)
    preflight(target, docker_client, proposed)
    render_files(target, out, options, cert, key, remember=False)
    stack = plan(target, profiles)
    obtain_images(docker_client, stack, out)
    out.step(f"Starting project {stack.project} ({len(stack.services)} services)")
    try:
        runtime.up(docker_client, stack, out.event, timeout)
    except (runtime.DeployError, docker_errors.APIError) as exc:
        raise _with_way_back(exc, target, options) from None
    # Remembered only now: a choice that did not work must not come back on the next plain `up`.
    render.remember(target.layout, options)
    render.save_state(target.layout, project=stack.project, version=__version__)
    return stack


def _with_way_back(exc, target: Target, options: render.RenderOptions) -> runtime.DeployError:
    """The failure, plus the command that renders the remembered (working) settings again."""
    message = str(exc) if isinstance(exc, runtime.DeployError) else f"Docker engine: {exc.explanation or exc}"
    remembered = render.load_options(target.layout)
    if remembered != options:
        message += (f"; the remembered settings are unchanged (HTTP port {remembered.http_port}"
                    f"{f', HTTPS port {remembered.https_port}' if remembered.tls else ''}): "
                    f"`rasax-deploy up --dir {target.layout.root}` puts them back")
    return runtime.DeployError(message, getattr(exc, "service", None), getattr(exc, "logs", ""))


def url(target: Target) -> str:
    options = render.load_options(target.layout)
    port = (options.https_port if options.tls else options.http_port).rsplit(":", 1)
    host = port[0] if len(port) == 2 and port[0] not in ("", "0.0.0.0") else "localhost"
    scheme = "https" if options.tls else "http"
    default = "443" if options.tls else "80"
    return f"{scheme}://{host}" + ("" if port[-1] == default else f":{port[-1]}")


def ensure_engine(out: Output):
    """A Docker engine (installed and started when missing) and a client of it."""
    out.step("Ensuring a Docker engine")
    started = docker_engine.ensure_running(out.note)
    out.event("docker", "started" if started else "running", kind="engine", changed=started)
    return images.client()


def _image_ids(docker_client, tags) -> dict[str, str | None]:
    return {tag: getattr(images._image(docker_client, tag), "id", None) for tag in tags}


def obtain_images(docker_client, stack: compose.Plan, out: Output) -> None:
    """Build, keep or pull every image of the plan; an image counts as changed when its id did."""
    out.step("Obtaining images")
    tags = sorted({s.image for s in stack.services})
    _report_images(docker_client, tags, out, lambda: images.ensure(docker_client, set(tags), out.note))


def down(target: Target, out: Output, volumes: bool = False) -> None:
    out.step(f"Stopping project {target.project}")
    runtime.down(images.client(), target.project, out.event, volumes, compose.file_dependencies(target.layout))


# ---- reading a running installation ----------------------------------------------------------

def status(target: Target) -> list[dict]:
    """One row per container of the project: service, state, health, image, uptime, and for the
    Rasa servers the model they run."""
    docker_client = images.client()
    rows = runtime.status(docker_client, target.project)
    loaded = rasa_servers.models(docker_client, target.project)
    for row in rows:
        row["uptime"] = uptime_text(row["uptime_seconds"])
        row["model"] = loaded.get(row["service"])
    return rows


def healthy(rows: list[dict]) -> bool:
    """The exit rule of `status`: some container, and each one running and healthy (or unchecked)."""
    return bool(rows) and all(r["state"] == "running" and r["health"] in ("healthy", "-") for r in rows)


def uptime_text(seconds: int | None) -> str:
    """`-` (not running), `4m05s`, `3h07m`."""
    if seconds is None:
        return "-"
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s"


def service_names(target: Target) -> set[str]:
    """Every service of the installation's files, of every profile (the override's too)."""
    return set(compose.load(target.layout).get("services", {}))


def check_service(names: set[str], service: str) -> None:
    if service not in names:
        raise unknown("service", [service], names)


def logs(target: Target, service: str | None, follow: bool = False, tail: int | str = "all"):
    """(service, line) of one service or all; an unknown name is refused with the closest one."""
    if service is not None:
        check_service(service_names(target), service)
    docker_client = images.client()
    if service is not None:
        if not any(r["service"] == service for r in runtime.status(docker_client, target.project)):
            raise RefusedError(f"{service} has no container in project {target.project} (not started: "
                               f"`rasax-deploy up --dir {target.layout.root}`, with its --profile if it has one)")
    yield from runtime.logs(docker_client, target.project, service, follow, tail)


def admin_user(target: Target) -> str:
    return read_env(target.layout).get("RASA_X_USERNAME", "admin")


# ---- images without a registry ---------------------------------------------------------------

def _report_images(docker_client, tags: list[str], out: Output, work) -> None:
    """Run `work`, then one line per image: changed when its id did."""
    before = _image_ids(docker_client, tags)
    work()
    for tag, image_id in _image_ids(docker_client, tags).items():
        out.event(tag, "kept" if image_id == before[tag] else "built", kind="image", changed=image_id != before[tag])


def make_base_image(out: Output, force: bool = False) -> None:
    out.step("Making the Debian base image")
    docker_engine.ensure_running(out.note)
    docker_client = images.client()
    _report_images(docker_client, [images.BASE_IMAGE], out,
                   lambda: images.make_base(docker_client, out.note, force))


def image_tags(rasa_version: str = rasa_images.DEFAULT_RASA_VERSION) -> dict[str, str]:
    """Name → tag of every image the stack runs that is built here: the stack's and Rasa's."""
    return {**images.STACK_IMAGES, **rasa_images.image_tags(rasa_version)}


def _chosen(names: list[str] | None, rasa_version: str) -> dict[str, str]:
    known = image_tags(rasa_version)  # an unknown Rasa version is refused first
    bad = set(names or []) - set(known)
    if bad:
        raise unknown("image" if len(bad) == 1 else "images", bad, known)
    return {name: known[name] for name in names or known}


def build_images(out: Output, names: list[str] | None = None, force: bool = False,
                 rasa_version: str = rasa_images.DEFAULT_RASA_VERSION) -> None:
    chosen = _chosen(names, rasa_version)
    out.step("Building images")
    docker_engine.ensure_running(out.note)
    docker_client = images.client()
    ours = [name for name in chosen if name in images.STACK_IMAGES]
    rasa = {name: tag.partition(":")[2] for name, tag in chosen.items() if name not in images.STACK_IMAGES}

    def work():
        if ours:
            images.build_all(docker_client, out.note, ours, force)
        for name, version in rasa.items():
            rasa_images.build(docker_client, name, version, out.note, force)

    _report_images(docker_client, list(chosen.values()), out, work)


def save_images(out: Output, directory: Path, names: list[str] | None = None,
                rasa_version: str = rasa_images.DEFAULT_RASA_VERSION) -> None:
    tags = list(_chosen(names, rasa_version).values())
    out.step(f"Saving images to {directory}")
    for path in images.save(images.client(), directory, out.note, tags):
        out.outcome(Outcome(path, UPDATED))


def load_images(out: Output, paths: list[Path]) -> None:
    out.step("Loading images")
    docker_client = images.client()
    for tag in images.load(docker_client, paths, out.note):
        out.event(tag, "loaded", kind="image")
