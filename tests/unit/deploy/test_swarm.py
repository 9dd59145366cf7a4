"""`swarm render`: the stack file passes the Compose Specification the repository ships, and says
what the compose install says in swarm's words: secrets from credentials/ (never new ones, never
their values in the file), every service by DNS round robin, the stateful servers pinned with
their volumes, rolling updates start-first with rollback, the migrator once."""

from __future__ import annotations

import stat
import subprocess

import pytest
import yaml
from click.testing import CliRunner

from cli import main
from deploy import render, swarm
from deploy.layout import Layout
from deploy.secrets import PRIVATE_KEY, SECRET_NAMES, read_secrets
from services.common.config import ConfigError, SERVICE_ENVIRONMENT, database_settings
from tests.unit.deploy.certs import self_signed
from tests.unit.deploy.test_kubernetes import installation

PROJECT_SERVICES = ("db-migration", "event-service", "rasa-x")


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    return installation(tmp_path_factory.mktemp("swarm"))


def stack(layout: Layout, **options) -> dict:
    files = swarm.plan(layout, swarm.SwarmOptions(**options))
    assert swarm.stack_errors(files[swarm.STACK_FILE]) == []
    return yaml.safe_load(files[swarm.STACK_FILE])


def test_the_stack_file_passes_the_compose_schema_with_every_service(layout):
    services = stack(layout)["services"]
    assert set(services) == {"db", "rabbit", "redis", "db-migration", "event-service", "rasa-x", "rasa-production",
                             "rasa-worker", "app", "nginx"}
    assert stack(layout)["version"] == swarm.FORMAT


def test_no_rasa_leaves_the_rasa_servers_out(layout):
    services = stack(layout, rasa_services=False)["services"]
    assert not {"rasa-production", "rasa-worker", "app"} & set(services)


def test_every_service_is_reached_by_dns_round_robin_and_nginx_publishes_on_the_node(layout):
    services = stack(layout)["services"]
    assert {name: s["deploy"]["endpoint_mode"] for name, s in services.items()} == dict.fromkeys(services, "dnsrr")
    nginx = services["nginx"]
    assert nginx["deploy"]["mode"] == "global"
    assert nginx["ports"] == [{"target": 8080, "published": 80, "protocol": "tcp", "mode": "host"}]
    # Only nginx publishes anything.
    assert [name for name, s in services.items() if "ports" in s] == ["nginx"]


def test_stateful_servers_are_pinned_with_their_volumes_and_stop_first(layout):
    document = stack(layout)
    for name, volume in (("db", "db-data"), ("rabbit", "rabbit-data"), ("redis", "redis-data")):
        service = document["services"][name]
        assert service["deploy"]["placement"]["constraints"] == [f"node.labels.{swarm.DATA_LABEL} == true"]
        assert service["deploy"]["replicas"] == 1
        assert service["deploy"]["update_config"]["order"] == "stop-first"
        assert [v.split(":")[0] for v in service["volumes"]] == [volume]
        assert volume in document["volumes"]


def test_stateless_services_roll_start_first_and_roll_back_on_failure(layout):
    services = stack(layout)["services"]
    for name in ("event-service", "rasa-x", "rasa-production", "rasa-worker", "app"):
        update = services[name]["deploy"]["update_config"]
        assert (update["order"], update["failure_action"], update["parallelism"]) == ("start-first", "rollback", 1)
        assert "placement" not in services[name]["deploy"]
        # A failed health check is what makes a new task fail: each rolled service has one.
        assert services[name]["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL")
    assert services["nginx"]["deploy"]["update_config"]["failure_action"] == "rollback"


def test_rasa_x_keeps_its_stop_grace_from_the_compose_file(layout):
    services = stack(layout)["services"]
    assert services["rasa-x"]["stop_grace_period"] == "35s"
    assert "stop_grace_period" not in services["event-service"]


def test_replicas_are_set_per_service_and_nginx_is_refused(layout):
    services = stack(layout, replicas={"event-service": 3, "rasa-x": 2, "rasa-production": 2})["services"]
    assert [services[n]["deploy"]["replicas"] for n in ("event-service", "rasa-x", "rasa-production", "rasa-worker")] \
        == [3, 2, 2, 1]
    with pytest.raises(ValueError, match="nginx runs on every node"):
        swarm.SwarmOptions(replicas={"nginx": 2})
    with pytest.raises(ValueError, match="stack name"):
        swarm.SwarmOptions(stack="Bad Name")


def test_the_migrator_runs_once_and_the_others_do_not_depend_on_it(layout):
    services = stack(layout)["services"]
    migrator = services["db-migration"]
    assert migrator["command"] == ["rasax-deploy", "migrate", "--json"]
    assert migrator["deploy"]["restart_policy"]["condition"] == "on-failure"
    assert migrator["healthcheck"] == {"disable": True}
    # swarm ignores depends_on: the services wait for the schema themselves.
    assert not any("depends_on" in s for s in services.values())


def test_secrets_come_from_credentials_by_file_and_never_appear_in_the_stack(layout):
    values = read_secrets(layout.credentials)
    text = swarm.plan(layout, swarm.SwarmOptions())[swarm.STACK_FILE]
    for value in values.values():
        assert value not in text
    document = yaml.safe_load(text)
    for name in SECRET_NAMES:
        secret = document["secrets"][name]
        assert secret["file"] == str(layout.credentials / name)
        assert secret["name"].startswith(f"rasax_{name}_")
    assert document["secrets"][PRIVATE_KEY]["file"] == str(layout.auth / PRIVATE_KEY)
    # Rendering again reads the same files: the same secrets, nothing regenerated.
    assert yaml.safe_load(swarm.plan(layout, swarm.SwarmOptions())[swarm.STACK_FILE])["secrets"] == document["secrets"]
    assert read_secrets(layout.credentials) == values


