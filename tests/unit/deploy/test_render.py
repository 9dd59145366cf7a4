"""`render`: the compose file validates against the Compose spec schema shipped with the package,
and has the shape docs/design.md §2 asks for; the nginx config has the routes of Rasa X.

The nginx config is checked with the real `nginx -t` of the stack's own nginx image in
tests/e2e/test_nginx_config.py (it needs Docker).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from deploy import render
from deploy.files import CREATED, UNCHANGED, UPDATED
from deploy.install import initialize
from deploy.layout import Layout
from deploy.schema import COMPOSE_SCHEMA, compose_errors, find_compose_schema

PLAIN = render.RenderOptions(http_port="127.0.0.1:18080")
TLS = render.RenderOptions(http_port="80", https_port="8443", tls=True)
PROJECT_SERVICES = {"db-migration", "event-service", "rasa-x"}
RASA_SERVICES = {"rasa-production", "rasa-worker", "app"}
METRICS = {"prometheus", "nginx-exporter", "grafana"}
OPTIONAL = {"duckling"} | METRICS


@pytest.fixture(scope="module")
def schema():
    # Shipped with the package: every machine has it, so render never skips the check.
    path = find_compose_schema()
    assert path == COMPOSE_SCHEMA and path.is_relative_to(Path(render.__file__).parent)
    return path


@pytest.mark.parametrize("options", [PLAIN, TLS], ids=["http", "tls"])
def test_compose_file_validates_against_the_compose_specification(schema, options):
    text = render.plan(options)["docker-compose.yml"]
    assert compose_errors(text, schema) == []


def test_schema_check_catches_a_broken_file(schema):
    broken = "services:\n  db:\n    image: x\n    restart: [always]\n    healthcheck: {interval: 3}\n"
    errors = compose_errors(broken, schema)
    assert any(e.startswith("services/db/restart") for e in errors), errors


def test_compose_file_has_the_services_and_gates_of_the_contract():
    compose = yaml.safe_load(render.plan(PLAIN)["docker-compose.yml"])
    services = compose["services"]
    assert set(services) == {"db", "rabbit", "redis", "nginx"} | PROJECT_SERVICES | RASA_SERVICES | OPTIONAL
    for name, service in services.items():
        assert service["restart"] == "unless-stopped", name
        assert service.get("networks") == ["rasax"], name
        if name not in ("duckling", "nginx-exporter"):  # images without a shell or HTTP client to probe with
            assert service["healthcheck"]["test"], name
        assert ("ports" in service) == (name in ("nginx", "grafana")), f"{name} must not be published on the host"
    for name in OPTIONAL:
        assert services[name]["profiles"] == (["metrics"] if name in METRICS else [name])
    assert services["grafana"]["ports"] == ["127.0.0.1:3000:3000"]  # the host's loopback only
    assert services["nginx"]["ports"] == ["127.0.0.1:18080:8080"]
    # Start order of docs/design.md §2, expressed as health conditions.
    deps = {n: {d: c["condition"] for d, c in (s.get("depends_on") or {}).items()} for n, s in services.items()}
    assert deps["db-migration"] == {"db": "service_healthy"}
    assert deps["event-service"] == {"db-migration": "service_healthy", "rabbit": "service_healthy"}
    assert deps["rasa-x"] == {"db-migration": "service_healthy", "redis": "service_healthy"}
    rasa_after = {"rasa-x": "service_healthy", "event-service": "service_healthy", "app": "service_healthy"}
    assert deps["rasa-production"] == deps["rasa-worker"] == rasa_after
    # nginx waits for Rasa's container, not its health: the UI is up while TensorFlow loads.
    assert deps["nginx"] == {"rasa-x": "service_healthy", "rasa-production": "service_started"}
    assert not any("rasa" in d and d != "rasa-x" for n in PROJECT_SERVICES for d in deps[n]), \
        "the Rasa services never block rasa-x from starting"
    # Built here, of RASA_VERSION (3.6.21 by default) and the rasa-sdk it pins.
    assert services["rasa-production"]["image"] == "rasax/rasa:3.6.21"
    assert services["app"]["image"] == "rasax/rasa-sdk:3.6.2"
    assert services["app"]["volumes"] == ["./actions:/app/actions:ro"]
    assert "8000/health" in " ".join(services["db-migration"]["healthcheck"]["test"])
    assert {s["command"][-1] for n, s in services.items() if n in PROJECT_SERVICES} == {
        "services.db_migration", "services.event_service", "services.backend"}
    assert set(compose["volumes"]) == {"db-data", "rabbit-data", "redis-data"}
    # No secret is written into the compose file: they come from .env.
    assert "${DB_PASSWORD}" in render.plan(PLAIN)["docker-compose.yml"]


def test_without_rasa_the_stack_has_no_rasa_service_and_nginx_needs_only_rasa_x():
    compose = yaml.safe_load(render.plan(PLAIN.merged(rasa_services=False))["docker-compose.yml"])
    assert set(compose["services"]) == {"db", "rabbit", "redis", "nginx"} | OPTIONAL | PROJECT_SERVICES
    assert compose["services"]["nginx"]["depends_on"] == {"rasa-x": {"condition": "service_healthy"}}


def test_a_rasa_version_without_pins_is_refused_naming_the_ones_there_are():
    with pytest.raises(ValueError, match=r"^RASA_VERSION 3\.7\.0 cannot be built.*versions that can: 3\.6\.21.*\.env"):
        render.plan(PLAIN.merged(rasa_version="3.7.0"))


def test_nginx_config_has_the_routes_of_rasa_x():
    conf = render.plan(PLAIN)[render.NGINX_CONF]
    for route in ("location /core/", "location /webhooks/", "location /socket.io", "location /api/ws",
                  "location = /robots.txt", "location = /nginx_status", "client_max_body_size 800M"):
        assert route in conf
    assert "rewrite ^/api/chat(.*)$ /webhooks/rasa/webhook$1 break;" in conf


def test_render_refuses_a_compose_file_that_breaks_the_specification(tmp_path, monkeypatch):
    layout = Layout(tmp_path)
    initialize(layout)
    good = render.plan(PLAIN)
    broken = dict(good, **{"docker-compose.yml": good["docker-compose.yml"].replace(
        "restart: unless-stopped", "restart: [unless-stopped]")})
    monkeypatch.setattr(render, "plan", lambda *args, **kwargs: broken)  # a template bug
    with pytest.raises(ValueError, match="breaks the Compose specification"):
        render.apply(layout, PLAIN)
    assert not layout.compose_file.exists()


def test_render_writes_only_changes_never_the_override_and_remembers_options(tmp_path):
    layout = Layout(tmp_path)
    initialize(layout)
    layout.override_file.write_text("services: {}\n")
    assert {o.action for o in render.apply(layout, PLAIN)} == {CREATED}
    assert {o.action for o in render.apply(layout, render.load_options(layout))} == {UNCHANGED}
    assert render.load_options(layout).http_port == "127.0.0.1:18080"
    # --no-rasa is remembered like the ports; RASA_VERSION is .env's alone.
    render.apply(layout, PLAIN.merged(rasa_services=False))
    assert render.load_options(layout).rasa_services is False
    assert "rasa_version" not in render.load_state(layout)["render"]
    layout.env_file.write_text(layout.env_file.read_text().replace("RASA_VERSION=3.6.21", "RASA_VERSION=3.6.0"))
    assert render.load_options(layout).rasa_version == "3.6.0"
    render.apply(layout, PLAIN)
    changed = {o.path.relative_to(layout.root).as_posix(): o.action
               for o in render.apply(layout, PLAIN.merged(http_port="9090"))}
    assert changed == {"docker-compose.yml": UPDATED, render.NGINX_CONF: UNCHANGED, render.PROMETHEUS_CONF: UNCHANGED,
                       **dict.fromkeys(render.METRICS_FILES, UNCHANGED)}
    assert layout.override_file.read_text() == "services: {}\n"


def test_tls_without_a_certificate_is_refused(tmp_path):
    layout = Layout(tmp_path)
    initialize(layout)
    with pytest.raises(FileNotFoundError, match="render --tls --cert FILE --key FILE"):
        render.apply(layout, TLS)
    assert not layout.compose_file.exists()


def test_bad_port_is_refused():
    with pytest.raises(ValueError, match="PORT or IP:PORT"):
        render.plan(render.RenderOptions(http_port="http://x"))


# ---- the metrics profile -----------------------------------------------------------------------
SINGLE = PLAIN.merged(single_container=True)


def _probed_port(service: dict) -> int:
    """The port a service's health check asks: the one it serves on."""
    return int(re.search(r"localhost:(\d+)/", " ".join(service["healthcheck"]["test"])).group(1))


