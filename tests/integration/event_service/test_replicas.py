"""Competing replicas: one shuffled, partly duplicated stream through 1 consumer and through 3
concurrent consumers must give identical tables — and the tables the ordered events imply."""

from __future__ import annotations

from tests.conftest import db_env
from tests.integration.event_service.conftest import own_queue
from tests.integration.event_service.harness import (
    assert_matches_oracle,
    publish,
    replicated_stream,
    shuffled_with_duplicates,
    snapshot,
    wait_for_events,
    wait_until,
)


def run_through(replicas: int, messages, new_database, rabbit_vhost, services, workers: int = 1):
    """`replicas` services of `workers` consumer processes each, on one queue."""
    name, engine = new_database()
    env = {**db_env(name), **own_queue(rabbit_vhost), "EVENT_SERVICE_WORKERS": str(workers)}
    running = [services(env) for _ in range(replicas)]
    for service in running:
        service.wait_consuming()
    publish(env, messages)
    distinct = len({m.body for m in messages})
    wait_for_events(engine, distinct, service=running[0])
    # Every delivery (duplicates too) handled and acked before the tables are compared.
    wait_until(
        lambda: sum(s.health()[1]["events_stored"] + s.health()[1]["duplicates_ignored"] for s in running) == len(messages),
        60,
        "all deliveries to be acknowledged",
    )
    return engine, running


def test_one_and_three_replicas_give_identical_tables(new_database, rabbit_vhost, services):
    unique = replicated_stream(40)  # 4,920 distinct events in 280 conversations
    messages = shuffled_with_duplicates(unique, fraction=0.3, seed=4)

    single, _ = run_through(1, messages, new_database, rabbit_vhost, services)
    triple, replicas = run_through(3, messages, new_database, rabbit_vhost, services)
    # And one service whose three worker processes compete inside it.
    pooled, (pool,) = run_through(1, messages, new_database, rabbit_vhost, services, workers=3)

    # The three really shared the work (competing consumers of one queue).
    assert all(s.health()[1]["events_stored"] > 0 for s in replicas)
    assert all(worker["events_stored"] > 0 for worker in pool.health()[1]["workers"])
    one, three, inside = snapshot(single), snapshot(triple), snapshot(pooled)
    for table in one:
        assert one[table] == three[table], f"{table} differs between 1 and 3 replicas"
        assert one[table] == inside[table], f"{table} differs between 1 and 3 worker processes"
    assert len(one["conversation_event"]) == len(unique)
    assert_matches_oracle(triple, messages)
