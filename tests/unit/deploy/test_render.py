"""`render`: the compose file validates against the Compose spec schema shipped with the package,
and has the shape docs/design.md §2 asks for; the nginx config has the routes of Rasa X.

The nginx config is checked with the real `nginx -t` of the stack's own nginx image in
tests/e2e/test_nginx_config.py (it needs Docker).
"""

from __future__ import annotations

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
OPTIONAL = {"duckling"}


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
        if name != "duckling":  # duckling's image has no shell nor HTTP client to probe with
            assert service["healthcheck"]["test"], name
        assert ("ports" in service) == (name == "nginx"), f"{name} must not be published on the host"
    for name in OPTIONAL:
        assert services[name]["profiles"] == [name]
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
    assert set(compose["services"]) == {"db", "rabbit", "redis", "nginx", "duckling"} | PROJECT_SERVICES
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
    changed = {o.path.name: o.action for o in render.apply(layout, PLAIN.merged(http_port="9090"))}
    assert changed == {"docker-compose.yml": UPDATED, "rasax.conf": UNCHANGED}
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
