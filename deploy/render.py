"""`render`: docker-compose.yml, the nginx config and the metrics profile's Prometheus and
Grafana files from templates/, as a pure function.

`plan()` returns every file with its content and touches nothing, so `render --dry-run` and the
unit tests see exactly what would be written; `apply()` writes only what changed.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from services import __version__
from services.common.logging import CREDENTIAL_WORDS

from .environment import service_environment, single_container_environment
from .files import Outcome, write_atomic, write_if_changed
from .images import STACK_IMAGES, ImageError
from .layout import TEMPLATES_DIR, Layout, read_env, templates
from .rasa_images import DEFAULT_RASA_VERSION, image_tags
from .schema import compose_errors, find_compose_schema

CERT_NAME, KEY_NAME = "rasax.crt", "rasax.key"
NGINX_CONF = "nginx-config/rasax.conf"
CERT_DIR = "/etc/nginx/certs"  # certs/ as the nginx container sees it (docker-compose.yml mounts it)
# Docker's embedded DNS server, present in every user-defined network.
DOCKER_DNS = "127.0.0.11"
PROMETHEUS_CONF = "metrics/prometheus.yml"
# Files of the `metrics` compose profile copied as they are (Grafana's own {{ }} in the
# dashboard is no Jinja): rendered path → template.
METRICS_FILES = {
    "metrics/grafana/provisioning/datasources/prometheus.yml": "metrics/grafana-datasource.yml",
    "metrics/grafana/provisioning/dashboards/rasax.yml": "metrics/grafana-dashboards.yml",
    "metrics/grafana/dashboards/rasax.json": "metrics/rasax-dashboard.json",
}
# Stub status for the metrics profile's nginx exporter: nginx serves it on a port of its own,
# which is never published.
NGINX_STATUS_PORT = 8081


@dataclass(frozen=True)
class RenderOptions:
    """What an operator chooses at render time; remembered in rasax-state.json for the next run."""

    http_port: str = "80"
    https_port: str = "443"
    tls: bool = False
    # rasa-production, rasa-worker and app in the stack; off when the team's Rasa runs elsewhere.
    rasa_services: bool = True
    # db-migration, event-service and rasa-x as one container (services/all), for small VMs.
    single_container: bool = False
    # RASA_VERSION of .env (not remembered here: .env is its one place).
    rasa_version: str = DEFAULT_RASA_VERSION
    images: dict = field(default_factory=lambda: dict(STACK_IMAGES))

    def merged(self, **changes) -> "RenderOptions":
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


def parse_published(port: str) -> tuple[str, int]:
    """`443` → ("", 443), `127.0.0.1:8443` → ("127.0.0.1", 8443); anything else is refused.

    Checked before anything is written or stopped: Docker would only find out when it starts
    nginx, after the running one is gone.
    """
    text = str(port).strip()
    host, _, number = text.rpartition(":")
    if not number.isdigit() or not 1 <= int(number) <= 65535:
        raise ValueError(f"a port must be PORT or IP:PORT with PORT in 1-65535, got {text!r}")
    if host:
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise ValueError(f"a port must be PORT or IP:PORT with an IPv4 address, got {text!r}") from None
    return host, int(number)


def _published(port: str) -> str:
    """`443` or `127.0.0.1:8443` as compose wants it; the host part of `ip:port` is kept."""
    parse_published(port)
    return str(port).strip()


def check_options(options: "RenderOptions") -> None:
    """Refuse impossible ports and a Rasa version that cannot be built up front (ValueError
    naming the option)."""
    for name, value in (("--http-port", options.http_port), ("--https-port", options.https_port)):
        try:
            parse_published(value)
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None
    _images(options)


def _images(options: "RenderOptions") -> dict[str, str]:
    """Image name → tag of every service: the stack's, and the Rasa images of RASA_VERSION."""
    try:
        rasa = image_tags(options.rasa_version)
    except ImageError as exc:
        raise ValueError(f"{exc} (RASA_VERSION in .env)") from None
    return {**options.images, **rasa}


