"""What the event-service tests share: the service as a subprocess, publishing like Rasa,
streams built from the real captured events, and an independent oracle of the derived tables.

The oracle recomputes, in plain Python over the ordered events, what each table must hold; the
tests compare the service's tables with it, so a wrong aggregate cannot hide behind a second,
equally wrong one.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zlib
from collections import defaultdict

import pika
import sqlalchemy as sa

from services.common.amqp import connection_parameters, rasa_properties
from services.common.config import rabbit_settings
from tests.conftest import FIXTURES_DIR, free_port, wait_until  # noqa: F401 (the tests import them from here)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
FIXTURE_FILES = ("rasa-3.6.21-pika-events.jsonl", "rasa-3.6.21-pika-events-app_id-production.jsonl")


# ----- the service ---------------------------------------------------------------------------
class Service:
    """`python -m services.event_service` exactly as deployed, with its log in a file.

    It runs in a process group of its own, so that `kill()` takes down the service and its
    worker processes together, as `docker kill` does to a container."""

    def __init__(self, env: dict[str, str], log_path: str):
        self.env = env
        self.port = free_port()
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    def start(self) -> "Service":
        env = {**os.environ, **self.env, "SELF_PORT": str(self.port)}
        self._log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "services.event_service"], cwd=ROOT, env=env, stdout=self._log, stderr=self._log,
            start_new_session=True,
        )
        return self

    def health(self) -> tuple[int, dict] | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=5) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())
        except OSError:
            return None

    def wait_consuming(self, timeout: float = 60.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"event service exited with {self.process.returncode}:\n{self.log()}"
            answer = self.health()
            if answer and answer[0] == 200:
                return answer[1]
            time.sleep(0.1)
        raise AssertionError(f"event service not healthy after {timeout}s: {self.health()}\n{self.log()}")

    def kill(self) -> None:
        """SIGKILL to every process of the service at once."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def worker_pids(self) -> list[int]:
        return [worker["pid"] for worker in self.health()[1]["workers"]]

    def terminate(self, timeout: float = 30.0) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def stop(self) -> None:
        if self.process:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)  # workers that outlived a test too
            except ProcessLookupError:
                pass
            self.process.wait(10)
        if self.process:
            self._log.close()

    def log(self) -> str:
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")[-6000:]


# ----- publishing like Rasa ------------------------------------------------------------------
class Message:
    """One AMQP message as Rasa's pika broker publishes it."""

    __slots__ = ("body", "app_id", "headers")

    def __init__(self, body: bytes, app_id: str | None = None, headers: dict | None = None):
        self.body = body
        self.app_id = app_id
        self.headers = headers

    @property
    def event(self) -> dict:
        return json.loads(self.body)


def publish(env: dict[str, str], messages, exchange: str | None = None) -> int:
    rabbit = rabbit_settings(env)
    connection = pika.BlockingConnection(connection_parameters(rabbit))
    try:
        channel = connection.channel()
        count = 0
        for message in messages:
            properties = rasa_properties(message.app_id)
            if message.headers:
                properties.headers = dict(message.headers)
            channel.basic_publish(exchange or rabbit.exchange, "", message.body, properties)
            count += 1
        return count
    finally:
        connection.close()


def fixture_messages() -> list[Message]:
    messages = []
    for name in FIXTURE_FILES:
        with open(os.path.join(FIXTURES_DIR, name)) as f:
            for line in f:
                captured = json.loads(line)
                messages.append(Message(captured["body"].encode(), captured.get("app_id"), captured.get("headers")))
    return messages


def replicated_stream(copies: int, prefix: str = "c") -> list[Message]:
    """`copies` × the captured conversations, each copy its own sender ids and times."""
    base = fixture_messages()
    messages = []
    for copy in range(copies):
        for message in base:
            event = message.event
            event["sender_id"] = f"{prefix}{copy}-{event['sender_id']}"
            event["timestamp"] = event["timestamp"] + copy * 10_000
            messages.append(Message(json.dumps(event).encode(), message.app_id))
    return messages


def shuffled_with_duplicates(messages: list[Message], fraction: float, seed: int) -> list[Message]:
    rng = random.Random(seed)
    result = list(messages) + rng.sample(messages, int(len(messages) * fraction))
    rng.shuffle(result)
    return result


# ----- waiting and reading -------------------------------------------------------------------
def count_events(engine) -> int:
    with engine.connect() as connection:
        return connection.execute(sa.text("SELECT count(*) FROM conversation_event")).scalar_one()


def wait_for_events(engine, expected: int, timeout: float = 120.0, service: Service | None = None) -> None:
    deadline = time.monotonic() + timeout
    count = -1
    while time.monotonic() < deadline:
        try:
            count = count_events(engine)
        except sa.exc.OperationalError:
            count = -1  # our own PostgreSQL restarting
        if count >= expected:
            return
        time.sleep(0.2)
    extra = f"\nservice log:\n{service.log()}" if service else ""
    raise AssertionError(f"{count} events stored after {timeout}s, expected {expected}{extra}")


