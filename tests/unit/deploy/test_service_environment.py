"""Least privilege: each container gets the variables its service reads, and no other secret.

What each service reads is declared once in services/common/config.py (tests/unit/common checks
the declaration against the project's loaders); a Rasa server reads what its command line names,
the rest of its config comes from rasa-x's /api/config. Here: the containers `up` would create
get exactly that.
"""

from __future__ import annotations

import re

import pytest
import yaml

from deploy import compose, render
from deploy.install import initialize
from deploy.layout import Layout, parse_env
from deploy.environment import RASA_SERVICES as RASA_SERVERS
from services.common.config import RASA_SERVER, SECRET_VARIABLES, SERVICE_ENVIRONMENT

ALL_PROFILES = {"duckling"}
REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)")


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    layout = Layout(tmp_path_factory.mktemp("install"))
    initialize(layout, "proj")
    render.apply(layout, render.RenderOptions(http_port="127.0.0.1:18080"))
    return layout


@pytest.fixture(scope="module")
def containers(layout):
    stack = compose.make_plan(compose.load(layout), layout, "proj", ALL_PROFILES)
    return {service.name: service.environment for service in stack.services}


@pytest.fixture(scope="module")
def env(layout):
    return parse_env(layout.env_file.read_text())


def test_no_service_reads_the_whole_env_file(layout):
    services = yaml.safe_load(layout.compose_file.read_text())["services"]
    assert [name for name, spec in services.items() if "env_file" in spec] == []


@pytest.mark.parametrize("service", sorted(SERVICE_ENVIRONMENT))
def test_a_project_service_gets_what_its_config_reads(containers, env, service):
    environment = containers[service]
    assert set(environment) == set(SERVICE_ENVIRONMENT[service])
    # The values are .env's: the compose file names variables, .env holds what they are.
    assert {k: v for k, v in environment.items() if k != "SELF_PORT"} == {
        k: env[k] for k in environment if k != "SELF_PORT"}


def test_the_event_service_and_the_migrator_hold_no_secret_of_others(containers):
    held = {name: sorted(set(containers[name]) & set(SECRET_VARIABLES)) for name in containers}
    assert held["db-migration"] == ["DB_PASSWORD"]
    assert held["event-service"] == ["DB_PASSWORD", "RABBITMQ_PASSWORD"]
    # The backend serves Rasa its runtime config, hence the broker and cache passwords, and calls
    # Rasa's API with RASA_TOKEN; Rasa's JWT secret is Rasa's alone.
    assert "RASA_TOKEN" in held["rasa-x"] and "JWT_SECRET" not in held["rasa-x"]


@pytest.mark.parametrize("service", RASA_SERVERS)
def test_a_rasa_server_holds_only_what_its_command_line_names(layout, containers, service):
    stack = compose.make_plan(compose.load(layout), layout, "proj", ALL_PROFILES)
    command = stack.service(service).command
    # start.py fills in each ${NAME} of the command inside the process: the container holds the
    # values, the command line (ps, docker inspect) only the names.
    named = {name for argument in command for name in REFERENCE.findall(argument)}
    assert named == set(RASA_SERVER)
    # A token may begin with "-" (URL-safe base64): each is attached to its option with "=", or
    # argparse would take it for an option ("--jwt-secret: expected one argument").
    assert "--auth-token=${RASA_TOKEN}" in command and "--jwt-secret=${JWT_SECRET}" in command
    assert set(containers[service]) == named | {"RASA_ENVIRONMENT", "MPLCONFIGDIR"}
    assert sorted(set(containers[service]) & set(SECRET_VARIABLES)) == ["JWT_SECRET", "RASA_TOKEN", "RASA_X_TOKEN"]
    secrets = {parse_env(layout.env_file.read_text())[name] for name in SECRET_VARIABLES}
    assert not any(secret in argument for argument in command for secret in secrets)


def test_third_party_images_get_only_their_own_variables(containers, env):
    assert containers["db"] == {"POSTGRES_USER": env["DB_USER"], "POSTGRES_PASSWORD": env["DB_PASSWORD"],
                                "POSTGRES_DB": env["DB_DATABASE"]}
    assert set(containers["rabbit"]) == {"RABBITMQ_DEFAULT_USER", "RABBITMQ_DEFAULT_PASS",
                                         "RABBITMQ_DEFAULT_VHOST", "RABBITMQ_DISK_FREE_LIMIT"}
    assert containers["redis"] == {"REDIS_PASSWORD": env["REDIS_PASSWORD"]}
    for name in ("nginx", "app", "duckling"):
        assert containers[name] == {}, name


def test_every_variable_the_compose_file_names_is_in_a_fresh_env(layout, env):
    # An unset one would reach a container as an empty string (and docker-compose warns).
    named = set(REFERENCE.findall(layout.compose_file.read_text().replace("$$", "")))
    assert named - set(env) == set()
