"""From the rendered files to the containers `up` creates: merge, interpolation, order, hashes."""

from __future__ import annotations

import pytest

from deploy import compose, render
from deploy.install import initialize
from deploy.layout import Layout, parse_env


@pytest.fixture
def layout(tmp_path):
    layout = Layout(tmp_path)
    initialize(layout, "proj")
    render.apply(layout, render.RenderOptions(http_port="127.0.0.1:18080"))
    return layout


def plan(layout, profiles=()):
    return compose.make_plan(compose.load(layout), layout, "proj", set(profiles))


def test_plan_starts_services_in_the_order_of_the_contract(layout):
    order = [s.name for s in plan(layout).services]
    assert set(order) == {"db", "rabbit", "redis", "db-migration", "event-service", "rasa-x", "app",
                          "rasa-production", "rasa-worker", "nginx"}
    # db, rabbit, redis → db-migration → rasa-x, event-service → Rasa services, app → nginx.
    for before, after in [("db", "db-migration"), ("db-migration", "event-service"), ("rabbit", "event-service"),
                          ("db-migration", "rasa-x"), ("redis", "rasa-x"), ("rasa-x", "nginx"),
                          ("rasa-x", "rasa-production"), ("event-service", "rasa-production"),
                          ("app", "rasa-production"), ("app", "rasa-worker"), ("rasa-production", "nginx")]:
        assert order.index(before) < order.index(after)
    with_duckling = [s.name for s in plan(layout, {"duckling"}).services]
    assert set(with_duckling) - set(order) == {"duckling"}


def test_containers_get_env_secrets_mounts_ports_and_health_from_the_files(layout):
    env = parse_env(layout.env_file.read_text())
    stack = plan(layout)
    db, rasa_x, nginx = stack.service("db"), stack.service("rasa-x"), stack.service("nginx")
    assert db.environment == {"POSTGRES_USER": "admin", "POSTGRES_PASSWORD": env["DB_PASSWORD"], "POSTGRES_DB": "rasa"}
    assert db.mounts == [compose.Mount("proj_db-data", "/var/lib/postgresql/data", "volume")]
    assert db.healthcheck["interval"] == 3 * 10**9 and db.healthcheck["retries"] == 40
    assert "$POSTGRES_USER" in db.healthcheck["test"][1]  # $$ in the file is a literal $
    assert rasa_x.environment["RASA_X_PASSWORD"] == env["RASA_X_PASSWORD"]
    assert rasa_x.environment["SELF_PORT"] == "5002"
    assert rasa_x.command == ["python", "-m", "services.backend"]
    assert compose.Mount(str(layout.root / "auth"), "/app/auth", "bind", True) in rasa_x.mounts
    assert nginx.ports == [compose.Port(8080, 18080, "127.0.0.1")]
    assert all(not s.ports for s in stack.services if s.name != "nginx")
    assert {s.network for s in stack.services} == {"proj_rasax"}
    assert stack.volumes == ["proj_db-data", "proj_rabbit-data", "proj_redis-data"]
    assert db.labels["com.docker.compose.project"] == "proj"


def test_each_container_is_given_its_services_stop_grace(layout):
    """rasa-x gets longer than gunicorn lets its requests in flight finish (graceful_timeout, 30 s);
    the rest the default, which `up` and `down` also use for containers made without one."""
    stack = plan(layout)
    assert stack.service("rasa-x").stop_seconds == 35
    assert {s.name for s in stack.services if s.stop_seconds != compose.STOP_SECONDS} == {"rasa-x"}
    # A changed grace is a changed container: `up` replaces it.
    rasa_x = stack.service("rasa-x")
    longer = compose.ServicePlan(**{**rasa_x.__dict__, "stop_seconds": 60})
    assert longer.config_hash() != rasa_x.config_hash()


def test_override_merges_like_docker_compose_and_changes_only_that_service(layout):
    before = {s.name: s.config_hash() for s in plan(layout).services}
    layout.override_file.write_text(
        "services:\n"
        "  rabbit:\n    ports: ['127.0.0.1::5672']\n    environment:\n      RABBITMQ_DISK_FREE_LIMIT: 50MB\n"
        "  nginx:\n    ports: ['8443:8443']\n")
    stack = plan(layout)
    rabbit = stack.service("rabbit")
    assert rabbit.ports == [compose.Port(5672, None, "127.0.0.1")]
    assert rabbit.environment["RABBITMQ_DISK_FREE_LIMIT"] == "50MB"
    assert rabbit.environment["RABBITMQ_DEFAULT_USER"] == "user"  # the rest of the mapping stays
    assert [p.container for p in stack.service("nginx").ports] == [8080, 8443]  # lists are extended
    after = {s.name: s.config_hash() for s in stack.services}
    assert {n for n in before if before[n] != after[n]} == {"rabbit", "nginx"}


def test_interpolation_defaults_errors_and_dollar_escape():
    env = {"SET": "v", "EMPTY": ""}
    assert compose.interpolate("${SET}/$SET/${MISSING:-d}/${EMPTY:-d}/${EMPTY-d}/$$SET", env) == "v/v/d/d//$SET"
    with pytest.raises(compose.ComposeError, match="NEEDED: give it"):
        compose.interpolate("${NEEDED:?give it}", env)


def test_cycles_and_missing_dependencies_are_named():
    with pytest.raises(compose.ComposeError, match="cycle: a → b → a"):
        compose.start_order({"a": {"depends_on": {"b": {}}}, "b": {"depends_on": {"a": {}}}})
    with pytest.raises(compose.ComposeError, match="a depends on ghost"):
        compose.start_order({"a": {"depends_on": {"ghost": {}}}})


def test_bad_project_name_is_refused(layout):
    with pytest.raises(compose.ComposeError, match="project name"):
        compose.make_plan(compose.load(layout), layout, "Bad Name")
