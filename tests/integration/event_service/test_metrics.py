"""The event service's /metrics after real traffic: the fixture events of Rasa 3.6, duplicates and
bad messages published to a real RabbitMQ, stored in a real PostgreSQL by two worker processes."""

from __future__ import annotations

import math
import os
import signal

from tests.integration.event_service.harness import Message, fixture_messages, publish, wait_for_events, wait_until
from tests.integration.metrics_scrape import missing_from_dashboard_view, scrape, value

from services.event_service.consumer import dead_letter_queue


def consuming(services, env: dict):
    """A service of `env` consuming, and the URL of its metrics."""
    service = services(env)
    service.wait_consuming()
    return service, f"http://127.0.0.1:{service.port}/metrics"


def test_counters_move_by_exactly_what_was_published(migrated_database, service_env, services):
    _, engine = migrated_database
    env = {**service_env, "EVENT_SERVICE_WORKERS": "2"}
    service, url = consuming(services, env)
    before = scrape(url)
    assert value(before, "rasax_events_consumed_total") == 0
    assert value(before, "rasax_event_workers_consuming") == 2

    unique = fixture_messages()  # 123 events
    duplicates = unique[:40]
    bad = [Message(b"not json at all"), Message(b"[1, 2, 3]"), Message(b"\xff\xfe not utf-8")]
    publish(env, unique + duplicates + bad)
    published = len(unique) + len(duplicates) + len(bad)
    wait_for_events(engine, len(unique), service=service)
    wait_until(lambda: value(scrape(url), "rasax_events_consumed_total") == published, 60, "every message consumed")

    after = scrape(url)
    assert value(after, "rasax_events_consumed_total") == published
    assert value(after, "rasax_events_stored_total") == len(unique)
    assert value(after, "rasax_events_deduplicated_total") == len(duplicates)
    dead = after["rasax_events_dead_lettered_total"]
    assert sum(dead.values()) == len(bad)
    assert {dict(labels)["reason"] for labels in dead} == {"body is not JSON", "body is not a JSON object",
                                                          "body is not UTF-8"}
    # Every acknowledged batch is one latency observation; /health counts the same batches.
    batches = value(after, "rasax_event_batch_seconds_count")
    assert batches == service.health()[1]["batches"] > 0
    assert value(after, "rasax_event_batch_seconds_bucket", le="+Inf") == batches
    assert 0 < value(after, "rasax_event_batch_seconds_sum") < 60 * batches
    buckets = [(float(dict(labels)["le"]), count) for labels, count in after["rasax_event_batch_seconds_bucket"].items()]
    counts = [count for _, count in sorted(buckets, key=lambda b: b[0] if b[0] != math.inf else 1e9)]
    assert counts == sorted(counts)  # cumulative
    assert missing_from_dashboard_view("event-service", after) == set()

    # The broker's own count of what waits: nothing in the queue, the bad messages in the
    # dead-letter queue (nobody consumes it), measured within QUEUE_CHECK_SECONDS.
    queue = service_env["RABBITMQ_QUEUE"]
    wait_until(
        lambda: (value(samples := scrape(url), "rasax_event_queue_messages", queue=queue),
                 value(samples, "rasax_event_queue_messages", queue=dead_letter_queue(queue))) == (0, len(bad)),
        15, "the queue depths to be measured",
    )  # fmt: skip


def test_counters_survive_a_worker_restart(service_env, services):
    """A worker killed by the kernel is replaced; what it counted stays in the totals."""
    env = {**service_env, "EVENT_SERVICE_WORKERS": "1"}
    service, url = consuming(services, env)
    messages = fixture_messages()
    publish(env, messages)
    wait_until(lambda: value(scrape(url), "rasax_events_consumed_total") == len(messages), 60, "the first round")
    os.kill(service.worker_pids()[0], signal.SIGKILL)
    wait_until(lambda: value(scrape(url), "rasax_event_worker_restarts_total") == 1, 30, "the worker's restart")
    service.wait_consuming()
    publish(env, messages)  # the same events again: all duplicates
    wait_until(lambda: value(scrape(url), "rasax_events_consumed_total") == 2 * len(messages), 60, "the second round")
    samples = scrape(url)
    assert value(samples, "rasax_events_stored_total") == len(messages)
    assert value(samples, "rasax_events_deduplicated_total") == len(messages)
    assert value(samples, "rasax_event_batch_seconds_count") == service.health()[1]["batches"]