SNAPSHOT_QUERIES = {
    "conversation": """SELECT sender_id, rasa_environment, number_user_messages, latest_input_channel,
        latest_input_channel_time, first_event_time, latest_event_time, minimum_action_confidence,
        maximum_action_confidence, minimum_intent_confidence, maximum_intent_confidence, in_training_data
        FROM conversation ORDER BY sender_id""",
    "conversation_event": """SELECT e.conversation_id, e.type_name, e.timestamp, e.intent_name, e.action_name,
        e.slot_name, e.slot_value, e.policy, e.data, e.rasa_environment, encode(e.dedupe_key, 'hex'),
        m.event_id = e.id AS linked
        FROM conversation_event e LEFT JOIN message_log m ON m.id = e.message_log_id
        ORDER BY e.dedupe_key""",
    "message_log": """SELECT m.hash, m.model, m.time, m.text, m.intent, m.confidence, m.intent_ranking,
        m.entities, m.conversation_id, m.in_training_data, encode(e.dedupe_key, 'hex')
        FROM message_log m JOIN conversation_event e ON e.id = m.event_id ORDER BY e.dedupe_key""",
    "conversation_session": """SELECT conversation_id, session_start, latest_event_time, is_new_user,
        rasa_environment, input_channel FROM conversation_session ORDER BY conversation_id, session_start""",
    "conversation_statistic": "SELECT * FROM conversation_statistic ORDER BY rasa_environment, shard",
    "conversation_intent_metadata": "SELECT * FROM conversation_intent_metadata ORDER BY 1, 2",
    "conversation_action_metadata": "SELECT * FROM conversation_action_metadata ORDER BY 1, 2",
    "conversation_entity_metadata": "SELECT * FROM conversation_entity_metadata ORDER BY 1, 2",
    "conversation_policy_metadata": "SELECT * FROM conversation_policy_metadata ORDER BY 1, 2",
    "conversation_slot": "SELECT * FROM conversation_slot ORDER BY 1, 2, 3",
    "conversation_input_channel": "SELECT * FROM conversation_input_channel ORDER BY 1, 2",
}


def snapshot(engine) -> dict[str, list[tuple]]:
    """Every table the event service writes, without surrogate ids and insertion times."""
    with engine.connect() as connection:
        return {name: [tuple(row) for row in connection.execute(sa.text(query))] for name, query in SNAPSHOT_QUERIES.items()}


# ----- the oracle ------------------------------------------------------------------------------
def _min(values):
    values = [v for v in values if v is not None]
    return min(values) if values else None


def _max(values):
    values = [v for v in values if v is not None]
    return max(values) if values else None


def _confidence(value):
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def expected_tables(messages: list[Message], training_texts: set[str] = frozenset()) -> dict:
    """What the tables must hold for these messages (duplicates included), computed naively."""
    unique = {}
    for message in messages:
        event = message.event
        key = json.dumps(event, sort_keys=True)
        unique.setdefault(key, (event, message.app_id or "production"))
    by_sender = defaultdict(list)
    for event, environment in unique.values():
        by_sender[event["sender_id"]].append((event, environment))

    conversations, sessions, facets = {}, {}, defaultdict(set)
    statistics = defaultdict(lambda: [0, 0, 0])
    user_messages = set()
    for sender, items in by_sender.items():
        items.sort(key=lambda item: item[0]["timestamp"])
        events = [e for e, _ in items]
        users = [e for e in events if e["event"] == "user"]
        actions = [e for e in events if e["event"] == "action"]
        channel_events = [e for e in users if e.get("input_channel")]
        latest_channel = max(channel_events, key=lambda e: (e["timestamp"], e["input_channel"])) if channel_events else None
        intents = [_confidence(((e.get("parse_data") or {}).get("intent") or {}).get("confidence")) for e in users]
        conversations[sender] = {
            "rasa_environment": items[0][1],
            "number_user_messages": len(users),
            "latest_input_channel": latest_channel["input_channel"] if latest_channel else None,
            "first_event_time": events[0]["timestamp"],
            "latest_event_time": events[-1]["timestamp"],
            "minimum_action_confidence": _min(_confidence(e.get("confidence")) for e in actions),
            "maximum_action_confidence": _max(_confidence(e.get("confidence")) for e in actions),
            "minimum_intent_confidence": _min(intents),
            "maximum_intent_confidence": _max(intents),
            "in_training_data": all(e.get("text") in training_texts for e in users),
        }
        starts = sorted(e["timestamp"] for e in events if e["event"] == "session_started")
        for index, start in enumerate(starts):
            end = starts[index + 1] if index + 1 < len(starts) else float("inf")
            inside = [e for e in events if start <= e["timestamp"] < end]
            first_user = next((e for e in inside if e["event"] == "user"), None)
            sessions[(sender, start)] = {
                "latest_event_time": max(e["timestamp"] for e in inside),
                "is_new_user": index == 0,
                "input_channel": first_user.get("input_channel") if first_user else None,
            }
        for e in users:
            parse_data = e.get("parse_data") or {}
            if (parse_data.get("intent") or {}).get("name"):
                facets["intent"].add((sender, parse_data["intent"]["name"]))
            for entity in parse_data.get("entities") or []:
                facets["entity"].add((sender, entity["entity"]))
            if e.get("input_channel"):
                facets["input_channel"].add((sender, e["input_channel"]))
            user_messages.add((sender, e["timestamp"], e.get("text"), (parse_data.get("intent") or {}).get("name")))
        for e in actions:
            facets["action"].add((sender, e["name"]))
            if e.get("policy"):
                facets["policy"].add((sender, e["policy"]))
        for e in events:
            if e["event"] == "slot":
                facets["slot"].add((sender, e["name"], json.dumps(e.get("value"))))
        for e, environment in items:
            counter = statistics[environment]
            counter[0] += e["event"] == "user"
            counter[1] += e["event"] == "bot"
            counter[2] += 1
    return {
        "events": len(unique),
        "conversations": conversations,
        "sessions": sessions,
        "facets": dict(facets),
        "statistics": {env: tuple(c) for env, c in statistics.items()},
        "user_messages": user_messages,
    }


