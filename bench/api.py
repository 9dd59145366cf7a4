"""Latency of GET /api/conversations?limit=20 under gunicorn, over a large generated history.

    python bench/api.py                                  # 100k conversations, 2M events
    python bench/api.py --conversations 10000 --requests 100

It creates its own PostgreSQL database (dropped at the end unless --keep) and its own Redis
server, writes the rows directly with SQL as the event service would store them (conversation,
conversation_event, message_log, the facet tables of services/common/facets.py, the counters),
starts `python -m services.backend`, and prints p50/p95/p99 per query in three modes: with the
Redis cache and no new events (repeated queries are hits); with the cache while `BusyBot` stores
new turns (what a live deployment sees: every new event changes the data); without Redis.
PostgreSQL: BENCH_PG_HOST/PORT/USER/PASSWORD (default 127.0.0.1:5432 postgres, trust auth).
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import random
import tempfile
import time

import requests
import sqlalchemy as sa

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from services.common.config import database_settings  # noqa: E402
from services.common.counters import COUNTERS, increments  # noqa: E402
from services.common.db import create_engine  # noqa: E402
from services.common import facets  # noqa: E402
from services.db_migration.migrator import Migrator  # noqa: E402
from tests.conftest import free_port  # noqa: E402

PG = {
    "DB_HOST": os.environ.get("BENCH_PG_HOST", "127.0.0.1"),
    "DB_PORT": os.environ.get("BENCH_PG_PORT", "5432"),
    "DB_USER": os.environ.get("BENCH_PG_USER", "postgres"),
    "DB_PASSWORD": os.environ.get("BENCH_PG_PASSWORD", "unused-with-trust-auth"),
}
QUERIES = [
    "limit=20",
    "limit=20&intent=mood_unhappy",
    "limit=20&minimumConfidence=0.3&rasa_environment=production",
    "limit=20&intent=mood_great&input_channels=socketio&minimumUserMessages=3",
    "limit=20&action=utter_cheer_up&policies=RulePolicy&review_status=unread",
    "limit=20&maximumNluConfidence=0.5&sort_by_confidence=true",
    "limit=20&text=sad",
    "limit=20&offset=5000",
]
INTENTS = ["greet", "mood_great", "mood_unhappy", "affirm", "deny", "goodbye", "bot_challenge"]
TEXTS = ["hi", "I am feeling great", "I am sad", "yes", "no", "bye", "are you a bot?"]
ACTIONS = ["utter_greet", "utter_happy", "utter_cheer_up", "utter_did_that_help", "utter_goodbye", "utter_iamabot"]


def _array(values: list[str]) -> str:
    return "(ARRAY[" + ",".join("'" + v.replace("'", "''") + "'" for v in values) + "])"


def generate(engine, conversations: int, per_conversation: int) -> None:
    """Rows as the event service stores them; every 4 events: user, action, bot, action_listen."""
    k = per_conversation
    params = {"n": conversations, "k": k}
    steps = [
        ("events", f"""
        INSERT INTO conversation_event (id, conversation_id, type_name, timestamp, intent_name, action_name, policy,
                                        data, message_log_id, rasa_environment, dedupe_key)
        SELECT i * :k + j, 'bench-' || i, e.kind, 1.7e9 + i * 60 + j * 0.5,
               CASE WHEN e.kind = 'user' THEN e.intent END,
               CASE WHEN e.kind = 'action' THEN e.action END,
               CASE WHEN e.kind = 'action' THEN CASE WHEN j % 3 = 0 THEN 'RulePolicy' ELSE 'TEDPolicy' END END,
               json_build_object('sender_id', 'bench-' || i, 'event', e.kind, 'timestamp', 1.7e9 + i * 60 + j * 0.5,
                                 'text', e.text, 'name', e.action, 'confidence', e.confidence,
                                 'parse_data', CASE WHEN e.kind = 'user' THEN json_build_object(
                                     'intent', json_build_object('name', e.intent, 'confidence', e.confidence),
                                     'entities', '[]'::json, 'text', e.text) END,
                                 'input_channel', CASE WHEN e.kind = 'user' THEN e.channel END)::text,
               CASE WHEN e.kind = 'user' THEN i * :k + j END,
               CASE WHEN i % 10 = 0 THEN 'worker' ELSE 'production' END,
               decode(md5(i || ':' || j), 'hex')
        FROM generate_series(1, :n) i, generate_series(0, :k - 1) j,
        LATERAL (SELECT CASE j % 4 WHEN 0 THEN 'user' WHEN 2 THEN 'bot' ELSE 'action' END AS kind,
                        {_array(INTENTS)}[1 + (i + j * 3) % {len(INTENTS)}] AS intent,
                        {_array(TEXTS)}[1 + (i + j * 3) % {len(TEXTS)}] AS text,
                        CASE WHEN j % 4 = 3 THEN 'action_listen'
                             ELSE {_array(ACTIONS)}[1 + (i * 5 + j) % {len(ACTIONS)}] END AS action,
                        CASE WHEN i % 3 = 0 THEN 'socketio' ELSE 'rest' END AS channel,
                        ((hashint4(i * 31 + j) & 1023) / 1023.0)::float8 AS confidence) e
        """),
        ("message_log", """
        INSERT INTO message_log (id, hash, time, text, intent, confidence, event_id, conversation_id, in_training_data, entities)
        SELECT id, encode(sha256(convert_to(data::json->>'text', 'UTF8')), 'hex'), timestamp, data::json->>'text',
               intent_name, (data::json->'parse_data'->'intent'->>'confidence')::float8, id, conversation_id, false, '[]'
        FROM conversation_event WHERE type_name = 'user'
        """),
        ("conversation", """
        INSERT INTO conversation (sender_id, rasa_environment, number_user_messages, latest_input_channel,
            latest_input_channel_time, first_event_time, latest_event_time, minimum_action_confidence,
            maximum_action_confidence, minimum_intent_confidence, maximum_intent_confidence, in_training_data)
        SELECT conversation_id, min(rasa_environment), count(*) FILTER (WHERE type_name = 'user'),
               min(data::json->>'input_channel') FILTER (WHERE type_name = 'user'),
               max(timestamp) FILTER (WHERE type_name = 'user'), min(timestamp), max(timestamp),
               min((data::json->>'confidence')::float8) FILTER (WHERE type_name = 'action'),
               max((data::json->>'confidence')::float8) FILTER (WHERE type_name = 'action'),
               min((data::json->>'confidence')::float8) FILTER (WHERE type_name = 'user'),
               max((data::json->>'confidence')::float8) FILTER (WHERE type_name = 'user'), false
        FROM conversation_event GROUP BY conversation_id
        """),
        ("facets", f"""
        INSERT INTO {facets.INTENTS.table} SELECT DISTINCT conversation_id, intent_name FROM conversation_event WHERE intent_name IS NOT NULL;
        INSERT INTO {facets.ACTIONS.table} SELECT DISTINCT conversation_id, action_name FROM conversation_event WHERE action_name IS NOT NULL;
        INSERT INTO {facets.POLICIES.table} SELECT DISTINCT conversation_id, policy FROM conversation_event WHERE policy IS NOT NULL;
        INSERT INTO {facets.INPUT_CHANNELS.table} SELECT sender_id, latest_input_channel FROM conversation;
        INSERT INTO conversation_statistic (rasa_environment, shard, {", ".join(c.column for c in COUNTERS)}, latest_event_time)
        SELECT rasa_environment, 0, {", ".join(c.count_sql() for c in COUNTERS)}, max(timestamp)
        FROM conversation_event GROUP BY rasa_environment;
        SELECT setval(pg_get_serial_sequence('conversation_event', 'id'), (SELECT max(id) FROM conversation_event));
        SELECT setval(pg_get_serial_sequence('message_log', 'id'), (SELECT max(id) FROM message_log));
        """),
    ]
    for name, sql in steps:
        started = time.monotonic()
        with engine.begin() as connection:
            connection.execute(sa.text("SET LOCAL synchronous_commit = off"))
            for statement in [s for s in sql.split(";\n") if s.strip()]:
                connection.execute(sa.text(statement), params)
        print(f"  generated {name} in {time.monotonic() - started:.1f}s", flush=True)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(sa.text("VACUUM ANALYZE"))


# The event types of one BusyBot turn, and what they add to each counter.
_TURN_TYPES = ("user", "action", "bot", "action")
_TURN_COUNTS = [sum(column) for column in zip(*map(increments, _TURN_TYPES))]


class BusyBot:
    """Stores a new turn before each request, as the event service would for a busy bot.

    Each turn is user + action + bot + action_listen in one transaction with its derived rows
    (conversation, message_log, facets, counters), so every request finds the data changed:
    the worst case for a cache tied to the data. Conversations are new ones that talk for 30
    turns (a new one every 4 turns); every `returning`-th turn goes to an old conversation instead
    (a user who comes back after days), which makes a cached total be counted again.
    """

    TURN = f"""
    WITH ids AS (SELECT nextval(pg_get_serial_sequence('message_log', 'id')) AS ml),
    events AS (
        INSERT INTO conversation_event (conversation_id, type_name, timestamp, intent_name, action_name, policy,
                                        data, message_log_id, rasa_environment, dedupe_key)
        SELECT :s, kind, :t + n * 0.1, CASE WHEN kind = 'user' THEN :intent END,
               CASE WHEN kind = 'action' THEN act END, CASE WHEN kind = 'action' THEN 'TEDPolicy' END,
               json_build_object('event', kind, 'timestamp', :t + n * 0.1, 'text', :text)::text,
               CASE WHEN kind = 'user' THEN (SELECT ml FROM ids) END, 'production', decode(md5(:s || ':' || :t || ':' || n), 'hex')
        FROM (VALUES (0, 'user', NULL), (1, 'action', 'utter_greet'), (2, 'bot', NULL), (3, 'action', 'action_listen'))
             AS e(n, kind, act)
        RETURNING id, type_name),
    conv AS (
        INSERT INTO conversation AS c (sender_id, number_user_messages, latest_input_channel, latest_input_channel_time,
            first_event_time, latest_event_time, minimum_action_confidence, maximum_action_confidence,
            minimum_intent_confidence, maximum_intent_confidence, in_training_data)
        VALUES (:s, 1, 'rest', :t, :t, :t + 0.3, :conf, :conf, :conf, :conf, false)
        ON CONFLICT (sender_id) DO UPDATE SET number_user_messages = c.number_user_messages + 1,
            latest_event_time = GREATEST(c.latest_event_time, excluded.latest_event_time),
            minimum_action_confidence = LEAST(c.minimum_action_confidence, excluded.minimum_action_confidence)
        RETURNING sender_id)
    INSERT INTO message_log (id, hash, time, text, intent, confidence, event_id, conversation_id, in_training_data, entities)
    SELECT (SELECT ml FROM ids), md5(:text), :t, :text, :intent, :conf, (SELECT id FROM events WHERE type_name = 'user'),
           (SELECT sender_id FROM conv), false, '[]';
    INSERT INTO {facets.INTENTS.table} VALUES (:s, :intent) ON CONFLICT DO NOTHING;
    INSERT INTO {facets.ACTIONS.table} VALUES (:s, 'utter_greet'), (:s, 'action_listen') ON CONFLICT DO NOTHING;
    INSERT INTO {facets.POLICIES.table} VALUES (:s, 'TEDPolicy') ON CONFLICT DO NOTHING;
    INSERT INTO {facets.INPUT_CHANNELS.table} VALUES (:s, 'rest') ON CONFLICT DO NOTHING;
    UPDATE conversation_statistic SET {"".join(f"{c.column} = {c.column} + {n}, " for c, n in zip(COUNTERS, _TURN_COUNTS))}
        latest_event_time = GREATEST(latest_event_time, :t + 0.3)
    WHERE rasa_environment = 'production' AND shard = 0
    """

    def __init__(self, engine, conversations: int, returning: int):
        self.engine, self.old, self.returning = engine, conversations, returning
        self.rng = random.Random(7)
        self.run = secrets.token_hex(3)
        with engine.connect() as connection:
            self.clock = connection.execute(sa.text("SELECT max(latest_event_time) + 60 FROM conversation")).scalar()
        self.active: dict[str, int] = {}
        self.turns = 0

    def turn(self) -> None:
        if self.turns % 4 == 0:
            self.active[f"live-{self.run}-{self.turns}"] = 30
        if self.returning and self.turns % self.returning == self.returning - 1:
            sender = f"bench-{self.rng.randrange(1, self.old * 9 // 10)}"
        else:
            sender = self.rng.choice(list(self.active))
            self.active[sender] -= 1
            if self.active[sender] <= 0:
                del self.active[sender]
        self.clock += 1.0
        i = self.rng.randrange(len(INTENTS))
        values = {"s": sender, "t": self.clock, "intent": INTENTS[i], "text": TEXTS[i], "conf": self.rng.random()}
        with self.engine.begin() as connection:
            for statement in self.TURN.split(";\n"):
                connection.execute(sa.text(statement), values)
        self.turns += 1


def _percentiles(samples: list[float]) -> tuple[float, float, float]:
    ordered = sorted(samples)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000  # noqa: E731
    return statistics.median(ordered) * 1000, pick(0.95), pick(0.99)


def measure(url: str, headers: dict, query: str, count: int, bot: BusyBot | None) -> tuple[float, float, float, int]:
    http = requests.Session()
    http.headers.update(headers)
    samples = []
    total = 0
    for _ in range(count + 5):
        if bot:
            bot.turn()
        started = time.perf_counter()
        response = http.get(f"{url}/api/conversations?{query}", timeout=30)
        samples.append(time.perf_counter() - started)
        response.raise_for_status()
        total = int(response.headers["X-Total-Count"])
    return (*_percentiles(samples[5:]), total)


def serve(env: dict) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "services.backend"], cwd=ROOT, env={**os.environ, **env, "SELF_PORT": str(port)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if requests.get(f"{url}/api/health", timeout=5).status_code == 200:
                return process, url
        except requests.RequestException:
            pass
        time.sleep(0.2)
    process.terminate()
    raise SystemExit("rasa-x did not become healthy")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--events-per-conversation", type=int, default=20)
    parser.add_argument("--requests", type=int, default=200, help="per query and mode")
    parser.add_argument("--returning", type=int, default=50, help="every Nth turn is an old conversation's")
    parser.add_argument("--keep", action="store_true", help="keep the database (its name is printed)")
    parser.add_argument("--database", help="reuse a database an earlier --keep run generated")
    args = parser.parse_args()

    admin_engine = sa.create_engine(
        sa.engine.URL.create("postgresql+psycopg2", username=PG["DB_USER"], password=PG["DB_PASSWORD"],
                             host=PG["DB_HOST"], port=int(PG["DB_PORT"]), database="postgres"),
        isolation_level="AUTOCOMMIT",
    )  # fmt: skip
    name = args.database or f"bench_api_{secrets.token_hex(4)}"
    redis_dir = tempfile.mkdtemp(prefix="bench-redis-")
    redis_port, redis_password = free_port(), secrets.token_hex(8)
    redis = subprocess.Popen(
        ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--requirepass", redis_password,
         "--save", "", "--appendonly", "no", "--dir", redis_dir],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    processes = []
    try:
        env = {
            **PG, "DB_DATABASE": name, "RABBITMQ_HOST": "127.0.0.1", "RABBITMQ_PASSWORD": "unused",
            "REDIS_HOST": "127.0.0.1", "REDIS_PORT": str(redis_port), "REDIS_PASSWORD": redis_password, "REDIS_DB": "0",
            "RASA_X_TOKEN": secrets.token_hex(8), "RASA_TOKEN": secrets.token_hex(8), "JWT_SECRET": secrets.token_hex(8),
            "PASSWORD_SALT": secrets.token_hex(8), "RASA_X_PASSWORD": "bench-" + secrets.token_hex(8),
            "RASA_MODEL_DIR": redis_dir, "RASA_PRODUCTION_HOST": "http://127.0.0.1:9", "RASA_WORKER_HOST": "http://127.0.0.1:9",
        }  # fmt: skip
        engine = create_engine(database_settings(env))
        if not args.database:
            with admin_engine.connect() as connection:
                connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
            Migrator(engine).run()
            print(f"generating {args.conversations} conversations x {args.events_per_conversation} events in {name}", flush=True)
            generate(engine, args.conversations, args.events_per_conversation)
        else:
            # This run's admin password and salt: the account an earlier run created keeps its own.
            from services.backend.passwords import hash_password

            with engine.begin() as connection:
                connection.execute(
                    sa.text("UPDATE rasa_x_user SET password_hash = :h, failed_logins = 0, locked_until = NULL WHERE username = 'admin'"),
                    {"h": hash_password(env["RASA_X_PASSWORD"], env["PASSWORD_SALT"])},
                )  # fmt: skip
        with engine.connect() as connection:
            events = connection.execute(sa.text("SELECT count(*) FROM conversation_event")).scalar()
            conversations = connection.execute(sa.text("SELECT count(*) FROM conversation")).scalar()
        engine.dispose()
        print(f"{conversations} conversations, {events} events; gunicorn: 2 workers x 4 threads; {args.requests} sequential requests each")

        modes = (
            ("redis cache, no new events", {}, False),
            ("redis cache, busy bot", {}, True),
            ("no cache (Redis down), busy bot", {"REDIS_PORT": str(free_port())}, True),
        )
        for mode, overrides, busy in modes:
            process, url = serve({**env, **overrides})
            processes.append(process)
            token = requests.post(f"{url}/api/auth", json={"username": "admin", "password": env["RASA_X_PASSWORD"]}, timeout=30).json()["access_token"]
            bot = BusyBot(create_engine(database_settings(env)), conversations, args.returning) if busy else None
            if bot:
                mode += f" (a new turn before every request; every {args.returning}th a returning user's)"
            print(f"\n{mode}; load average {os.getloadavg()[0]:.1f}:\n  {'query':<72} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'total':>7}")
            for query in QUERIES:
                p50, p95, p99, total = measure(url, {"Authorization": f"Bearer {token}"}, query, args.requests, bot)
                print(f"  {query:<72} {p50:7.1f} {p95:7.1f} {p99:7.1f} {total:7d}", flush=True)
            if bot:
                bot.engine.dispose()
            print(f"  (load average {os.getloadavg()[0]:.1f})")
            process.terminate()
            process.wait(30)
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
        redis.terminate()
        shutil.rmtree(redis_dir, ignore_errors=True)
        if not args.keep and not args.database:
            with admin_engine.connect() as connection:
                connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        elif args.keep:
            print(f"kept database {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
