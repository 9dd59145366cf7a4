"""`doctor` on a real stack: PASS on a healthy one, and each check FAILs on a stack broken on
purpose the way deployments break — a wrong broker password, the events queue unbound, a
stopped consumer, RASA_X_TOKEN changed in .env without a restart, no production model, a
certificate beside another certificate's key, the schema behind the code, a relative broker disk
limit, nginx stopped — then PASSes again once that is undone.

Clock skew between containers is not made here: containers share their engine's kernel clock, so
the clock check compares the engine's time (a remote engine's) with this machine's.

One stack (own project and port, without the Rasa servers: the Rasa checks then WARN that there
is none, which the Rasa stack's own test covers). Each breakage is undone before the next.
"""

from __future__ import annotations

import json
import re

import pytest
import requests

from deploy import doctor
from deploy.stack import Target
from tests.conftest import wait_until
from tests.e2e.day2 import psql
from tests.e2e.deployment import Stack, cli, fake_model, read_env, running_stack
from tests.unit.deploy.certs import self_signed

pytestmark = [pytest.mark.docker, pytest.mark.timeout(900)]

# Runs in the event service's container, with its own broker credentials.
UNBIND = """
import sys, pika
from services.common.config import rabbit_settings
s = rabbit_settings()
c = pika.BlockingConnection(pika.ConnectionParameters(s.host, s.port, s.vhost, pika.PlainCredentials(s.username, s.password)))
getattr(c.channel(), sys.argv[1])(s.queue, s.exchange, routing_key="")
c.close()
"""


@pytest.fixture(scope="module")
def stack(docker_client, tmp_path_factory, request):
    with running_stack(docker_client, tmp_path_factory.mktemp("doctor") / "rasa", "rxdoctor", request) as stack:
        headers = {"Authorization": f"Bearer {stack.login()}"}
        upload = requests.post(f"{stack.base}/api/models", headers=headers, timeout=30,
                               files={"model": ("doctorbot.tar.gz", fake_model())})
        assert upload.status_code == 201, upload.text
        assert requests.put(f"{stack.base}/api/models/doctorbot/tags/production", headers=headers,
                            timeout=30).status_code == 204
        yield stack


def results(stack: Stack) -> dict[str, doctor.Check]:
    return {r.name: r for r in doctor.run(Target.at(str(stack.dir)), stack.docker_client)}


def one(stack: Stack, check) -> doctor.Check:
    found = check(doctor.Stack(Target.at(str(stack.dir)), stack.docker_client))
    return found


def test_a_healthy_stack_passes_with_exit_0(stack):
    result = cli("doctor", "--dir", str(stack.dir), "--json")
    checks = {c["name"]: c for c in json.loads(result.stdout)}
    for name in ("containers", "migrations", "broker login", "events queue bound", "events consumer",
                 "broker disk limit", "port", "certificate", "clock"):
        assert checks[name]["status"] == "PASS", checks[name]
    # Without Rasa servers in the stack these can only warn.
    assert checks["RASA_X_TOKEN"]["status"] == "WARN" and "no Rasa server" in checks["RASA_X_TOKEN"]["found"]
    assert checks["production model"]["status"] == "WARN" and "doctorbot is tagged" in checks["production model"]["found"]
    assert "FAIL" not in {c["status"] for c in checks.values()}
    text = cli("doctor", "--dir", str(stack.dir))
    assert "PASS  broker login: user logs in" in text.stdout


def test_no_production_model_fails(stack):
    headers = {"Authorization": f"Bearer {stack.login()}"}
    url = f"{stack.base}/api/models/doctorbot/tags/production"
    assert requests.delete(url, headers=headers, timeout=30).status_code in (200, 204)
    try:
        found = one(stack, doctor.check_production_model)
        assert (found.status, found.found) == ("FAIL", "no model is tagged production")
        assert "--tag production" in found.fix
        failed = cli("doctor", "--dir", str(stack.dir), check=False)
        assert failed.returncode == 1 and "FAIL  production model: no model is tagged production" in failed.stdout
    finally:
        assert requests.put(url, headers=headers, timeout=30).status_code == 204
    assert one(stack, doctor.check_production_model).status == "WARN"


def test_a_wrong_broker_password_fails(stack):
    rabbit, username = stack.container("rabbit"), read_env(stack.dir)["RABBITMQ_USERNAME"]
    assert rabbit.exec_run(["rabbitmqctl", "change_password", username, "not-the-configured-one"])[0] == 0
    try:
        found = one(stack, doctor.check_broker)
        assert found.status == "FAIL" and "cannot log in" in found.found and "change_password" in found.fix
    finally:
        password = (stack.dir / "credentials" / "RABBITMQ_PASSWORD").read_text().strip()
        assert rabbit.exec_run(["rabbitmqctl", "change_password", username, password])[0] == 0
    assert one(stack, doctor.check_broker).status == "PASS"


