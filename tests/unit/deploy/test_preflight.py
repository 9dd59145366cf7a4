"""What `up` checks before it changes anything (no Docker here: files, ports by bind, the plan)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from deploy import compose, render
from deploy.install import initialize
from deploy.layout import Layout, parse_env
from deploy.preflight import RefusedError, _bind_fails, check_env
from deploy.secrets import SECRET_NAMES, SecretsError
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def layout(tmp_path):
    layout = Layout(tmp_path / "rasa")
    initialize(layout, "proj")
    return layout


def set_env(layout: Layout, name: str, value: str) -> None:
    lines = [f"{name}={value}" if line.startswith(f"{name}=") else line
             for line in layout.env_file.read_text().splitlines()]
    layout.env_file.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("port", ["99999", "0", "65536", "-1", "http", "8.8.8:80", "localhost:80", ""])
def test_impossible_ports_are_refused_naming_the_option(port):
    with pytest.raises(ValueError, match="--http-port: a port must be PORT or IP:PORT"):
        render.plan(render.RenderOptions(http_port=port))
    with pytest.raises(ValueError, match="--https-port"):
        render.check_options(render.RenderOptions(https_port=port))


@pytest.mark.parametrize("port, parsed", [("80", ("", 80)), ("65535", ("", 65535)), ("127.0.0.1:8080", ("127.0.0.1", 8080))])
def test_possible_ports_pass(port, parsed):
    assert render.parse_published(port) == parsed
    render.check_options(render.RenderOptions(http_port=port))


def test_up_with_an_impossible_port_is_refused_before_the_folder_is_touched(tmp_path):
    folder = tmp_path / "rasa"
    result = subprocess.run([sys.executable, "-m", "cli", "up", "--dir", str(folder), "--http-port", "99999"],
                            capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode in (1, 2), result.stdout + result.stderr
    assert "99999" in result.stderr and "1-65535" in result.stderr
    assert "Traceback" not in result.stderr
    assert not folder.exists()  # nothing written, so nothing remembered


@pytest.mark.parametrize("value", ["123", "CHANGE_ME", "${DB_PASSWORD}"])
def test_env_and_credentials_disagreeing_is_refused_naming_both_and_the_fix(layout, value):
    set_env(layout, "DB_PASSWORD", value)
    with pytest.raises(RefusedError) as refused:
        check_env(layout)
    message = str(refused.value)
    assert str(layout.env_file) in message and "credentials/DB_PASSWORD" in message
    if value != "CHANGE_ME":  # a placeholder is named as one; the fix is the same
        assert "Copy the value of credentials/DB_PASSWORD onto the DB_PASSWORD line" in message
    assert parse_env(layout.env_file.read_text())["DB_PASSWORD"] == value  # nothing was "fixed" behind our back
    assert value not in message.replace("DB_PASSWORD", "")  # and no secret is printed


def test_agreeing_files_pass(layout):
    check_env(layout)


def test_a_lost_credentials_file_is_made_again_from_env_not_as_a_second_secret(layout):
    env = parse_env(layout.env_file.read_text())
    (layout.credentials / "DB_PASSWORD").unlink()
    outcomes = {o.path.name: o.action for o in initialize(layout, "proj")}
    assert outcomes["DB_PASSWORD"] == "restored from .env"
    assert (layout.credentials / "DB_PASSWORD").read_text() == env["DB_PASSWORD"]
    assert oct((layout.credentials / "DB_PASSWORD").stat().st_mode & 0o777) == "0o600"
    check_env(layout)


def test_a_lost_credentials_file_with_a_placeholder_in_env_is_refused(layout):
    set_env(layout, "REDIS_PASSWORD", "changeme")
    (layout.credentials / "REDIS_PASSWORD").unlink()
    with pytest.raises(SecretsError, match="REDIS_PASSWORD is missing and .env has no real value"):
        initialize(layout, "proj")
    assert not (layout.credentials / "REDIS_PASSWORD").exists()


def test_a_secret_new_to_env_is_generated_for_both(layout):
    """An upgrade that adds a secret: neither file has it, init writes one value into both."""
    set_env(layout, "PASSWORD_SALT", "x")
    text = "\n".join(l for l in layout.env_file.read_text().splitlines() if not l.startswith("PASSWORD_SALT="))
    layout.env_file.write_text(text + "\n")
    (layout.credentials / "PASSWORD_SALT").unlink()
    initialize(layout, "proj")
    assert parse_env(layout.env_file.read_text())["PASSWORD_SALT"] == (layout.credentials / "PASSWORD_SALT").read_text()
    check_env(layout)


def test_a_port_held_on_the_host_is_seen_by_the_bind_test():
    port = free_port()
    assert not _bind_fails("", port)
    with socket.socket() as holder:
        holder.bind(("0.0.0.0", port))
        holder.listen()
        assert _bind_fails("", port) and _bind_fails("127.0.0.1", port)


def plan_of(layout, profiles=()):
    render.apply(layout, render.RenderOptions(http_port="127.0.0.1:18080"))
    return compose.make_plan(compose.load(layout), layout, "proj", set(profiles))


def test_volumes_are_fingerprinted_with_the_secrets_their_data_is_set_up_with(layout):
    stack = plan_of(layout)
    assert stack.volume_secrets == {"proj_db-data": ["DB_PASSWORD"], "proj_rabbit-data": ["RABBITMQ_PASSWORD"],
                                    "proj_redis-data": ["REDIS_PASSWORD"]}
    env = parse_env(layout.env_file.read_text())
    assert all(env[name] not in fp for name in SECRET_NAMES for fp in stack.volume_fingerprints.values())
    for name in ("DB_PASSWORD", "RABBITMQ_PASSWORD", "REDIS_PASSWORD"):
        (layout.credentials / name).unlink()
    layout.env_file.unlink()
    initialize(layout, "proj")  # the folder made again: new secrets, same project
    again = plan_of(layout)
    assert all(again.volume_fingerprints[v] != stack.volume_fingerprints[v] for v in stack.volumes)
    assert plan_of(layout).volume_fingerprints == again.volume_fingerprints  # stable for the same secrets


def test_down_order_is_the_reverse_of_the_start_order_from_files_or_labels(layout):
    stack = plan_of(layout, {"rasa-production"})
    from_files = compose.stop_order(compose.file_dependencies(layout))
    from_labels = compose.stop_order({s.name: [d for d in s.labels[compose.DEPENDS_ON_LABEL].split(",") if d]
                                      for s in stack.services})
    for order in (from_files, [n for n in from_labels]):
        for first, then in [("nginx", "rasa-x"), ("rasa-production", "rasa-x"), ("rasa-x", "db-migration"),
                            ("event-service", "db-migration"), ("event-service", "rabbit"), ("rasa-x", "redis"),
                            ("db-migration", "db")]:
            assert order.index(first) < order.index(then), (first, then, order)
    # A dependency that is gone (or of another profile) does not stop the rest.
    assert compose.stop_order({"rasa-x": ["db", "redis"], "db": []}) == ["rasa-x", "db"]
    layout.compose_file.unlink()
    assert compose.file_dependencies(layout) is None


def test_a_failed_up_says_which_command_puts_the_remembered_settings_back(layout):
    from deploy import runtime, stack

    render.remember(layout, render.RenderOptions(http_port="80"))
    failure = runtime.DeployError("nginx could not start with the new settings", "nginx", "log line")
    changed = stack._with_way_back(failure, stack.Target(layout), render.RenderOptions(http_port="8099"))
    assert str(changed).startswith("nginx could not start with the new settings; the remembered settings are "
                                   "unchanged (HTTP port 80)")
    assert f"`rasax-deploy up --dir {layout.root}` puts them back" in str(changed)
    assert changed.service == "nginx" and changed.logs == "log line"
    same = stack._with_way_back(failure, stack.Target(layout), render.RenderOptions(http_port="80"))
    assert str(same) == "nginx could not start with the new settings"
