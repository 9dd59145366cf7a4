"""Least privilege: each container gets the variables its service reads, and no other secret.

What a project service reads is declared once in services/common/config.py (tests/unit/common
checks the declaration against its loaders); what Rasa reads is what its endpoints.yml and
credentials.yml name. Here: the containers `up` would create get exactly that.
"""

from __future__ import annotations

import re

import pytest
import yaml

from deploy import compose, render
from deploy.install import initialize
from deploy.layout import Layout, parse_env
from services.common.config import SECRET_VARIABLES, SERVICE_ENVIRONMENT

ALL_PROFILES = {"rasa-production", "rasa-worker", "app", "duckling"}
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
    # The backend serves Rasa its runtime config, hence the broker and cache passwords; it never
    # talks to Rasa with Rasa's own token or JWT secret.
    assert "RASA_TOKEN" not in held["rasa-x"] and "JWT_SECRET" not in held["rasa-x"]


@pytest.mark.parametrize("service", ["rasa-production", "rasa-worker"])
def test_a_rasa_server_gets_what_its_endpoints_and_credentials_name(layout, containers, service):
    named = set()
    for name in ("endpoints.yml", "credentials.yml"):
        # Comments aside: Rasa fills in the values only.
        for line in (layout.root / name).read_text().splitlines():
            named |= set(REFERENCE.findall(line.split("#", 1)[0]))
    assert set(containers[service]) == named | {"RASA_ENVIRONMENT", "MPLCONFIGDIR"}
    assert "RASA_X_PASSWORD" not in containers[service] and "PASSWORD_SALT" not in containers[service]


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
