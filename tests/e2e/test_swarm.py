"""The stack on a real two-node Docker Swarm (tests/e2e/swarm_nodes.py: two more dockerd, each in
a network namespace of its own, joined into one swarm), deployed by `rasax-deploy swarm deploy`
with the images carried by `images save` / `images load`:

- the services spread over both nodes, the stateful servers on the labelled one, the secrets
  read from files (never in a service's environment);
- real Rasa events published to the broker are read back through nginx on the other node;
- the event service scaled to three replicas, and one node's event-service tasks killed while
  events stream in: every event stored once, the derived tables as if nothing had happened;
- a rolling update of rasa-x under a polling loop through nginx: no failed request;
- an update whose health check fails is rolled back by swarm itself.
"""

from __future__ import annotations

import threading
import time

import pytest
import requests

from tests.e2e.swarm_nodes import STACK, Swarm, SwarmStack
from tests.integration.event_service.harness import (
    assert_matches_oracle, count_events, fixture_messages, publish, replicated_stream, wait_until)

# Setup carries ~2 GB of images into two engines: minutes on a loaded 2-core machine.
pytestmark = [pytest.mark.docker, pytest.mark.timeout(2400)]


@pytest.fixture(scope="module")
def stack(docker_client, tmp_path_factory, request):
    swarm = Swarm(2)
    deployed = SwarmStack(swarm, tmp_path_factory.mktemp("swarm") / "install", tmp_path_factory.mktemp("images"))
    try:
        swarm.start()
        deployed.deploy("--replicas", "rasa-x=2")
        deployed.publish_servers()
        yield deployed
    finally:
        if request.session.testsfailed:
            try:
                deployed.dump_logs()
            except Exception as exc:  # the logs are a help, the clean-up below is a must
                print(f"no logs: {exc}")
        swarm.remove()


@pytest.fixture(scope="module")
def engine(stack):
    engine = stack.engine()
    yield engine
    engine.dispose()


def test_services_spread_over_both_nodes_with_the_stateful_ones_on_the_data_node(stack):
    manager_id = stack.manager.client().info()["Swarm"]["NodeID"]
    for name in ("db", "rabbit", "redis"):
        assert stack.tasks_by_node(name) == {manager_id: 1}
    nodes = {node.client().info()["Swarm"]["NodeID"] for node in stack.swarm.nodes}
    assert set(stack.tasks_by_node("nginx")) == nodes  # global: one per node
    assert sum(stack.tasks_by_node("rasa-x").values()) == 2
    # Migrated once, then done.
    states = [t["Status"]["State"] for t in stack.service("db-migration").tasks()]
    assert "complete" in states
    # No secret in any service's spec: the services read them from /run/secrets.
    secrets = [stack.secret(name) for name in ("DB_PASSWORD", "RABBITMQ_PASSWORD", "REDIS_PASSWORD", "RASA_X_PASSWORD")]
    for service in stack.manager.client().services.list():
        spec = str(service.attrs["Spec"])
        assert not [s for s in secrets if s in spec], service.name


