"""One-container mode, smoke tier: `rasax-deploy up --single-container --no-rasa` from an empty
folder; the fixture events published to the stack's RabbitMQ come back through nginx; the
container is supervised (a dead event service takes it down with a non-zero status and Docker
restarts it) and stops cleanly on SIGTERM (exit 0). Own project, folder and port; all removed."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from tests.conftest import free_port, wait_until
from tests.e2e.deployment import Stack, cli, publish_fixtures

pytestmark = [pytest.mark.docker, pytest.mark.timeout(900)]

# Kills the event service process inside the container (as its own uid, like a crash would).
KILL_EVENT_SERVICE = (
    "import os, signal\n"
    "for pid in filter(str.isdigit, os.listdir('/proc')):\n"
    "    if b'services.event_service' in open(f'/proc/{pid}/cmdline', 'rb').read():\n"
    "        os.kill(int(pid), signal.SIGKILL)\n"
)


@pytest.fixture(scope="module")
def stack(docker_client, tmp_path_factory):
    directory = tmp_path_factory.mktemp("single") / "rasa"
    stack = Stack(docker_client, directory, f"rxsingle{uuid.uuid4().hex[:8]}", free_port())
    # RabbitMQ on a loopback port for the test to publish to: the installation's own override file.
    directory.mkdir()
    (directory / "docker-compose.override.yml").write_text("services:\n  rabbit:\n    ports:\n      - \"127.0.0.1::5672\"\n")
    yield stack
    stack.dump_logs()
    stack.cleanup()


def test_single_container_up_events_through_nginx_supervised_and_stopped(stack):
    result = cli("up", "--dir", str(stack.dir), "-p", stack.project, "--http-port", f"127.0.0.1:{stack.http_port}",
                 "--single-container", "--no-rasa", "--json", "--timeout", "300")
    events = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert {e["name"] for e in events if e.get("state") == "healthy"} == {"db", "rabbit", "redis", "rasa-x", "nginx"}
    assert {c.labels["com.docker.compose.service"] for c in stack.containers()} == {
        "db", "rabbit", "redis", "rasa-x", "nginx"}

    senders = publish_fixtures(stack)
    assert senders <= stack.wait_for_senders(senders), "events published to RabbitMQ, read back through nginx"

    # Supervision: the event service dies → the container exits non-zero, Docker restarts it,
    # it comes back healthy.
    container = stack.docker_client.containers.get(f"{stack.project}_rasa-x_1")
    since = int(time.time())
    container.exec_run(["python", "-c", KILL_EVENT_SERVICE])
    events = stack.docker_client.events(since=since, decode=True, filters={"container": container.id, "event": "die"})
    died = next(events)
    events.close()
    assert died["Actor"]["Attributes"]["exitCode"] == str(128 + 9)

    def healthy():
        container.reload()
        return container.attrs["State"].get("Health", {}).get("Status") == "healthy"

    wait_until(healthy, 180, "rasa-x healthy again after its restart", interval=2)
    assert container.attrs["RestartCount"] >= 1
    assert senders <= stack.wait_for_senders(senders, timeout=30)

    # SIGTERM (docker stop): both services stop cleanly and the container exits 0.
    stopping = time.monotonic()
    container.stop(timeout=60)
    print(f"stopped in {time.monotonic() - stopping:.1f} s")
    container.reload()
    assert container.attrs["State"]["ExitCode"] == 0
    lines = [json.loads(line) for line in container.logs(tail=60).decode(errors="replace").splitlines()
             if line.startswith("{")]
    stopped = [line for line in lines if line["logger"] == "services.all" and line["message"] == "stopped"]
    assert stopped and stopped[-1]["event-service"] == 0 and stopped[-1]["rasa-x"] == 0, lines[-10:]