@pytest.mark.parametrize("options", [PLAIN, SINGLE, PLAIN.merged(rasa_services=False)],
                         ids=["plain", "single-container", "no-rasa"])
def test_the_scrape_config_names_every_services_metrics_endpoint(schema, options):
    files = render.plan(options)
    assert compose_errors(files["docker-compose.yml"], schema) == []
    services = yaml.safe_load(files["docker-compose.yml"])["services"]
    scraped = {}
    for job in yaml.safe_load(files[render.PROMETHEUS_CONF])["scrape_configs"]:
        (target,) = job["dns_sd_configs"]
        assert job["metrics_path"] == "/metrics" and target["type"] == "A"
        (host,) = target["names"]
        assert host in services, job
        scraped[job["job_name"]] = (host, target["port"])
    assert scraped.pop("nginx") == ("nginx-exporter", 9113)
    assert "nginx:8081/stub_status" in " ".join(services["nginx-exporter"]["command"])
    if options.single_container:
        # services.all: the event service's health port beside rasa-x's; the migration runs in-process.
        assert scraped == {"rasa-x": ("rasa-x", 5002), "event-service": ("rasa-x", 5673)}
        assert "localhost:5673/health" in " ".join(services["rasa-x"]["healthcheck"]["test"])
    else:
        assert scraped == {name: (name, _probed_port(services[name])) for name in PROJECT_SERVICES}


