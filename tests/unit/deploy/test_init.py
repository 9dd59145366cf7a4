"""`init`: absent → created; a second run keeps every byte; a hand edit survives; upgrades append."""

from __future__ import annotations

import os
import stat

import pytest
from cryptography.hazmat.primitives import serialization

from deploy.files import CREATED, KEPT, UPDATED
from deploy.install import initialize, unsafe_values
from deploy.layout import Layout, parse_env
from deploy.secrets import SECRET_NAMES
from deploy.stack import RefusedError, Target, preflight


def snapshot(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_init_creates_everything_with_modes_and_second_run_is_byte_identical(tmp_path):
    layout = Layout(tmp_path / "rasa")
    first = initialize(layout, "myproject")
    assert {o.action for o in first} == {CREATED}
    env = parse_env(layout.env_file.read_text())
    for name in SECRET_NAMES:
        secret_file = layout.credentials / name
        assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
        assert env[name] == secret_file.read_text() and len(env[name]) >= 40
    assert len({env[name] for name in SECRET_NAMES}) == len(SECRET_NAMES)  # no shared secret
    assert env["COMPOSE_PROJECT_NAME"] == "myproject"
    assert stat.S_IMODE(layout.env_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(layout.credentials.stat().st_mode) == 0o700
    assert stat.S_IMODE((layout.auth / "jwt_private_key.pem").stat().st_mode) == 0o600
    if os.geteuid() == 0:  # the services run as uid 1001 and must read the key and write models
        assert (layout.auth / "jwt_private_key.pem").stat().st_uid == 1001
        assert (layout.root / "models").stat().st_uid == 1001
    private = serialization.load_pem_private_key((layout.auth / "jwt_private_key.pem").read_bytes(), None)
    public = serialization.load_pem_public_key((layout.auth / "jwt_public_key.pem").read_bytes())
    assert private.public_key().public_numbers() == public.public_numbers()
    assert unsafe_values(env) == []

    before = snapshot(layout.root)
    second = initialize(layout, "myproject")
    assert {o.action for o in second} == {KEPT}
    assert snapshot(layout.root) == before


def test_hand_edits_survive_and_missing_variables_are_appended(tmp_path):
    layout = Layout(tmp_path)
    initialize(layout)
    edited = layout.env_file.read_text().replace("DB_USER=admin", "DB_USER=operator")
    edited = "\n".join(line for line in edited.splitlines() if not line.startswith("REDIS_DB="))
    layout.env_file.write_text(edited + "\n")
    (layout.actions / "actions.py").write_text("# mine\n")

    outcomes = {o.path.name: o.action for o in initialize(layout)}
    assert outcomes[".env"] == UPDATED and outcomes["actions.py"] == KEPT
    env = parse_env(layout.env_file.read_text())
    assert env["DB_USER"] == "operator" and env["REDIS_DB"] == "2"
    assert layout.env_file.read_text().startswith(edited)
    assert (layout.actions / "actions.py").read_text() == "# mine\n"


def test_a_lost_secret_file_is_made_anew_but_env_keeps_its_value(tmp_path):
    layout = Layout(tmp_path)
    initialize(layout)
    old = parse_env(layout.env_file.read_text())["DB_PASSWORD"]
    (layout.credentials / "DB_PASSWORD").unlink()
    initialize(layout)
    assert parse_env(layout.env_file.read_text())["DB_PASSWORD"] == old


@pytest.mark.parametrize("value", ["", "secret", "changeme"])
def test_up_refuses_placeholder_secrets(tmp_path, value):
    layout = Layout(tmp_path)
    initialize(layout)
    text = layout.env_file.read_text()
    current = parse_env(text)["RABBITMQ_PASSWORD"]
    layout.env_file.write_text(text.replace(f"RABBITMQ_PASSWORD={current}", f"RABBITMQ_PASSWORD={value}"))
    with pytest.raises(RefusedError, match="RABBITMQ_PASSWORD missing or a placeholder"):
        preflight(Target(layout))


def test_parse_env_reads_what_compose_reads():
    text = "# c\nA=1\nexport B='two words'\nC=\"x=y\"\n  # D=4\nnot a line\nE=\n"
    assert parse_env(text) == {"A": "1", "B": "two words", "C": "x=y", "E": ""}
