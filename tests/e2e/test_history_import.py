"""`conversations import` from tracker stores a real Rasa 3.6.21 wrote.

One module fixture runs the trained tests/fixtures/moodbot in two rasax/rasa containers (host
network, REST channel, HTTP API with a token):
- "postgres": SQL tracker store on a password-protected PostgreSQL (the stack's rasax/postgres
  image, published on a free 127.0.0.1 port) and the pika event broker to a RabbitMQ queue of
  this test, which `python -m services.event_service` consumes into a database — the live stream;
- "sqlite": SQL tracker store in a SQLite file of a mounted folder.
The tests talk to both through the REST channel, import, and compare with Rasa's own
`GET /conversations/{id}/tracker?include_events=ALL`.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import threading
import uuid

import psycopg2
import pytest
import requests
import sqlalchemy as sa

from deploy import images
from tests.conftest import (
    RABBIT_HOST,
    RABBIT_PASSWORD,
    RABBIT_PORT,
    RABBIT_USER,
    db_env,
    free_port,
    migrated_databases,
    rabbit_env,
    wait_until,
)
from tests.e2e.rasa_project import RASA_IMAGE, logs
from tests.integration.event_service.harness import ROOT, Service, snapshot

pytestmark = [pytest.mark.docker, pytest.mark.timeout(1800)]

TOKEN = secrets.token_urlsafe(16)
PG_PASSWORD = secrets.token_urlsafe(16)
# What people say to the moodbot; each line is one REST message.
SAYINGS = ["hello", "I am great", "bye"]


class Bot:
    def __init__(self, name: str, container, port: int, tracker_store: str):
        self.name = name
        self.container = container
        self.base = f"http://127.0.0.1:{port}"
        self.tracker_store = tracker_store  # the URL, without a password
        self.senders: list[str] = []

    def say(self, sender: str, text: str) -> None:
        reply = requests.post(f"{self.base}/webhooks/rest/webhook", json={"sender": sender, "message": text}, timeout=60)
        assert reply.status_code == 200, reply.text
        if sender not in self.senders:
            self.senders.append(sender)

    def converse(self, prefix: str, count: int) -> list[str]:
        senders = [f"{prefix}-{self.name}-{i}-{uuid.uuid4().hex[:6]}" for i in range(count)]
        for sender in senders:
            for text in SAYINGS:
                self.say(sender, text)
        return senders

    def events(self, sender: str) -> list[dict]:
        response = requests.get(f"{self.base}/conversations/{sender}/tracker",
                                params={"include_events": "ALL", "token": TOKEN}, timeout=30)
        assert response.status_code == 200, response.text
        return response.json()["events"]

    def ready(self) -> bool:
        try:
            return requests.get(f"{self.base}/status", params={"token": TOKEN}, timeout=5).status_code == 200
        except requests.RequestException:
            return False


def canonical(events) -> list[str]:
    return sorted(json.dumps(e, sort_keys=True) for e in events)


def stored_events(engine, sender: str) -> list[dict]:
    with engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT data FROM conversation_event WHERE conversation_id = :s"), {"s": sender})
        events = [json.loads(data) for (data,) in rows]
    for event in events:
        assert event.pop("sender_id") == sender
    return events


def count_events(engine) -> int:
    with engine.connect() as connection:
        return connection.execute(sa.text("SELECT count(*) FROM conversation_event")).scalar_one()


@pytest.fixture(scope="module")
def databases():
    """new() → (name, engine) of a migrated event database; all dropped at the end."""
    with migrated_databases("rasax_hist") as new:
        yield new


@pytest.fixture(scope="module")
def bots(docker_client, tmp_path_factory, rabbit_vhost, databases, moodbot):
    """(postgres bot, sqlite bot, live event database (name, engine), the event service)."""
    images.build_all(docker_client, print, ["postgres"], False)  # kept when up to date
    root = tmp_path_factory.mktemp("history")
    project, model = moodbot  # trained once per session (tests/e2e/conftest.py)
    suffix = uuid.uuid4().hex[:8]
    containers = []
    live = databases()
    queue = {**rabbit_env(rabbit_vhost), "RABBITMQ_QUEUE": f"history_{suffix}",
             "RABBITMQ_EXCHANGE": f"history-exchange-{suffix}"}
    service = Service({**db_env(live[0]), **queue}, str(root / "event-service.log")).start()
    try:
        pg_port = free_port()
        postgres = docker_client.containers.run(
            "rasax/postgres:15", name=f"rasax-history-pg-{suffix}", detach=True,
            environment={"POSTGRES_PASSWORD": PG_PASSWORD}, ports={"5432/tcp": ("127.0.0.1", pg_port)})
        containers.append(postgres)

        def pg_up():
            try:
                psycopg2.connect(host="127.0.0.1", port=pg_port, user="postgres", password=PG_PASSWORD,
                                 dbname="postgres", connect_timeout=2).close()
                return True
            except psycopg2.OperationalError:
                return False

        wait_until(pg_up, 120, "the tracker store's PostgreSQL", interval=1)
        service.wait_consuming()

        sqlite_dir = root / "sqlite"
        sqlite_dir.mkdir()
        sqlite_dir.chmod(0o777)
        broker = {"type": "pika", "url": f"amqp://{RABBIT_HOST}/{rabbit_vhost}", "port": RABBIT_PORT,
                  "username": RABBIT_USER, "password": RABBIT_PASSWORD, "exchange_name": queue["RABBITMQ_EXCHANGE"],
                  "queues": [queue["RABBITMQ_QUEUE"]]}
        configs = {
            "postgres": {"tracker_store": {"type": "sql", "dialect": "postgresql", "url": "127.0.0.1", "port": pg_port,
                                           "username": "postgres", "password": PG_PASSWORD, "db": "tracker",
                                           "login_db": "postgres"},
                         "event_broker": broker},
            "sqlite": {"tracker_store": {"type": "sql", "dialect": "sqlite", "db": "/sqlite/rasa.db"}},
        }
        stores = {"postgres": f"postgresql://postgres@127.0.0.1:{pg_port}/tracker",
                  "sqlite": f"sqlite:///{sqlite_dir / 'rasa.db'}"}
        bots = {}
        for name, endpoints in configs.items():
            (project / f"endpoints-{name}.yml").write_text(json.dumps(endpoints))  # JSON is YAML
            port = free_port()
            container = docker_client.containers.run(
                RASA_IMAGE, ["run", "--enable-api", "--auth-token", TOKEN, "--port", str(port), "--model",
                             f"/models/{model.name}", "--endpoints", f"endpoints-{name}.yml", "--credentials",
                             "credentials.yml"],
                name=f"rasax-history-{name}-{suffix}", user="1001", detach=True, network_mode="host",
                volumes={str(project): {"bind": "/app", "mode": "rw"}, str(model.parent): {"bind": "/models", "mode": "ro"},
                         str(sqlite_dir): {"bind": "/sqlite", "mode": "rw"}})
            containers.append(container)
            bots[name] = Bot(name, container, port, stores[name])
        for bot in bots.values():
            try:
                wait_until(bot.ready, 400, f"rasa {bot.name} /status", interval=2)
            except BaseException:
                print(logs(bot.container))
                raise
        yield bots["postgres"], bots["sqlite"], live, service
    finally:
        for container in containers:
            print(f"===== {container.name} =====\n{logs(container)}")
            container.remove(force=True)
        service.stop()
        print(service.log())


def run_cli(database: str, *args: str, stdin: str | None = None) -> tuple[int, dict | None, str]:
    process = subprocess.run(
        [sys.executable, os.path.join(ROOT, "cli.py"), "conversations", "import", "--json", *args],
        input=stdin, env={**os.environ, **db_env(database)}, capture_output=True, text=True, timeout=600)
    lines = process.stdout.strip().splitlines()
    return process.returncode, json.loads(lines[-1]) if lines else None, process.stderr


def test_rasas_postgresql_tracker_store_imports_to_exactly_rasas_events_and_the_live_tables(bots, databases):
    postgres_bot, _, (live_name, live_engine), service = bots
    senders = postgres_bot.converse("pg", 3)
    rasa_events = {sender: postgres_bot.events(sender) for sender in senders}
    total = sum(len(events) for events in rasa_events.values())
    assert total > 3 * len(SAYINGS) * 2
    # The live stream reached the event service.
    wait_until(lambda: count_events(live_engine) >= total, 120, f"{total} live events")

    name, engine = databases()
    code, summary, err = run_cli(name, "--tracker-store", postgres_bot.tracker_store, "--password-stdin",
                                 stdin=PG_PASSWORD + "\n")
    assert code == 0, err
    assert PG_PASSWORD not in err + json.dumps(summary)
    assert (summary["stored"], summary["skipped_duplicate"], summary["refused"]) == (total, 0, 0)
    assert summary["conversations_done"] == len(senders)
    for sender, events in rasa_events.items():
        assert canonical(stored_events(engine, sender)) == canonical(events), sender
    # Derived rows (conversations, sessions, intents, statistics...) as from the live stream.
    assert snapshot(engine) == snapshot(live_engine)

    # Into the live database: every event is already there.
    code, summary, err = run_cli(live_name, "--tracker-store", postgres_bot.tracker_store, "--password-stdin",
                                 stdin=PG_PASSWORD + "\n")
    assert code == 0, err
    assert (summary["stored"], summary["skipped_duplicate"]) == (0, total)
    assert snapshot(engine) == snapshot(live_engine)


def test_an_import_while_the_bot_streams_live_stores_each_event_once(bots):
    postgres_bot, _, (live_name, live_engine), _ = bots
    talking = threading.Thread(target=lambda: postgres_bot.converse("during", 3))
    talking.start()
    try:
        code, summary, err = run_cli(live_name, "--tracker-store", postgres_bot.tracker_store, "--password-stdin",
                                     stdin=PG_PASSWORD + "\n")
    finally:
        talking.join()
    assert code == 0, err
    assert summary["refused"] == 0
    # Import once more after the bot is quiet: what the first import's snapshot missed.
    code, summary, err = run_cli(live_name, "--tracker-store", postgres_bot.tracker_store, "--password-stdin",
                                 stdin=PG_PASSWORD + "\n")
    assert code == 0, err
    everything = {sender: postgres_bot.events(sender) for sender in postgres_bot.senders}
    total = sum(len(events) for events in everything.values())
    wait_until(lambda: count_events(live_engine) >= total, 120, f"{total} events")
    assert count_events(live_engine) == total == summary["events_selected"]
    for sender, events in everything.items():
        assert canonical(stored_events(live_engine, sender)) == canonical(events), sender


def test_rasas_sqlite_tracker_store_imports_to_exactly_rasas_events(bots, databases):
    _, sqlite_bot, _, _ = bots
    senders = sqlite_bot.converse("lite", 2)
    name, engine = databases()
    code, summary, err = run_cli(name, "--tracker-store", sqlite_bot.tracker_store)
    assert code == 0, err
    assert summary["stored"] == sum(len(sqlite_bot.events(sender)) for sender in senders) > 0
    for sender in senders:
        assert canonical(stored_events(engine, sender)) == canonical(sqlite_bot.events(sender)), sender


def test_a_wrong_password_is_named_as_such(bots, databases):
    postgres_bot = bots[0]
    name, engine = databases()
    code, summary, err = run_cli(name, "--tracker-store", postgres_bot.tracker_store, "--password-stdin",
                                 stdin="not-the-password\n")
    assert code == 1
    assert f"error: PostgreSQL {postgres_bot.tracker_store.removeprefix('postgresql://')} refused the password of " \
           f"user 'postgres': " in err
    assert "not-the-password" not in err
    assert count_events(engine) == 0

