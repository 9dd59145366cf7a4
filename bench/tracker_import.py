"""How fast `conversations import` moves a Rasa tracker store into the event store.

    python bench/tracker_import.py [--events 1000000] [--store-events 100000]

Builds a PostgreSQL tracker store of N events in Rasa's own table (copies of the real captured
Rasa events, each copy with its own sender ids and times, written as SQLTrackerStore.save
writes them), then, each into a fresh migrated database, measures in events/s:

  import           `import_conversations` as the CLI runs it: read (one read-only snapshot,
                   ordered by conversation), parse, store (EventStore.write, batches of 2000)
  import again     the same import once more: every event recognised and skipped (what a
                   re-run after an interruption costs for the part already done)
  dry run          read, parse and look the keys up, nothing written
  store alone      EventStore.write on the first --store-events events, parsed before the
                   clock starts: the event service's own storage path without a reader

The event service's broker-to-database rate is bench/ingest.py's (README, "Event service").
Server: BENCH_PG_HOST/PORT/USER/PASSWORD (default 127.0.0.1:5432 postgres, trust auth); the
bench's databases are dropped afterwards. Uses the tests' helpers (tests/).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from ingest import PG, admin, db_env  # noqa: E402

from services.common.config import database_settings  # noqa: E402
from services.common.db import create_engine  # noqa: E402
from services.db_migration.migrator import COMPLETED, Migrator  # noqa: E402
from services.event_service import tracker_import as ti  # noqa: E402
from services.event_service.parsing import parse_event  # noqa: E402
from services.event_service.store import EventStore  # noqa: E402
from tests.integration.event_service.harness import fixture_messages  # noqa: E402
from tests.integration.event_service.tracker_store import create_tracker_store, tracker_row  # noqa: E402

CHUNK = 100_000


def tracker_rows(n: int):
    """N rows in chunks: copies of the captured conversations, each its own senders and times."""
    base = [json.loads(message.body) for message in fixture_messages()]
    chunk, copy = [], 0
    while n > 0:
        for event in base[:n]:
            event = dict(event, sender_id=f"bench{copy}-{event['sender_id']}", timestamp=event["timestamp"] + copy * 10_000)
            chunk.append(tracker_row(json.dumps(event).encode()))
            if len(chunk) == CHUNK:
                yield chunk
                chunk = []
        n -= len(base)
        copy += 1
    if chunk:
        yield chunk


def new_database(prefix: str) -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin(f'CREATE DATABASE "{name}"')
    return name


def migrated(prefix: str) -> str:
    name = new_database(prefix)
    engine = create_engine(database_settings(db_env(name)))
    try:
        assert Migrator(engine).run().status == COMPLETED
    finally:
        engine.dispose()
    return name


def timed_import(store: ti.TrackerStore, database: str, dry_run: bool = False) -> dict:
    summary = ti.import_conversations(store, database_settings(db_env(database)), dry_run=dry_run,
                                      progress=lambda p: print("   ", json.dumps(p.as_dict()), flush=True))
    return summary.as_dict()


def store_alone(n: int) -> float:
    events = [parse_event(json.dumps({"sender_id": row["sender_id"], **json.loads(row["data"])}).encode())
              for chunk in tracker_rows(n) for row in chunk]
    database = migrated("rasax_bench_ti_store")
    try:
        store = EventStore(database_settings(db_env(database)))
        started = time.monotonic()
        for i in range(0, len(events), ti.BATCH_SIZE):
            store.write(events[i:i + ti.BATCH_SIZE])
        elapsed = time.monotonic() - started
        store.close()
        return len(events) / elapsed
    finally:
        admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--store-events", type=int, default=100_000)
    args = parser.parse_args()

    tracker = new_database("rasax_bench_tracker")
    databases = [tracker]
    try:
        url = f"postgresql://{PG['user']}:{PG['password']}@{PG['host']}:{PG['port']}/{tracker}"
        started = time.monotonic()
        for chunk in tracker_rows(args.events):
            create_tracker_store(url, chunk)
        print(f"tracker store of {args.events:,} events built in {time.monotonic() - started:.0f} s", flush=True)
        store = ti.TrackerStore.parse(url)
        target = migrated("rasax_bench_ti")
        databases.append(target)
        results = {}
        for name, dry_run in (("dry run", True), ("import", False), ("import again", False)):
            print(f"{name}:", flush=True)
            summary = timed_import(store, target, dry_run)
            assert summary["complete"] and summary["refused"] == 0, summary
            results[name] = summary["events_per_second"]
        results["store alone"] = store_alone(args.store_events)
        print(f"\n{args.events:,} events ({os.cpu_count()} cores), events/s:")
        for name, rate in results.items():
            print(f"  {name:<14} {rate:>10,.0f}")
    finally:
        for name in databases:
            admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
