"""`render`: docker-compose.yml and the nginx config from templates/, as a pure function.

`plan()` returns every file with its content and touches nothing, so `render --dry-run` and the
unit tests see exactly what would be written; `apply()` writes only what changed.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from services import __version__

from .environment import service_environment
from .files import Outcome, write_atomic, write_if_changed
from .images import STACK_IMAGES
from .layout import Layout, templates
from .schema import compose_errors, find_compose_schema

CERT_NAME, KEY_NAME = "rasax.crt", "rasax.key"
NGINX_CONF = "nginx-config/rasax.conf"
CERT_DIR = "/etc/nginx/certs"  # certs/ as the nginx container sees it (docker-compose.yml mounts it)
# Docker's embedded DNS server, present in every user-defined network.
DOCKER_DNS = "127.0.0.11"


@dataclass(frozen=True)
class RenderOptions:
    """What an operator chooses at render time; remembered in rasax-state.json for the next run."""

    http_port: str = "80"
    https_port: str = "443"
    tls: bool = False
    images: dict = field(default_factory=lambda: dict(STACK_IMAGES))

    def merged(self, **changes) -> "RenderOptions":
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


def _published(port: str) -> str:
    """`443` or `127.0.0.1:8443` as compose wants it; the host part of `ip:port` is kept."""
    port = str(port).strip()
    if not port.rsplit(":", 1)[-1].isdigit():
        raise ValueError(f"a port must be PORT or IP:PORT, got {port!r}")
    return port


def plan(options: RenderOptions, resolver: str = DOCKER_DNS, cert_dir: str = CERT_DIR) -> dict[str, str]:
    """Relative path → content of every file `render` owns.

    `cert_dir` is where the nginx container sees certs/; a test checking the config with the
    host's nginx points it at a folder of its own.
    """
    env = templates()
    https_port = _published(options.https_port)
    host_https = https_port.rsplit(":", 1)[-1]
    compose = env.get_template("compose/docker-compose.yml.j2").render(
        version=__version__,
        images=options.images,
        http_port=_published(options.http_port),
        https_port=https_port,
        tls=options.tls,
        environment=service_environment(),
    )
    nginx = env.get_template("nginx/rasax.conf.j2").render(
        version=__version__,
        tls=options.tls,
        resolver=resolver,
        cert_path=f"{cert_dir}/{CERT_NAME}",
        key_path=f"{cert_dir}/{KEY_NAME}",
        https_suffix="" if host_https == "443" else f":{host_https}",
    )
    return {"docker-compose.yml": compose, NGINX_CONF: nginx}


def load_options(layout: Layout) -> RenderOptions:
    if not layout.state_file.exists():
        return RenderOptions()
    saved = json.loads(layout.state_file.read_text()).get("render", {})
    known = {k: v for k, v in saved.items() if k in ("http_port", "https_port", "tls")}
    return RenderOptions(**known)


def save_state(layout: Layout, **updates) -> None:
    state = json.loads(layout.state_file.read_text()) if layout.state_file.exists() else {}
    state.update(updates)
    state["version"] = __version__
    write_atomic(layout.state_file, json.dumps(state, indent=2, sort_keys=True) + "\n", 0o644)


def install_certificate(layout: Layout, cert: Path, key: Path) -> list[Outcome]:
    """Copy the operator's certificate and key into certs/ (the key 0600), replacing older ones."""
    for source in (cert, key):
        if not source.is_file():
            raise FileNotFoundError(f"{source} is not a file")
    return [
        write_if_changed(layout.certs / CERT_NAME, cert.read_bytes(), 0o644),
        write_if_changed(layout.certs / KEY_NAME, key.read_bytes(), 0o600),
    ]


def apply(layout: Layout, options: RenderOptions) -> list[Outcome]:
    if options.tls and not (layout.certs / CERT_NAME).exists():
        raise FileNotFoundError(
            f"TLS is on but {layout.certs / CERT_NAME} is missing: run `rasax-deploy render --tls --cert FILE --key FILE`"
        )
    files = plan(options)
    schema_path = find_compose_schema()
    if schema_path is not None:
        errors = compose_errors(files["docker-compose.yml"], schema_path)
        if errors:  # a template bug: refuse before anything is written
            raise ValueError("the rendered compose file breaks the Compose specification:\n  " + "\n  ".join(errors))
    outcomes = [write_if_changed(layout.root / path, text) for path, text in files.items()]
    save_state(layout, render={k: v for k, v in asdict(options).items() if k != "images"})
    return outcomes