def test_an_unbound_queue_fails(stack):
    events = stack.container("event-service")
    code, output = events.exec_run(["python", "-c", UNBIND, "queue_unbind"])
    assert code == 0, output.decode()
    try:
        bound = {c.name: c for c in one(stack, doctor.check_queue)}["events queue bound"]
        assert bound.status == "FAIL" and "is not bound to rasa-exchange" in bound.found
    finally:
        assert events.exec_run(["python", "-c", UNBIND, "queue_bind"])[0] == 0
    assert {c.name: c for c in one(stack, doctor.check_queue)}["events queue bound"].status == "PASS"


def test_a_token_changed_without_a_restart_fails(stack):
    env_file, secret = stack.dir / ".env", stack.dir / "credentials" / "RASA_X_TOKEN"
    env_text, secret_text = env_file.read_text(), secret.read_text()
    env_file.write_text("\n".join("RASA_X_TOKEN=changed-in-env-only" if line.startswith("RASA_X_TOKEN=") else line
                                  for line in env_text.splitlines()) + "\n")
    secret.write_text("changed-in-env-only")
    try:
        found = one(stack, doctor.check_tokens)
        assert found.status == "FAIL" and found.found.startswith("rasa-x run(s) with another RASA_X_TOKEN")
        assert "changed-in-env-only" not in found.found + found.fix
    finally:
        env_file.write_text(env_text)
        secret.write_text(secret_text)
    assert one(stack, doctor.check_tokens).status == "WARN"


def test_a_certificate_with_another_key_fails(stack, tmp_path):
    certs = stack.dir / "certs"
    cert, _ = self_signed(tmp_path / "a", "rasax.crt", "rasax.key")
    _, other_key = self_signed(tmp_path / "b", "rasax.crt", "rasax.key")
    (certs / "rasax.crt").write_bytes(cert.read_bytes())
    (certs / "rasax.key").write_bytes(other_key.read_bytes())
    try:
        found = one(stack, doctor.check_certificate)
        assert (found.status, found.found) == ("FAIL", "rasax.key is not the key of rasax.crt")
        (certs / "rasax.key").write_bytes((tmp_path / "a" / "rasax.key").read_bytes())
        found = one(stack, doctor.check_certificate)  # the pair, valid for one more day
        assert found.status == "WARN" and found.found == "expires in 0 days"
    finally:
        for name in ("rasax.crt", "rasax.key"):
            (certs / name).unlink()
    assert one(stack, doctor.check_certificate).status == "PASS"


def test_a_stopped_consumer_fails(stack):
    events = stack.container("event-service")
    events.stop(timeout=20)
    try:
        checks = {c.name: c for c in doctor.run(Target.at(str(stack.dir)), stack.docker_client)}
        assert checks["containers"].status == "FAIL" and "event-service exited" in checks["containers"].found
        assert checks["events consumer"].status == "FAIL" and "has no consumer" in checks["events consumer"].found
        assert checks["broker login"].status == "FAIL"
    finally:
        events.start()
    wait_until(lambda: stack.container("event-service").attrs["State"].get("Health", {}).get("Status") == "healthy",
               120, "the event service healthy again", interval=1)
    assert one(stack, doctor.check_containers).status == "PASS"
    consumer = wait_until(lambda: (c := {x.name: x for x in one(stack, doctor.check_queue)}["events consumer"])
                          .status == "PASS" and c, 60, "a consumer again", interval=1)
    assert consumer.status == "PASS"


def test_a_schema_behind_the_code_fails(stack):
    from services.db_migration.migrator import alembic_config, head_revision
    from alembic.script import ScriptDirectory

    head = head_revision()
    previous = ScriptDirectory.from_config(alembic_config()).get_revision(head).down_revision
    psql(stack, f"UPDATE alembic_version SET version_num = '{previous}'", "rasa")
    try:
        found = one(stack, doctor.check_migrations)
        assert (found.status, found.found) == ("FAIL", f"schema pending at {previous}")
        assert found.expected == f"schema at {head}" and "rasax-deploy migrate" in found.fix
    finally:
        psql(stack, f"UPDATE alembic_version SET version_num = '{head}'", "rasa")
    assert one(stack, doctor.check_migrations).status == "PASS"


def test_a_relative_broker_disk_limit_fails(stack):
    env_file = stack.dir / ".env"
    text = env_file.read_text()
    env_file.write_text(re.sub(r"(?m)^RABBITMQ_DISK_FREE_LIMIT=.*$", "RABBITMQ_DISK_FREE_LIMIT=50%", text))
    try:
        found = one(stack, doctor.check_disk_free_limit)
        assert (found.status, found.found) == ("FAIL", "RABBITMQ_DISK_FREE_LIMIT=50%")
        assert "RABBITMQ_DISK_FREE_LIMIT=1GB" in found.fix
    finally:
        env_file.write_text(text)
    assert one(stack, doctor.check_disk_free_limit).status == "PASS"


def test_nothing_answering_on_the_port_fails(stack):
    nginx = stack.container("nginx")
    nginx.stop(timeout=10)
    try:
        found = one(stack, doctor.check_port)
        assert found.status == "FAIL" and found.found.startswith("nothing answers at http://127.0.0.1:")
    finally:
        nginx.start()
    wait_until(lambda: one(stack, doctor.check_port).status == "PASS", 60, "nginx answering again", interval=1)