def scrape_jobs(single_container: bool) -> list[dict]:
    """What Prometheus scrapes: each service's metrics endpoint on its compose name and port."""
    migrator = [] if single_container else [("db-migration", "db-migration", 8000, "/metrics")]
    event_service = "rasa-x" if single_container else "event-service"
    jobs = [("rasa-x", "rasa-x", 5002, "/metrics"), ("event-service", event_service, 5673, "/metrics"), *migrator,
            ("nginx", "nginx-exporter", 9113, "/metrics")]
    return [dict(zip(("name", "host", "port", "path"), job)) for job in jobs]


# What rasax-state.json keeps of RenderOptions.
REMEMBERED = ("http_port", "https_port", "tls", "rasa_services", "single_container")


def plan(options: RenderOptions, resolver: str = DOCKER_DNS, cert_dir: str = CERT_DIR) -> dict[str, str]:
    """Relative path → content of every file `render` owns.

    `cert_dir` is where the nginx container sees certs/; a test checking the config with the
    host's nginx points it at a folder of its own.
    """
    check_options(options)
    env = templates()
    https_port = _published(options.https_port)
    host_https = https_port.rsplit(":", 1)[-1]
    compose = env.get_template("compose/docker-compose.yml.j2").render(
        version=__version__,
        images=_images(options),
        rasa_services=options.rasa_services,
        single_container=options.single_container,
        single_environment=single_container_environment(),
        http_port=_published(options.http_port),
        https_port=https_port,
        tls=options.tls,
        environment=service_environment(),
        nginx_status_port=NGINX_STATUS_PORT,
    )
    nginx = env.get_template("nginx/rasax.conf.j2").render(
        version=__version__,
        tls=options.tls,
        resolver=resolver,
        credential_words="|".join(CREDENTIAL_WORDS),
        cert_path=f"{cert_dir}/{CERT_NAME}",
        key_path=f"{cert_dir}/{KEY_NAME}",
        https_suffix="" if host_https == "443" else f":{host_https}",
        status_port=NGINX_STATUS_PORT,
    )
    prometheus = env.get_template("metrics/prometheus.yml.j2").render(
        version=__version__, jobs=scrape_jobs(options.single_container)
    )
    metrics = {path: (TEMPLATES_DIR / template).read_text() for path, template in METRICS_FILES.items()}
    return {"docker-compose.yml": compose, NGINX_CONF: nginx, PROMETHEUS_CONF: prometheus, **metrics}


def load_options(layout: Layout) -> RenderOptions:
    """The remembered choice, with RASA_VERSION from .env."""
    saved = load_state(layout).get("render", {})
    known = {k: v for k, v in saved.items() if k in REMEMBERED}
    rasa_version = read_env(layout).get("RASA_VERSION") if layout.env_file.exists() else None
    return RenderOptions(**known, rasa_version=rasa_version or DEFAULT_RASA_VERSION)


def load_state(layout: Layout) -> dict:
    """rasax-state.json: the remembered render choice, and `project` once an `up` has worked."""
    return json.loads(layout.state_file.read_text()) if layout.state_file.exists() else {}


def save_state(layout: Layout, **updates) -> None:
    """Merge `updates` into rasax-state.json. Its `version`, the installed one, is written only by
    a successful `up` (stack.py): a plain `render` of a newer rasax-deploy installs nothing."""
    state = load_state(layout)
    state.update(updates)
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


def remember(layout: Layout, options: RenderOptions) -> None:
    """Keep the operator's choice for the next run: `up` calls this only once the stack works."""
    save_state(layout, render={k: v for k, v in asdict(options).items() if k in REMEMBERED})


def apply(layout: Layout, options: RenderOptions, remember_options: bool = True) -> list[Outcome]:
    """Write the files; `remember_options=False` (for `up`) leaves the remembered choice alone."""
    if options.tls and not (layout.certs / CERT_NAME).exists():
        raise FileNotFoundError(
            f"TLS is on but {layout.certs / CERT_NAME} is missing: run `rasax-deploy render --tls --cert FILE --key FILE`"
        )
    files = plan(options)
    errors = compose_errors(files["docker-compose.yml"], find_compose_schema())
    if errors:  # a template bug: refuse before anything is written
        raise ValueError("the rendered compose file breaks the Compose specification:\n  " + "\n  ".join(errors))
    outcomes = [write_if_changed(layout.root / path, text) for path, text in files.items()]
    if remember_options:
        remember(layout, options)
    return outcomes
