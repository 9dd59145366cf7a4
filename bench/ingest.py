"""How fast Rasa events get from RabbitMQ into PostgreSQL, against the floors that bound it.

    python bench/ingest.py [--events 100000] [--rounds 3]

In ONE run, each round publishes N events built from the real captured Rasa events (each copy
of the captured conversations gets its own sender ids and times) and measures, in events/s:

  raw consume      pika, no database: prefetch 1000, one basic_ack(multiple=True) per 500
                   (the issue's floor: one plain consumer); also printed for as many such
                   consumers at once as the service has worker processes, for comparison
  COPY             PostgreSQL COPY of the N event rows into conversation_event (client-side
                   formatting done before the clock starts: the server's ingest rate)
  naive consumer   prefetch 1, one transaction per event (the service's own store), ack after
                   commit; measured on the first --naive-events (default 5000), it is slow
  event service    `python -m services.event_service` as deployed (EVENT_SERVICE_WORKERS
                   processes, by default one per CPU up to 4):
                     backlog — N events already queued when it starts consuming
                     steady  — N events published while it runs (the publisher's rate is
                               printed too: the service cannot be faster than its input)

Each round uses a fresh database and fresh queues. The median of the rounds is printed (the
figures vary ±20% run to run), with the service's peak RSS per round: the sum of the peak
(VmHWM) of each of its processes.

Servers: BENCH_PG_HOST/PORT/USER/PASSWORD (default 127.0.0.1:5432 postgres, trust auth) and
BENCH_RABBITMQ_HOST/PORT/USERNAME/PASSWORD (default 127.0.0.1:5672 guest/guest); a vhost and
databases of the bench's own are created (rabbitmqctl must work) and removed afterwards.
The events and free ports come from the tests' helpers (tests/), so the `test` extra must be
installed.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid

import pika
import psycopg2

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from services.common.amqp import connection_parameters, declare_rasa_topology, rasa_properties  # noqa: E402
from services.common.config import database_settings, event_service_workers, rabbit_settings  # noqa: E402
from services.common.db import create_engine  # noqa: E402
from services.db_migration.migrator import COMPLETED, Migrator  # noqa: E402
from services.event_service.parsing import parse_event  # noqa: E402
from services.event_service.event_table import COLUMNS, copy_row  # noqa: E402
from services.event_service.store import EventStore  # noqa: E402
from tests.conftest import free_port  # noqa: E402
from tests.integration.event_service.harness import fixture_messages, replicated_stream  # noqa: E402

# The service's worker processes, as it will choose them from EVENT_SERVICE_WORKERS or the CPUs.
WORKERS = event_service_workers()

PG = {
    "host": os.environ.get("BENCH_PG_HOST", "127.0.0.1"),
    "port": os.environ.get("BENCH_PG_PORT", "5432"),
    "user": os.environ.get("BENCH_PG_USER", "postgres"),
    "password": os.environ.get("BENCH_PG_PASSWORD", "unused-with-trust-auth"),
}
RABBIT = {
    "RABBITMQ_HOST": os.environ.get("BENCH_RABBITMQ_HOST", "127.0.0.1"),
    "RABBITMQ_PORT": os.environ.get("BENCH_RABBITMQ_PORT", "5672"),
    "RABBITMQ_USERNAME": os.environ.get("BENCH_RABBITMQ_USERNAME", "guest"),
    "RABBITMQ_PASSWORD": os.environ.get("BENCH_RABBITMQ_PASSWORD", "guest"),
}


# ----- set-up -------------------------------------------------------------------------------
def build_events(n: int) -> list[tuple[bytes, str | None]]:
    """N events: copies of the captured conversations, each copy with its own senders and times."""
    copies = -(-n // len(fixture_messages()))
    return [(message.body, message.app_id) for message in replicated_stream(copies, "bench")[:n]]


def admin(sql: str) -> None:
    connection = psycopg2.connect(dbname="postgres", **PG)
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(sql)
    connection.close()


def db_env(database: str) -> dict[str, str]:
    return {"DB_HOST": PG["host"], "DB_PORT": str(PG["port"]), "DB_USER": PG["user"], "DB_PASSWORD": PG["password"], "DB_DATABASE": database}


class Bench:
    def __init__(self, events: list, naive_events: int):
        self.events = events
        self.naive_events = naive_events
        self.vhost = f"rasax_bench_{uuid.uuid4().hex[:8]}"
        self.databases: list[str] = []

    def __enter__(self):
        subprocess.run(["rabbitmqctl", "-q", "add_vhost", self.vhost], check=True, capture_output=True)
        subprocess.run(["rabbitmqctl", "-q", "set_permissions", "-p", self.vhost, RABBIT["RABBITMQ_USERNAME"], ".*", ".*", ".*"],
                       check=True, capture_output=True)
        return self

    def __exit__(self, *exc):
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", self.vhost], capture_output=True)
        for database in self.databases:
            admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')

    def database(self) -> dict[str, str]:
        name = f"rasax_bench_{uuid.uuid4().hex[:8]}"
        admin(f'CREATE DATABASE "{name}"')
        self.databases.append(name)
        env = db_env(name)
        engine = create_engine(database_settings(env))
        assert Migrator(engine).run().status == COMPLETED
        engine.dispose()
        return env

    def rabbit(self, queue: str, exchange: str) -> dict[str, str]:
        return {**RABBIT, "RABBITMQ_VHOST": self.vhost, "RABBITMQ_QUEUE": queue, "RABBITMQ_EXCHANGE": exchange}

    # ----- publishing ---------------------------------------------------------------------------
    def publish(self, env: dict[str, str], queues: list[str]) -> float:
        """Publish every event to env's exchange with `queues` bound to it; returns events/s."""
        settings = rabbit_settings(env)
        connection = pika.BlockingConnection(connection_parameters(settings))
        channel = connection.channel()
        for queue in queues:
            declare_rasa_topology(channel, rabbit_settings({**env, "RABBITMQ_QUEUE": queue}))
        started = time.perf_counter()
        for body, app_id in self.events:
            channel.basic_publish(settings.exchange, "", body, rasa_properties(app_id))
        # A round trip after the last publish: the broker has routed them all.
        channel.queue_declare(queues[0], durable=True, passive=True)
        elapsed = time.perf_counter() - started
        connection.close()
        return len(self.events) / elapsed

    # ----- the measurements -----------------------------------------------------------------------
    def _consume(self, env: dict[str, str], prefetch: int, count: int, handle) -> float:
        """Consume `count` messages with `handle(channel, method, properties, body)`; events/s."""
        settings = rabbit_settings(env)
        connection = pika.BlockingConnection(connection_parameters(settings))
        channel = connection.channel()
        channel.basic_qos(prefetch_count=prefetch)
        seen = [0]

        def on_message(ch, method, properties, body):
            seen[0] += 1
            handle(ch, method, properties, body, seen[0] == count)
            if seen[0] == count:
                ch.stop_consuming()

        channel.basic_consume(settings.queue, on_message)
        started = time.perf_counter()
        channel.start_consuming()
        elapsed = time.perf_counter() - started
        connection.close()
        return count / elapsed

    def raw_consume(self, env: dict[str, str], count: int | None = None) -> float:
        unacked = [0]

        def ack_every_500(ch, method, properties, body, last):
            unacked[0] += 1
            if unacked[0] >= 500 or last:
                ch.basic_ack(method.delivery_tag, multiple=True)
                unacked[0] = 0

        return self._consume(env, 1000, count or len(self.events), ack_every_500)

    def raw_consume_parallel(self, env: dict[str, str], consumers: int) -> float:
        """`consumers` plain consumers in processes of their own, sharing the queue."""
        share = len(self.events) // consumers
        script = (
            "import sys, time; sys.path.insert(0, sys.argv[1]); import ingest; "
            "b = ingest.Bench([], 0); sys.stdin.readline(); "
            "b.raw_consume(dict(a.split('=', 1) for a in sys.argv[3:]), int(sys.argv[2])); "
            "print(time.perf_counter(), flush=True)"
        )
        args = [f"{key}={value}" for key, value in env.items()]
        processes = [
            subprocess.Popen([sys.executable, "-c", script, os.path.dirname(__file__), str(share), *args],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            for _ in range(consumers)
        ]
        time.sleep(1.0)  # interpreters up and imported before the clock starts
        started = time.perf_counter()
        for process in processes:
            process.stdin.write("go\n")
            process.stdin.flush()
        finished = max(float(process.communicate()[0]) for process in processes)
        return share * consumers / (finished - started)

    def copy_rate(self, env: dict[str, str]) -> float:
        parsed = [parse_event(body, app_id) for body, app_id in self.events]
        buffer = io.StringIO()
        for e in parsed:
            buffer.write(f"{copy_row(e)}\n")
        connection = psycopg2.connect(dbname=env["DB_DATABASE"], **PG)
        buffer.seek(0)
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.copy_expert(
                f"COPY conversation_event ({COLUMNS}) FROM STDIN",
                buffer,
            )
        connection.commit()
        elapsed = time.perf_counter() - started
        connection.close()
        return len(parsed) / elapsed

    def naive(self, env: dict[str, str]) -> float:
        store = EventStore(database_settings(env))

        def one_transaction_each(ch, method, properties, body, last):
            store.write([parse_event(body, properties.app_id)])
            ch.basic_ack(method.delivery_tag)

        try:
            return self._consume(env, 1, min(self.naive_events, len(self.events)), one_transaction_each)
        finally:
            store.close()

    def service(self, env: dict[str, str], steady: bool) -> tuple[float, int, float | None]:
        """(events/s, peak RSS in KiB, publisher events/s when steady)."""
        port = free_port()
        log = tempfile.NamedTemporaryFile(prefix="event-service-", suffix=".log", delete=False)
        process = subprocess.Popen(
            [sys.executable, "-m", "services.event_service"], cwd=ROOT, env={**os.environ, **env, "SELF_PORT": str(port)},
            stdout=log, stderr=log,
        )
        total = len(self.events)
        publish_rate = None
        try:
            started = wait_health(port, lambda h: h.get("state") == "consuming")
            if steady:
                publisher = {}
                thread = threading.Thread(target=lambda: publisher.update(rate=self.publish(env, [env["RABBITMQ_QUEUE"]])))
                started = time.perf_counter()
                thread.start()
            finished = wait_health(port, lambda h: h.get("events_stored", 0) >= total, timeout=600)
            if steady:
                thread.join()
                publish_rate = publisher["rate"]
            workers = [worker["pid"] for worker in health(port)["workers"]]
            rss = sum(peak_rss(pid) for pid in [process.pid, *workers])
        except TimeoutError:
            with open(log.name, "rb") as f:
                print(f.read()[-3000:].decode(errors="replace"), file=sys.stderr)
            raise
        finally:
            process.terminate()
            process.wait(30)
            log.close()
            os.unlink(log.name)
        return total / (finished - started), rss, publish_rate


def peak_rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))


