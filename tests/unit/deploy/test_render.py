"""`render`: the compose file validates against the Compose spec, the nginx config passes the
real `nginx -t`, and the compose file has the shape docs/design.md §2 asks for."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml
from deploy import render
from deploy.files import CREATED, UNCHANGED, UPDATED
from deploy.install import initialize
from deploy.layout import Layout
from deploy.schema import compose_errors, find_compose_schema
from tests.unit.deploy.certs import self_signed

PLAIN = render.RenderOptions(http_port="127.0.0.1:18080")
TLS = render.RenderOptions(http_port="80", https_port="8443", tls=True)
PROJECT_SERVICES = {"db-migration", "event-service", "rasa-x"}
OPTIONAL = {"rasa-production", "rasa-worker", "app", "duckling"}


@pytest.fixture(scope="module")
def schema():
    path = find_compose_schema()
    assert path is not None, "no Compose spec schema on this machine: apt-get install docker-compose"
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
    assert set(services) == {"db", "rabbit", "redis", "nginx"} | PROJECT_SERVICES | OPTIONAL
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
    assert deps["rasa-production"] == {"rasa-x": "service_healthy"}
    assert deps["nginx"] == {"rasa-x": "service_healthy"}
    assert "8000/health" in " ".join(services["db-migration"]["healthcheck"]["test"])
    assert {s["command"][-1] for n, s in services.items() if n in PROJECT_SERVICES} == {
        "services.db_migration", "services.event_service", "services.backend"}
    assert set(compose["volumes"]) == {"db-data", "rabbit-data", "redis-data"}
    # No secret is written into the compose file: they come from .env.
    assert "${DB_PASSWORD}" in render.plan(PLAIN)["docker-compose.yml"]


def _nginx_test(tmp_path, conf_text: str) -> subprocess.CompletedProcess:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    conf_d = tmp_path / "conf.d"
    conf_d.mkdir(exist_ok=True)
    (conf_d / "rasax.conf").write_text(conf_text)
    # The image's nginx.conf in miniature: the rendered file is included at http level, unchanged.
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{\n  access_log off;\n  include {conf_d}/*.conf;\n}}\n")
    return subprocess.run([nginx, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
                          capture_output=True, text=True)


def test_nginx_config_passes_the_real_nginx_t(tmp_path):
    conf = render.plan(PLAIN)[render.NGINX_CONF]
    result = _nginx_test(tmp_path, conf)
    assert result.returncode == 0, result.stderr
    for route in ("location /core/", "location /webhooks/", "location /socket.io", "location /api/ws",
                  "location = /robots.txt", "location = /nginx_status", "client_max_body_size 800M"):
        assert route in conf
    assert "rewrite ^/api/chat(.*)$ /webhooks/rasa/webhook$1 break;" in conf


def test_tls_config_passes_nginx_t_with_a_real_certificate_and_redirects(tmp_path):
    certs = tmp_path / "certs"
    self_signed(certs, render.CERT_NAME, render.KEY_NAME)
    conf = render.plan(TLS, cert_dir=str(certs))[render.NGINX_CONF]
    result = _nginx_test(tmp_path, conf)
    assert result.returncode == 0, result.stderr
    assert "listen 8443 ssl" in conf and "return 301 https://$host:8443$request_uri;" in conf
    assert "return 301 https://$host$request_uri;" in render.plan(TLS.merged(https_port="443"))[render.NGINX_CONF]


def test_nginx_t_rejects_a_broken_config(tmp_path):
    # The check above can fail: a config nginx refuses is reported as such.
    result = _nginx_test(tmp_path, render.plan(PLAIN)[render.NGINX_CONF].replace("stub_status;", "stub_status"))
    assert result.returncode != 0


def test_render_writes_only_changes_never_the_override_and_remembers_options(tmp_path):
    layout = Layout(tmp_path)
    initialize(layout)
    layout.override_file.write_text("services: {}\n")
    assert {o.action for o in render.apply(layout, PLAIN)} == {CREATED}
    assert {o.action for o in render.apply(layout, render.load_options(layout))} == {UNCHANGED}
    assert render.load_options(layout).http_port == "127.0.0.1:18080"
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