def actual_tables(engine) -> dict:
    """The service's tables in the oracle's shape."""
    with engine.connect() as connection:
        q = lambda sql: [tuple(r) for r in connection.execute(sa.text(sql))]  # noqa: E731
        conversations = {
            row[0]: dict(
                zip(
                    (
                        "rasa_environment", "number_user_messages", "latest_input_channel", "first_event_time",
                        "latest_event_time", "minimum_action_confidence", "maximum_action_confidence",
                        "minimum_intent_confidence", "maximum_intent_confidence", "in_training_data",
                    ),
                    row[1:],
                )
            )
            for row in q(
                """SELECT sender_id, rasa_environment, number_user_messages, latest_input_channel, first_event_time,
                latest_event_time, minimum_action_confidence, maximum_action_confidence, minimum_intent_confidence,
                maximum_intent_confidence, in_training_data FROM conversation"""
            )
        }
        sessions = {
            (r[0], r[1]): {"latest_event_time": r[2], "is_new_user": r[3], "input_channel": r[4]}
            for r in q("SELECT conversation_id, session_start, latest_event_time, is_new_user, input_channel FROM conversation_session")
        }
        facets = {
            "intent": set(q("SELECT conversation_id, intent FROM conversation_intent_metadata")),
            "entity": set(q("SELECT conversation_id, entity FROM conversation_entity_metadata")),
            "input_channel": set(q("SELECT conversation_id, input_channel FROM conversation_input_channel")),
            "action": set(q("SELECT conversation_id, action FROM conversation_action_metadata")),
            "policy": set(q("SELECT conversation_id, policy FROM conversation_policy_metadata")),
            "slot": set(q("SELECT conversation_id, slot_name, slot_value FROM conversation_slot")),
        }
        statistics = {
            r[0]: (int(r[1]), int(r[2]), int(r[3]))
            for r in q(
                """SELECT rasa_environment, sum(total_user_messages), sum(total_bot_messages), sum(total_events)
                FROM conversation_statistic GROUP BY rasa_environment"""
            )
        }
        user_messages = q("SELECT conversation_id, time, text, intent FROM message_log")
        events = q("SELECT count(*) FROM conversation_event")[0][0]
    return {
        "events": events,
        "conversations": conversations,
        "sessions": sessions,
        "facets": {k: v for k, v in facets.items() if v},
        "statistics": statistics,
        "user_messages": user_messages,
    }


def assert_matches_oracle(engine, messages: list[Message], training_texts: set[str] = frozenset()) -> None:
    expected = expected_tables(messages, training_texts)
    actual = actual_tables(engine)
    assert actual["events"] == expected["events"], "stored events != distinct published events"
    assert len(actual["user_messages"]) == len(set(actual["user_messages"])), "a user message was logged twice"
    assert set(actual["user_messages"]) == expected["user_messages"]
    assert actual["statistics"] == expected["statistics"]
    assert actual["facets"] == expected["facets"]
    assert actual["sessions"] == expected["sessions"]
    assert actual["conversations"] == expected["conversations"]


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def shard(sender_id: str) -> int:
    return zlib.crc32(sender_id.encode()) % 16
