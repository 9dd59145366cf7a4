"""The ordered, re-runnable steps behind `up`: init → render → images → start and wait.

Each step is safe to run alone and again; `up` runs them all, so one command installs, repairs
and upgrades.
"""

from __future__ import annotations

import fcntl
import hashlib
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from docker import errors as docker_errors

from . import compose, docker_engine, images, install, render, runtime
from . import preflight as checks
from .layout import Layout, parse_env
from .output import Output


from .preflight import RefusedError  # defined with the checks that raise it


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


def init(target: Target, out: Output) -> None:
    out.step(f"Ensuring the installation folder {target.layout.root}")
    for outcome in install.initialize(target.layout, target.project):
        out.outcome(outcome, target.layout.root)


def render_files(target: Target, out: Output, options: render.RenderOptions,
                 cert: str | None = None, key: str | None = None, remember: bool = True) -> None:
    if cert or key:
        if not (cert and key):
            raise RefusedError("--cert and --key go together: give both files")
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


def plan(target: Target, profiles: set[str]) -> compose.Plan:
    model = compose.load(target.layout)
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
    proposed_model = compose.load(target.layout, compose_text=render.plan(options)["docker-compose.yml"])
    proposed = compose.make_plan(proposed_model, target.layout, target.project, profiles)
    out.step("Ensuring a Docker engine")
    docker_engine.ensure_running(out.note)
    docker_client = images.client()
    preflight(target, docker_client, proposed)
    render_files(target, out, options, cert, key, remember=False)
    stack = plan(target, profiles)
    out.step("Obtaining images")
    images.ensure(docker_client, {s.image for s in stack.services}, out.note)
    out.step(f"Starting project {stack.project} ({len(stack.services)} services)")
    try:
        runtime.up(docker_client, stack, out.event, timeout)
    except (runtime.DeployError, docker_errors.APIError) as exc:
        raise _with_way_back(exc, target, options) from None
    # Remembered only now: a choice that did not work must not come back on the next plain `up`.
    render.remember(target.layout, options)
    render.save_state(target.layout, project=stack.project)
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
