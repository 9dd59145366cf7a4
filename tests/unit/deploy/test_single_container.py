"""`--single-container`: db-migration, event-service and rasa-x rendered as one container that runs
services.all, with the union of their environments; remembered like --no-rasa; the default
rendering keeps its three containers."""

from __future__ import annotations

import pytest
import yaml

from deploy import compose, render
from deploy.install import initialize
from deploy.layout import Layout, parse_env
from deploy.schema import compose_errors
from deploy.stack import Target, render_choice
from services.all import __main__ as all_services
from services.common.config import SECRET_VARIABLES, SELF_PORT, SERVICE_ENVIRONMENT

SINGLE = render.RenderOptions(http_port="127.0.0.1:18080", single_container=True)
THREE = ("db-migration", "event-service", "rasa-x")


@pytest.mark.parametrize("rasa", [True, False])
def test_the_variant_follows_the_compose_specification(rasa):
    text = render.plan(SINGLE.merged(rasa_services=rasa))["docker-compose.yml"]
    assert compose_errors(text) == []
    services = yaml.safe_load(text)["services"]
    assert "db-migration" not in services and "event-service" not in services
    assert services["rasa-x"]["command"] == ["python", "-m", "services.all"]
    # It migrates itself, so it waits only for the servers; its health needs both of its services.
    assert services["rasa-x"]["depends_on"] == {name: {"condition": "service_healthy"} for name in ("db", "rabbit", "redis")}
    probe = " ".join(services["rasa-x"]["healthcheck"]["test"])
    assert "5002/api/health" in probe and "5673/health" in probe
    assert services["nginx"]["depends_on"]["rasa-x"] == {"condition": "service_healthy"}
    # Docker waits longer than services.all waits for its children before it kills them.
    grace = compose.duration_ns(services["rasa-x"]["stop_grace_period"]) / 10**9
    assert grace > all_services.STOP_SECONDS
    if rasa:
        assert set(services["rasa-production"]["depends_on"]) == {"rasa-x", "app"}


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    layout = Layout(tmp_path_factory.mktemp("install"))
    initialize(layout, "proj")
    render.apply(layout, SINGLE)
    return layout


def test_its_environment_is_the_union_of_the_three_services_with_the_installations_values(layout):
    stack = compose.make_plan(compose.load(layout), layout, "proj", set())
    environment = next(s.environment for s in stack.services if s.name == "rasa-x")
    union = {name for service in THREE for name in SERVICE_ENVIRONMENT[service]} - {SELF_PORT}
    assert set(environment) == union
    assert set(SECRET_VARIABLES) - set(environment) == {"JWT_SECRET"}  # the Rasa servers' alone
    env = parse_env(layout.env_file.read_text())
    assert environment == {name: env[name] for name in environment}
    assert {s.name for s in stack.services} == {"db", "rabbit", "redis", "rasa-x", "nginx", "rasa-production",
                                                "rasa-worker", "app"}


def test_the_choice_is_remembered_and_undone_like_no_rasa(layout):
    target = Target(layout)
    assert render.load_options(layout).single_container is True
    assert render_choice(target).single_container is True
    assert render_choice(target, single_container=False).single_container is False
    three = render.plan(render_choice(target, single_container=False))["docker-compose.yml"]
    assert set(THREE) <= set(yaml.safe_load(three)["services"])
    assert "services.all" not in render.plan(render.RenderOptions())["docker-compose.yml"]