def test_events_published_to_the_broker_are_read_through_nginx_on_the_other_node(stack, engine):
    messages = fixture_messages()
    publish(stack.env(), messages)
    senders = {m.event["sender_id"] for m in messages}
    worker = stack.swarm.nodes[1]
    token = stack.login(worker)

    def listed():
        response = requests.get(stack.url(worker, "/api/conversations"), params={"limit": 100},
                                headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert response.status_code == 200, response.text
        body = response.json()
        items = body if isinstance(body, list) else body.get("conversations", body.get("items", []))
        return {item["sender_id"] for item in items} >= senders

    wait_until(listed, 120, "the fixture conversations listed through nginx")
    assert_matches_oracle(engine, messages)


def test_killing_a_nodes_event_service_tasks_mid_stream_loses_and_duplicates_nothing(stack, engine):
    stack.scale("event-service", 3)
    worker = stack.swarm.nodes[1]
    worker_id = worker.client().info()["Swarm"]["NodeID"]
    on_worker = stack.tasks_by_node("event-service").get(worker_id, 0)
    assert on_worker >= 1, stack.tasks_by_node("event-service")

    stream = replicated_stream(150, prefix="swarm")
    messages = fixture_messages() + stream
    publisher = threading.Thread(target=publish, args=(stack.env(), stream))
    publisher.start()
    # Mid-stream: some events stored, most not yet.
    wait_until(lambda: count_events(engine) > len(fixture_messages()) + 500, 120, "events of the stream stored")
    killed = 0
    for container in worker.client().containers.list(
            filters={"label": f"com.docker.swarm.service.name={STACK}_event-service"}):
        container.kill()
        killed += 1
    assert killed == on_worker
    stored_at_kill = count_events(engine)
    publisher.join(300)
    assert not publisher.is_alive()
    assert stored_at_kill < len(messages), "the stream was over before the kill: nothing was tested"

    expected = len({m.body for m in messages})
    wait_until(lambda: count_events(engine) >= expected, 300, f"{expected} events stored")
    time.sleep(3)  # anything still arriving would be a duplicate
    assert_matches_oracle(engine, messages)
    # Swarm replaced the killed tasks.
    wait_until(lambda: sum(stack.tasks_by_node("event-service").values()) == 3, 120, "3 event-service tasks again")


class Poller(threading.Thread):
    """GET /api/health through nginx on every node, as fast as it answers, until stopped. A
    request fails on an error or a status other than 200; on this loaded 2-core machine a slow
    answer is not a failure, so the timeout is generous (the slowest is kept)."""

    def __init__(self, stack: SwarmStack):
        super().__init__(daemon=True)
        self.stack = stack
        self.stop = threading.Event()
        self.answers: list[int] = []
        self.failures: list[str] = []
        self.slowest = 0.0

    def run(self):
        session = requests.Session()
        while not self.stop.is_set():
            for node in self.stack.swarm.nodes:
                started = time.monotonic()
                try:
                    status = session.get(self.stack.url(node, "/api/health"), timeout=60).status_code
                except requests.RequestException as exc:
                    self.failures.append(f"{node.name}: {exc}")
                    continue
                finally:
                    self.slowest = max(self.slowest, time.monotonic() - started)
                self.answers.append(status)
                if status != 200:
                    self.failures.append(f"{node.name}: HTTP {status}")
            time.sleep(0.05)


def update_state(stack: SwarmStack, name: str) -> str | None:
    return (stack.service(name).attrs.get("UpdateStatus") or {}).get("State")


def test_a_rolling_update_of_rasa_x_fails_no_request(stack):
    before = {t["ID"] for t in stack.service("rasa-x").tasks(filters={"desired-state": "running"})}
    poller = Poller(stack)
    poller.start()
    try:
        stack.manager.docker("service", "update", "--detach=true", "--env-add", "ROLLED=1", f"{STACK}_rasa-x")
        # Done once the last new task has been watched for the update's `monitor` time.
        wait_until(lambda: update_state(stack, "rasa-x") not in (None, "updating"), 600, "the rolling update")
    finally:
        poller.stop.set()
        poller.join(30)
    assert update_state(stack, "rasa-x") == "completed"
    after = {t["ID"] for t in stack.service("rasa-x").tasks(filters={"desired-state": "running"})}
    assert len(after) == 2 and not before & after  # every task replaced
    print(f"rolling update: {len(poller.answers)} requests, slowest {poller.slowest:.1f} s")
    assert len(poller.answers) > 100
    assert poller.failures == []


def test_an_update_whose_health_check_fails_is_rolled_back(stack):
    service = stack.service("rasa-x")
    healthy_spec = service.attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Healthcheck"]
    stack.manager.docker("service", "update", "--detach=true", "--health-cmd", "exit 1", "--health-interval", "2s",
                         "--health-retries", "1", "--health-start-period", "0s", f"{STACK}_rasa-x")
    poller = Poller(stack)
    poller.start()
    try:
        wait_until(lambda: update_state(stack, "rasa-x") == "rollback_completed", 300, "swarm's rollback")
    finally:
        poller.stop.set()
        poller.join(30)
    assert stack.service("rasa-x").attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Healthcheck"] == healthy_spec
    wait_until(lambda: sum(stack.tasks_by_node("rasa-x").values()) == 2, 120, "2 healthy rasa-x tasks")
    # The old tasks served all along: start-first never stopped one for a task that failed.
    assert poller.failures == []
