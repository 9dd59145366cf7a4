"""A stack deployed by the real CLI in a test's own folder, project and port: run the CLI, log in,
read conversations through nginx, dump every container's logs, clean everything up."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
import uuid
from contextlib import contextmanager

import pika
import pytest
import requests

from tests.conftest import FIXTURES_DIR, free_port

FIXTURE_FILES = ("rasa-3.6.21-pika-events.jsonl", "rasa-3.6.21-pika-events-app_id-production.jsonl")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def cli(*args: str, check: bool = True, timeout: float = 900) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "cli", *args], capture_output=True, text=True, timeout=timeout,
                            cwd=ROOT)
    print(f"$ rasax-deploy {' '.join(args)}\n{result.stdout}{result.stderr}")
    if check and result.returncode != 0:
        pytest.fail(f"rasax-deploy {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


def read_env(directory) -> dict[str, str]:
    from deploy.layout import parse_env

    return parse_env((directory / ".env").read_text())


class Stack:
    def __init__(self, docker_client, directory, project: str, http_port: int):
        self.docker_client = docker_client
        self.dir = directory
        self.project = project
        self.base = f"http://127.0.0.1:{http_port}"
        self.http_port = http_port
        self.ca: str | bool = True  # the certificate to trust once the stack serves TLS

    def containers(self):
        return self.docker_client.containers.list(all=True, filters={"label": f"com.docker.compose.project={self.project}"})

    def container(self, service: str):
        """The container of `service` (`up` names it <project>_<service>_1)."""
        return self.docker_client.containers.get(f"{self.project}_{service}_1")

    def dump_logs(self) -> None:
        for container in self.containers():
            print(f"===== {container.name} ({container.status}) =====")
            print(container.logs(tail=60).decode(errors="replace"))

    def login(self) -> str:
        password = (self.dir / "credentials" / "RASA_X_PASSWORD").read_text().strip()
        response = requests.post(f"{self.base}/api/auth", json={"username": "admin", "password": password},
                                 timeout=10, verify=self.ca)
        assert response.status_code == 200, response.text
        return response.json()["access_token"]

    def senders(self, token: str) -> set[str]:
        response = requests.get(f"{self.base}/api/conversations", params={"limit": 100},
                                headers={"Authorization": f"Bearer {token}"}, timeout=10, verify=self.ca)
        assert response.status_code == 200, response.text
        body = response.json()
        items = body if isinstance(body, list) else body.get("conversations", body.get("items", []))
        return {item["sender_id"] for item in items}

    def wait_for_senders(self, expected: set[str], timeout: float = 90) -> set[str]:
        deadline = time.monotonic() + timeout
        token = self.login()
        seen: set[str] = set()
        while time.monotonic() < deadline:
            seen = self.senders(token)
            if expected <= seen:
                return seen
            time.sleep(1)
        return seen

    def rabbit_port(self) -> int:
        container = self.docker_client.containers.get(f"{self.project}_rabbit_1")
        return int(container.ports["5672/tcp"][0]["HostPort"])

    def cleanup(self) -> None:
        compose = shutil.which("docker-compose")
        if compose:
            subprocess.run([compose, "-p", self.project, "down", "-v", "--remove-orphans"], cwd=self.dir,
                           capture_output=True, timeout=300)
        cli("down", "--dir", str(self.dir), "-p", self.project, "--volumes", "-y", check=False)
        for volume in self.docker_client.volumes.list(filters={"label": f"com.docker.compose.project={self.project}"}):
            volume.remove(force=True)


def publish_fixtures(stack: Stack) -> set[str]:
    """Publish every captured message exactly as Rasa OSS did (properties included)."""
    from services.common.amqp import declare_rasa_topology
    from services.common.config import rabbit_settings

    env = read_env(stack.dir)
    settings = rabbit_settings(dict(env, RABBITMQ_HOST="127.0.0.1", RABBITMQ_PORT=str(stack.rabbit_port())))
    connection = pika.BlockingConnection(pika.ConnectionParameters(
        "127.0.0.1", settings.port, settings.vhost, pika.PlainCredentials(settings.username, settings.password)))
    senders = set()
    try:
        channel = connection.channel()
        declare_rasa_topology(channel, settings)
        channel.confirm_delivery()
        for name in FIXTURE_FILES:
            with open(os.path.join(FIXTURES_DIR, name)) as lines:
                for line in lines:
                    message = json.loads(line)
                    senders.add(json.loads(message["body"])["sender_id"])
                    properties = pika.BasicProperties(delivery_mode=message.get("delivery_mode"),
                                                      headers=message.get("headers"), app_id=message.get("app_id"))
                    channel.basic_publish(settings.exchange, "", message["body"].encode(), properties)
    finally:
        connection.close()
    return senders


def fake_model() -> bytes:
    """A gzipped tar with the metadata.json rasa-x reads: enough for upload, tags and download."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        data = json.dumps({"trained_at": "2026-01-02T03:04:05", "rasa_open_source_version": "3.6.21"}).encode()
        info = tarfile.TarInfo("metadata.json")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@contextmanager
def running_stack(docker_client, directory, prefix: str, request, rasa: bool = False):
    """A stack up in `directory` without the Rasa servers, unless `rasa` (own project and port), for
    one test module; its logs are printed when a test of the session failed, and everything is removed."""
    stack = Stack(docker_client, directory, f"{prefix}{uuid.uuid4().hex[:8]}", free_port())
    try:
        cli("up", "--dir", str(directory), "-p", stack.project, "--http-port", f"127.0.0.1:{stack.http_port}",
            *(("--timeout", "600") if rasa else ("--no-rasa", "--timeout", "240")), "-q")
        yield stack
    finally:
        if request.session.testsfailed:
            stack.dump_logs()
        stack.cleanup()
