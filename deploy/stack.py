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

from . import compose, docker_engine, images, install, render, runtime
from .layout import Layout, parse_env, read_env
from .output import Output


class RefusedError(RuntimeError):
    """An unsafe state: the message says what was expected, what was found and how to fix it."""


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
                 cert: str | None = None, key: str | None = None) -> None:
    if cert or key:
        if not (cert and key):
            raise RefusedError("--cert and --key go together: give both files")
        out.step("Installing the TLS certificate")
        for outcome in render.install_certificate(target.layout, Path(cert), Path(key)):
            out.outcome(outcome, target.layout.root)
    out.step("Rendering docker-compose.yml and the nginx config")
    for outcome in render.apply(target.layout, options):
        out.outcome(outcome, target.layout.root)
    if target.layout.override_file.exists():
        out.note(f"{target.layout.override_file.name}: yours, merged over docker-compose.yml, not touched")


def preflight(target: Target) -> None:
    """Read-only checks that run before anything starts."""
    env = read_env(target.layout)
    bad = install.unsafe_values(env)
    if bad:
        raise RefusedError(
            f"{target.layout.env_file}: {', '.join(bad)} missing or a placeholder (expected a generated secret). "
            f"Remove the line(s) and run `rasax-deploy init --dir {target.layout.root}` to generate them."
        )
    if env.get("COMPOSE_PROJECT_NAME") and target.project_option and env["COMPOSE_PROJECT_NAME"] != target.project_option:
        raise RefusedError(
            f"{target.layout.env_file} belongs to project {env['COMPOSE_PROJECT_NAME']!r}, not "
            f"{target.project_option!r}: drop --project-name or change COMPOSE_PROJECT_NAME there"
        )


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
    init(target, out)
    render_files(target, out, options, cert, key)
    preflight(target)
    stack = plan(target, profiles)
    out.step("Ensuring a Docker engine")
    docker_engine.ensure_running(out.note)
    docker_client = images.client()
    out.step("Obtaining images")
    images.ensure(docker_client, {s.image for s in stack.services}, out.note)
    out.step(f"Starting project {stack.project} ({len(stack.services)} services)")
    runtime.up(docker_client, stack, out.event, timeout)
    render.save_state(target.layout, project=stack.project, postgres_major=15)
    return stack


def url(target: Target) -> str:
    options = render.load_options(target.layout)
    port = (options.https_port if options.tls else options.http_port).rsplit(":", 1)
    host = port[0] if len(port) == 2 and port[0] not in ("", "0.0.0.0") else "localhost"
    scheme = "https" if options.tls else "http"
    default = "443" if options.tls else "80"
    return f"{scheme}://{host}" + ("" if port[-1] == default else f":{port[-1]}")
