"""What the event service's store costs PostgreSQL per event, without the broker in the way.

    python bench/store.py [--events 100000] [--batch 2000] [--rounds 3] [--writers 1|2]

Builds N events the way bench/ingest.py does (copies of the real captured Rasa events, each
copy with its own sender ids and times), parses them with the service's `parse_event` before
the clock starts, and writes them into a fresh migrated database with `EventStore.write` in
batches, as the consumer does. Printed per round and as the median of the rounds:

  events/s        wall time of all the writes
  server µs/ev    CPU (utime+stime from /proc/<pid>/stat) of EVERY `postgres` process on the
                  machine — the writers' backends, walwriter, checkpointer, autovacuum, but also
                  whatever else uses this server meanwhile (other tests, other benches)
  backend µs/ev   CPU of the writers' own backends only: the store's statements, less noisy
  python µs/ev    CPU of the writing Python processes (process_time)
  WAL B/ev        bytes of WAL written meanwhile (pg_current_wal_lsn), server-wide too

`--writers 2` runs two writer processes at once on interleaved halves of the events (even and
odd positions), so both write to the same conversations at the same time: competing replicas,
as the service is deployed.

Server: BENCH_PG_HOST/PORT/USER/PASSWORD (default 127.0.0.1:5432 postgres, trust auth). The
bench's databases are dropped afterwards.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import time
import uuid

import psycopg2

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from ingest import PG, admin, build_events, db_env  # noqa: E402

from services.common.config import database_settings  # noqa: E402
from services.common.db import create_engine  # noqa: E402
from services.db_migration.migrator import COMPLETED, Migrator  # noqa: E402
from services.event_service.parsing import parse_event  # noqa: E402
from services.event_service.store import EventStore  # noqa: E402

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int | str) -> float:
    with open(f"/proc/{pid}/stat") as f:
        # comm may hold spaces: the fields after it start after the last ')'.
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def postgres_cpu() -> float:
    """CPU seconds of every live `postgres` process (a process that exits meanwhile is lost)."""
    total = 0.0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/comm") as f:
                if f.read().strip() != "postgres":
                    continue
            total += cpu_seconds(pid)
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return total


def create_database() -> tuple[str, dict[str, str]]:
    name = f"rasax_bench_store_{uuid.uuid4().hex[:8]}"
    admin(f'CREATE DATABASE "{name}"')
    env = db_env(name)
    engine = create_engine(database_settings(env))
    try:
        assert Migrator(engine).run().status == COMPLETED
    finally:
        engine.dispose()
    return name, env


def wal_lsn(env: dict[str, str]) -> int:
    connection = psycopg2.connect(dbname=env["DB_DATABASE"], **PG)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_current_wal_lsn() - '0/0'")
            return int(cursor.fetchone()[0])
    finally:
        connection.close()


def writer(env: dict[str, str], raw: list, batch: int, ready, start, finish, results) -> None:
    """One replica: parse before the clock, connect, wait for the start, write every batch;
    the connection stays open until `finish`, so its backend is still there to be measured."""
    events = [parse_event(body, app_id) for body, app_id in raw]
    store = EventStore(database_settings(env))
    with store._cursor() as cursor:  # connect (and create the temp table) before the clock
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    store._connection.commit()
    ready.put(backend)
    start.wait()
    cpu = time.process_time()
    inserted = 0
    for i in range(0, len(events), batch):
        result = store.write(events[i : i + batch])
        assert not result.rejected, result.rejected[:1]
        inserted += result.inserted
    results.put((time.process_time() - cpu, inserted))
    finish.wait()
    store.close()


def one_round(raw: list, batch: int, writers: int) -> dict:
    name, env = create_database()
    try:
        context = multiprocessing.get_context("fork")
        ready, results, start, finish = context.Queue(), context.Queue(), context.Event(), context.Event()
        processes = [
            context.Process(target=writer, args=(env, raw[i::writers], batch, ready, start, finish, results))
            for i in range(writers)
        ]
        for process in processes:
            process.start()
        backends = [ready.get(timeout=600) for _ in processes]
        wal = wal_lsn(env)
        server = postgres_cpu()
        backend = sum(cpu_seconds(pid) for pid in backends)
        started = time.perf_counter()
        start.set()
        outcomes = [results.get(timeout=3600) for _ in processes]
        elapsed = time.perf_counter() - started
        backend = sum(cpu_seconds(pid) for pid in backends) - backend
        server = postgres_cpu() - server
        wal = wal_lsn(env) - wal
        finish.set()
        for process in processes:
            process.join()
        inserted = sum(o[1] for o in outcomes)
        assert inserted == len(raw), f"{inserted} of {len(raw)} events stored"
        n = len(raw)
        return {
            "events/s": n / elapsed,
            "server µs/ev": server / n * 1e6,
            "backend µs/ev": backend / n * 1e6,
            "python µs/ev": sum(o[0] for o in outcomes) / n * 1e6,
            "WAL B/ev": wal / n,
        }
    finally:
        admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--writers", type=int, default=1, help="concurrent writer processes (competing replicas)")
    args = parser.parse_args()

    raw = build_events(args.events)
    rounds = []
    for index in range(args.rounds):
        result = one_round(raw, args.batch, args.writers)
        rounds.append(result)
        print(f"round {index + 1}: " + ", ".join(f"{k} {v:,.1f}" for k, v in result.items()), flush=True)
    print(f"\nmedian of {len(rounds)} rounds, {args.events:,} events, batches of {args.batch}, "
          f"{args.writers} writer(s), {os.cpu_count()} cores:")
    for key in rounds[0]:
        print(f"  {key:<14} {statistics.median(r[key] for r in rounds):>10,.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