def test_project_services_read_their_secrets_from_files_and_nothing_else(layout):
    services = stack(layout)["services"]
    for name in PROJECT_SERVICES:
        service = services[name]
        secret_vars = [v for v in SERVICE_ENVIRONMENT[name] if v in SECRET_NAMES]
        for variable in secret_vars:
            assert service["environment"][f"{variable}_FILE"] == f"/run/secrets/{variable}"
            assert variable not in service["environment"]
        mounted = {m["source"] for m in service["secrets"]} - {PRIVATE_KEY, "jwt_public_key.pem"}
        assert mounted == set(secret_vars)
        assert all((m["uid"], m["mode"]) == ("1001", 0o400) for m in service["secrets"])
    assert services["rasa-x"]["environment"]["JWT_PRIVATE_KEY_PATH"] == f"/run/secrets/{PRIVATE_KEY}"


def test_images_with_their_own_variables_get_them_exported_from_the_secret_files(layout):
    services = stack(layout)["services"]
    db = services["db"]
    # `$$` is `$` once `docker stack deploy` has read it.
    assert db["entrypoint"][:3] == ["sh", "-c", 'export POSTGRES_PASSWORD="$$(cat /run/secrets/DB_PASSWORD)"; exec "$$@"']
    assert db["entrypoint"][3:] == ["sh", "/usr/local/bin/entrypoint.sh"]  # the image's ENTRYPOINT
    assert "POSTGRES_PASSWORD" not in db["environment"]
    redis = services["redis"]
    assert redis["healthcheck"]["test"][1].startswith('export REDIS_PASSWORD="$$(cat /run/secrets/REDIS_PASSWORD)"; ')
    production = services["rasa-production"]
    assert production["entrypoint"][4:6] == ["python", "/opt/rasax/start.py"]
    assert "--auth-token=$${RASA_TOKEN}" in production["entrypoint"]


def test_the_prelude_runs_the_original_command_with_the_secret_exported(tmp_path):
    """The prelude as a shell runs it, with the secrets folder pointed at a temporary one."""
    (tmp_path / "DB_PASSWORD").write_text("s3cret")
    prelude = swarm.exports({"POSTGRES_PASSWORD": "DB_PASSWORD"}).replace(swarm.SECRETS_DIR, str(tmp_path))
    result = subprocess.run(["sh", "-c", prelude + 'exec "$@"', "sh", "sh", "-c", 'echo "[$POSTGRES_PASSWORD]" "$0"',
                             "arg0"], capture_output=True, text=True, check=True)
    assert result.stdout == "[s3cret] arg0\n"


def test_configs_are_named_by_content_and_tls_comes_as_config_and_secret(tmp_path):
    layout = installation(tmp_path, tls=True, rasa_services=False)
    cert, key = self_signed(tmp_path / "given", "tls.crt", "tls.key")
    render.install_certificate(layout, cert, key)
    document = stack(layout)
    nginx = document["services"]["nginx"]
    assert [p["target"] for p in nginx["ports"]] == [8080, 8443]
    assert {c["target"] for c in nginx["configs"]} == {"/etc/nginx/conf.d/rasax.conf", "/etc/nginx/certs/rasax.crt"}
    assert nginx["secrets"][0]["target"] == "/etc/nginx/certs/rasax.key"
    assert document["secrets"]["tls_key"]["file"] == str(layout.certs / render.KEY_NAME)
    first = document["configs"]["nginx_conf"]["name"]
    render.remember(layout, render.RenderOptions(tls=True, rasa_services=False, https_port="8443"))
    assert stack(layout)["configs"]["nginx_conf"]["name"] != first  # a changed config is a new config


def test_secret_file_convention_of_the_services(tmp_path):
    (tmp_path / "pw").write_text("from-file\n")
    env = {"DB_PASSWORD_FILE": str(tmp_path / "pw")}
    assert database_settings(env).password == "from-file"
    assert database_settings({**env, "DB_PASSWORD": "direct"}).password == "direct"
    with pytest.raises(ConfigError, match="DB_PASSWORD_FILE: cannot read"):
        database_settings({"DB_PASSWORD_FILE": str(tmp_path / "missing")})
    # Only secrets: a non-secret variable is never read from a file.
    with pytest.raises(ConfigError, match="DB_PASSWORD: is not set"):
        database_settings({"DB_USER_FILE": str(tmp_path / "pw")})


def test_cli_render_writes_the_stack_privately(tmp_path):
    layout = installation(tmp_path / "inst")
    result = CliRunner().invoke(main, ["swarm", "render", "--dir", str(layout.root), "--replicas", "event-service=2",
                                       "--no-rasa"])
    assert result.exit_code == 0, result.output
    written = layout.root / "swarm" / swarm.STACK_FILE
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    document = yaml.safe_load(written.read_text())
    assert document["services"]["event-service"]["deploy"]["replicas"] == 2
    assert document["configs"]["nginx_conf"]["file"] == str(layout.root / "swarm" / swarm.NGINX_FILE)
    compose_conf = render.plan(render.load_options(layout).merged(rasa_services=False))[render.NGINX_CONF]
    # The compose config, with a short connect timeout: a stopped task's address fails over at once.
    swarm_conf = (layout.root / "swarm" / swarm.NGINX_FILE).read_text()
    assert swarm_conf.replace(swarm.NGINX_SWARM, "") == compose_conf
    assert swarm_conf.index("proxy_connect_timeout 2s;") > swarm_conf.index("resolver_timeout")
    bad = CliRunner().invoke(main, ["swarm", "render", "--dir", str(layout.root), "--replicas", "nginx=2"])
    assert bad.exit_code != 0 and "nginx runs on every node" in bad.output