@pytest.mark.parametrize("options", [PLAIN, TLS], ids=["http", "tls"])
def test_metrics_stay_inside_the_stack(options):
    conf = render.plan(options)[render.NGINX_CONF]
    servers = re.split(r"^server \{$", conf, flags=re.M)[1:]
    public, status = servers[:-1], servers[-1]
    # rasa-x's /metrics is refused on every published server that proxies (the TLS one's port 80
    # only redirects), and the stub status is on none of them.
    assert any("proxy_pass" in server for server in public)
    for server in public:
        if "proxy_pass" in server:
            assert re.search(r"location = /metrics \{\s*return 404;", server), server
        assert "/stub_status" not in server
    assert re.search(rf"listen {render.NGINX_STATUS_PORT};", status)
    assert re.search(r"location = /stub_status \{\s*stub_status;", status)
    published = yaml.safe_load(render.plan(options)["docker-compose.yml"])["services"]["nginx"]["ports"]
    assert all(not p.endswith(f":{render.NGINX_STATUS_PORT}") for p in published), published


def test_the_grafana_files_are_what_grafana_provisions():
    files = render.plan(PLAIN)
    services = yaml.safe_load(files["docker-compose.yml"])["services"]
    mounts = dict(volume.split(":")[:2] for volume in services["grafana"]["volumes"])
    datasource = yaml.safe_load(files["metrics/grafana/provisioning/datasources/prometheus.yml"])["datasources"][0]
    assert datasource["url"] == "http://prometheus:9090" and datasource["type"] == "prometheus"
    provider = yaml.safe_load(files["metrics/grafana/provisioning/dashboards/rasax.yml"])["providers"][0]
    assert mounts["./metrics/grafana/dashboards"] == provider["options"]["path"]
    assert mounts["./metrics/grafana/provisioning"] == "/etc/grafana/provisioning"
    dashboard = json.loads(files["metrics/grafana/dashboards/rasax.json"])
    targets = [t for panel in dashboard["panels"] for t in panel.get("targets", [])]
    assert targets and all(t["datasource"]["uid"] == datasource["uid"] for t in targets)
    # Grafana's own {{label}} legends survive: the file is copied, not rendered by Jinja.
    assert any("{{" in t["legendFormat"] for t in targets)


def test_every_dashboard_query_is_checked_against_a_real_scrape():
    """Each rasax_ series of the dashboard belongs to a service whose metrics test scrapes the
    real service and finds it there (tests/integration/*/test_metrics.py); nginx's are the
    exporter's names for the stub status fields (its registry image cannot be run here)."""
    from tests.integration.metrics_scrape import DASHBOARD_OWNERS, NGINX_EXPORTER_SERIES, dashboard_series

    series = dashboard_series()
    assert series
    unowned = {name for name in series if name.startswith("rasax_")
               and not any(name.startswith(prefix) for prefixes in DASHBOARD_OWNERS.values() for prefix in prefixes)}
    assert unowned == set()
    assert {name for name in series if not name.startswith("rasax_")} <= NGINX_EXPORTER_SERIES