def health(port: int) -> dict:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return json.loads(exc.read())
    except OSError:
        return {}


def wait_health(port: int, condition, timeout: float = 120) -> float:
    """Poll /health every 50 ms; the time at which `condition(body)` first held."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        body = health(port)
        if condition(body):
            return time.perf_counter()
        time.sleep(0.05)
    raise TimeoutError(f"event service: condition not met within {timeout}s")


def one_round(bench: Bench) -> dict:
    suffix = uuid.uuid4().hex[:6]
    exchange = f"bench-{suffix}"
    raw_env = bench.rabbit(f"raw_{suffix}", exchange)
    parallel_env = bench.rabbit(f"raw_parallel_{suffix}", exchange)
    backlog_env = {**bench.database(), **bench.rabbit(f"backlog_{suffix}", exchange)}
    naive_env = {**bench.database(), **bench.rabbit(f"naive_{suffix}", exchange)}
    queues = [env["RABBITMQ_QUEUE"] for env in (raw_env, parallel_env, backlog_env, naive_env)]
    # One publish fills the four queues (the exchange is a fanout, as Rasa's).
    result = {"publish (4 queues)": bench.publish(raw_env, queues)}
    result["raw consume"] = bench.raw_consume(raw_env)
    result[f"raw consume ×{WORKERS}"] = bench.raw_consume_parallel(parallel_env, WORKERS)
    result["COPY"] = bench.copy_rate(bench.database())
    result["naive consumer"] = bench.naive(naive_env)
    result["event service, backlog"], rss_backlog, _ = bench.service(backlog_env, steady=False)
    steady_env = {**bench.database(), **bench.rabbit(f"steady_{suffix}", f"bench-steady-{suffix}")}
    result["event service, steady"], rss_steady, result["publisher (steady)"] = bench.service(steady_env, steady=True)
    result["peak RSS KiB"] = max(rss_backlog, rss_steady)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--naive-events", type=int, default=5_000)
    args = parser.parse_args()

    events = build_events(args.events)
    rounds = []
    with Bench(events, args.naive_events) as bench:
        for index in range(args.rounds):
            result = one_round(bench)
            rounds.append(result)
            print(f"round {index + 1}: " + ", ".join(f"{k} {v:,.0f}" for k, v in result.items()), flush=True)

    median = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
    print(f"\nmedian of {len(rounds)} rounds, {args.events:,} events ({os.cpu_count()} cores, "
          f"the service with {WORKERS} worker processes):")
    for key, value in median.items():
        unit = "" if key == "peak RSS KiB" else " events/s"
        print(f"  {key:<24} {value:>12,.0f}{unit}")
    # Ratios are taken within each round (same machine load), then their median.
    def ratio(numerator, denominator):
        return statistics.median(numerator(r) / denominator(r) for r in rounds)

    floor = lambda r: min(r["raw consume"], r["COPY"])  # noqa: E731
    backlog = lambda r: r["event service, backlog"]  # noqa: E731
    steady = lambda r: r["event service, steady"]  # noqa: E731
    naive = lambda r: r["naive consumer"]  # noqa: E731
    print(f"  backlog: {ratio(backlog, floor):.0%} of min(raw consume, COPY) (target ≥ 65%), "
          f"{ratio(backlog, naive):.1f}× the naive consumer (target ≥ 20×)")
    print(f"  steady:  {ratio(steady, floor):.0%} of min(raw consume, COPY), {ratio(steady, naive):.1f}× the naive "
          f"consumer; {ratio(steady, lambda r: r['publisher (steady)']):.0%} of the publisher's rate (100% = kept up)")
    parallel = lambda r: min(r[f"raw consume ×{WORKERS}"], r["COPY"])  # noqa: E731
    print(f"  against {WORKERS} plain consumers at once (as many connections as the service): backlog "
          f"{ratio(backlog, parallel):.0%}, steady {ratio(steady, parallel):.0%} of min(raw consume ×{WORKERS}, COPY)")
    print(f"  peak RSS per round (KiB): {[r['peak RSS KiB'] for r in rounds]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
