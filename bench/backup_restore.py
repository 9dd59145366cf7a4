"""How long `backup` and `restore` take, and how big the archive is, for a large installation.

    python bench/backup_restore.py [--conversations 100000] [--events 2000000]

Brings up a stack of its own (`--no-rasa`, own project, folder and port), fills the rasa-x
database with N conversations and M events (rows shaped like the event service's, each event's
JSON about 350 bytes) and Rasa's tracker database with the same M events in Rasa's `events`
table, then measures `rasax-deploy backup`, `down --volumes` and `restore` into a new folder
(which includes starting the stack again), and prints one line. Everything it made is removed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import free_port  # noqa: E402

EVENT_JSON = ("json_build_object('sender_id', 'bench-' || (i % {n}), 'event', 'user', 'timestamp', 1.7e9 + i, "
              "'text', 'message ' || md5(i::text), 'parse_data', json_build_object('intent', json_build_object("
              "'name', 'intent_' || (i % 40), 'confidence', 0.9), 'entities', '[]'::json, 'text', md5(i::text)), "
              "'input_channel', 'rest', 'message_id', md5((i * 7)::text), 'metadata', '{{}}'::json)::text")


def cli(*args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "cli", *args], capture_output=True, text=True, cwd=ROOT)
    if result.returncode != 0:
        sys.exit(f"rasax-deploy {' '.join(args)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return result


def psql(project: str, sql: str, database: str = "rasa") -> None:
    subprocess.run(["docker", "exec", f"{project}_db_1", "psql", "-q", "-U", "admin", "-d", database,
                    "-v", "ON_ERROR_STOP=1", "-c", sql], check=True, capture_output=True)


def fill(project: str, conversations: int, events: int) -> None:
    psql(project, f"INSERT INTO conversation (sender_id, number_user_messages, first_event_time, latest_event_time) "
                  f"SELECT 'bench-' || i, {events // conversations}, 1.7e9, 1.7e9 + i "
                  f"FROM generate_series(0, {conversations - 1}) i")
    psql(project, f"INSERT INTO conversation_event (conversation_id, type_name, timestamp, intent_name, data, "
                  f"dedupe_key) SELECT 'bench-' || (i % {conversations}), 'user', 1.7e9 + i, 'intent_' || (i % 40), "
                  f"{EVENT_JSON.format(n=conversations)}, decode(md5(i::text), 'hex') "
                  f"FROM generate_series(1, {events}) i")
    psql(project, "CREATE DATABASE tracker", "postgres")
    psql(project, "CREATE TABLE events (id serial PRIMARY KEY, sender_id varchar(255) NOT NULL, type_name "
                  "varchar(255) NOT NULL, timestamp float, intent_name varchar(255), action_name varchar(255), "
                  "data text); CREATE INDEX ON events (sender_id)", "tracker")
    psql(project, f"INSERT INTO events (sender_id, type_name, timestamp, intent_name, data) SELECT 'bench-' || "
                  f"(i % {conversations}), 'user', 1.7e9 + i, 'intent_' || (i % 40), "
                  f"{EVENT_JSON.format(n=conversations)} FROM generate_series(1, {events}) i", "tracker")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=2_000_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="rxbench-backup-"))
    project, port = f"rxbenchbk{uuid.uuid4().hex[:6]}", free_port()
    first, second = work / "rasa", work / "restored"
    try:
        cli("up", "--dir", str(first), "-p", project, "--http-port", f"127.0.0.1:{port}", "--no-rasa", "-q")
        started = time.monotonic()
        fill(project, args.conversations, args.events)
        print(f"filled in {time.monotonic() - started:.0f} s", flush=True)
        started = time.monotonic()
        final = json.loads(cli("backup", "--dir", str(first), "--json").stdout.splitlines()[-1])
        backup_seconds = time.monotonic() - started
        archive = Path(final["path"])
        cli("down", "--dir", str(first), "--volumes", "-y")
        started = time.monotonic()
        cli("restore", str(archive), "--dir", str(second), "-q")
        restore_seconds = time.monotonic() - started
        print(f"backup_restore: {args.conversations} conversations / {args.events} events (+ the same events in the "
              f"tracker database): backup {backup_seconds:.0f} s, archive {archive.stat().st_size / 2**20:.0f} MiB, "
              f"restore {restore_seconds:.0f} s (stack started again included)")
    finally:
        for folder in (second, first):
            if (folder / ".env").exists():
                subprocess.run([sys.executable, "-m", "cli", "down", "--dir", str(folder), "--volumes", "-y"],
                               capture_output=True, cwd=ROOT)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
