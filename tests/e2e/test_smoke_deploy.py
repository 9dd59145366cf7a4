"""Smoke deploy: the real installer, non-interactive, on a real Docker engine, own project name.

`rasax-deploy up` from an empty folder → every service healthy; the real Rasa events of
tests/fixtures published to the stack's RabbitMQ → read back through nginx at
/api/conversations after logging in with the generated admin password; `down` then `up` keeps
them; the same compose files then come up with `docker-compose` 1.29 and still show them.
Logs of every container are printed when a step fails; the project's containers, network and
volumes are removed at the end, whatever happened.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid

import pytest
import requests

from deploy.docker_engine import apt_install
from tests.conftest import free_port
from tests.e2e.deployment import Stack, cli, publish_fixtures
from tests.unit.deploy.certs import self_signed

pytestmark = [pytest.mark.docker, pytest.mark.timeout(1500)]

@pytest.fixture(scope="session")
def docker_compose() -> str:
    """docker-compose 1.29, Debian's, installed with apt-get when missing (as `up` installs docker.io):
    the README's set-up does not install it, and no other test needs it."""
    found = shutil.which("docker-compose")
    if found is None:
        if os.geteuid() != 0 or shutil.which("apt-get") is None:
            pytest.fail("this step runs the files under docker-compose 1.29: `apt-get install docker-compose` "
                        "(as root), or run the tests as root on Debian to have it installed")
        apt_install(["docker-compose"])
        found = shutil.which("docker-compose")
        assert found, "apt-get installed docker-compose but it is not on PATH"
    version = subprocess.run([found, "version", "--short"], capture_output=True, text=True, timeout=60).stdout
    assert version.startswith("1.29"), f"{found} is docker-compose {version.strip()!r}, this step is about 1.29"
    return found


@pytest.fixture
def stack(docker_client, tmp_path, request):
    directory = tmp_path / "rasa"
    stack = Stack(docker_client, directory, f"rxsmoke{uuid.uuid4().hex[:8]}", free_port())
    yield stack
    failed = getattr(request.node, "rep_call", None)
    if failed is None or failed.failed:
        stack.dump_logs()
    stack.cleanup()


def test_up_from_empty_publish_read_through_nginx_down_up_and_docker_compose(stack, docker_compose):
    # 1. From an empty folder to a healthy stack.
    # Without the Rasa servers (tests/e2e/test_rasa_stack.py runs them): this test is about the
    # installer, the event path and docker-compose, and each `up` here would wait for TensorFlow.
    result = cli("up", "--dir", str(stack.dir), "-p", stack.project, "--http-port", f"127.0.0.1:{stack.http_port}",
                 "--no-rasa", "--json", "--timeout", "240")
    events = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    healthy = {e["name"] for e in events if e.get("state") == "healthy"}
    assert healthy == {"db", "rabbit", "redis", "db-migration", "event-service", "rasa-x", "nginx"}
    assert events[-1]["done"] and events[-1]["url"] == f"http://127.0.0.1:{stack.http_port}"
    assert oct((stack.dir / "credentials" / "DB_PASSWORD").stat().st_mode & 0o777) == "0o600"
    assert cli("status", "--dir", str(stack.dir), "--json").returncode == 0

    # nginx: public routes answer, /nginx_status is for the container itself only.
    assert requests.get(f"{stack.base}/robots.txt", timeout=5).text.startswith("User-agent: *")
    assert requests.get(f"{stack.base}/nginx_status", timeout=5).status_code == 403
    assert requests.get(f"{stack.base}/api/conversations", timeout=5).status_code == 401
    # rasa-x signs with the key pair init wrote (mounted read-only), not one of its own.
    version = requests.get(f"{stack.base}/api/version", timeout=5).json()
    assert version["keys"][0]["key"].strip() == (stack.dir / "auth" / "jwt_public_key.pem").read_text().strip()

    # 2. A test-only override publishes RabbitMQ on a loopback port; `up` recreates only rabbit
    # (and what depends on it), the rest is left running.
    (stack.dir / "docker-compose.override.yml").write_text(
        "services:\n  rabbit:\n    ports:\n      - \"127.0.0.1::5672\"\n")
    result = cli("up", "--dir", str(stack.dir), "--json", "--timeout", "240")
    events = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    states: dict[str, list[str]] = {}
    for e in events:
        if e.get("kind") == "service" and e["state"] in ("unchanged", "recreating", "started"):
            states.setdefault(e["name"], []).append(e["state"])
    assert states["rabbit"] == ["recreating", "started"]
    assert states["db"] == ["unchanged"] and states["redis"] == ["unchanged"]
    # The project image is rebuilt only when the checkout's source changed meanwhile (a developer
    # editing services/ while this runs); then, and only then, its containers are replaced too.
    rebuilt = any("rasax/rasa-x" in e.get("note", "") and "building" in e["note"] for e in events)
    assert states["rasa-x"] == (["recreating", "started"] if rebuilt else ["unchanged"])

    senders = publish_fixtures(stack)
    assert senders == {"alice", "bob", "carol", "dave", "xmode-0", "xmode-1", "xmode-2"}
    seen = stack.wait_for_senders(senders)
    assert senders <= seen, f"through nginx after publishing: {sorted(seen)}"

    # 3. down keeps the data; up brings it back — now with TLS, plain HTTP redirecting to it.
    cli("down", "--dir", str(stack.dir))
    assert stack.containers() == []
    cert, key = self_signed(stack.dir.parent, "tls.crt", "tls.key")
    https_port = free_port()
    cli("up", "--dir", str(stack.dir), "-q", "--timeout", "240", "--tls", "--cert", str(cert), "--key", str(key),
        "--https-port", f"127.0.0.1:{https_port}")
    redirect = requests.get(f"{stack.base}/api/health", allow_redirects=False, timeout=5)
    assert redirect.status_code == 301
    assert redirect.headers["Location"] == f"https://127.0.0.1:{https_port}/api/health"
    stack.base, stack.ca = f"https://127.0.0.1:{https_port}", str(cert)
    assert senders <= stack.wait_for_senders(senders, timeout=30)

    # 4. The same compose files with docker-compose 1.29, on the same volumes.
    cli("down", "--dir", str(stack.dir))
    run = subprocess.run([docker_compose, "-p", stack.project, "up", "-d"], cwd=stack.dir, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    assert senders <= wait_healthy_then_senders(stack, senders)

    # 5. Operations on that stack: logs, and deleting data only after a yes.
    logs = cli("logs", "--dir", str(stack.dir), "db-migration", "--tail", "20")
    assert "schema is at" in logs.stdout or "completed" in logs.stdout
    refused = subprocess.run([sys.executable, "-m", "cli", "down", "--dir", str(stack.dir), "--volumes"],
                             input="n\n", capture_output=True, text=True, timeout=120,
                             cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    assert refused.returncode != 0 and "Aborted" in refused.stderr
    assert len(stack.docker_client.volumes.list(filters={"label": f"com.docker.compose.project={stack.project}"})) == 3


def wait_healthy_then_senders(stack: Stack, senders: set[str]) -> set[str]:
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        states = [(c.name, c.attrs["State"].get("Health", {}).get("Status")) for c in stack.containers()
                  if not c.reload()]
        if states and all(h == "healthy" for _, h in states):
            break
        time.sleep(2)
    else:
        pytest.fail(f"docker-compose stack not healthy: {states}")
    return stack.wait_for_senders(senders, timeout=60)
