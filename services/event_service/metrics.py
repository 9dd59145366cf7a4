"""The event service's Prometheus metrics, served at GET /metrics on its health port.

Built at scrape time from the counters the worker processes already report to the parent for
/health (workers.py), so no second set of counters exists and /metrics agrees with /health.
Like those counters they survive a worker's restart: the parent keeps what an exited worker
counted.
"""

from __future__ import annotations

import bisect
import collections
import math

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

# Upper bounds of the batch latency histogram, in seconds: from the few milliseconds of a
# single event on an idle service to the seconds of a full prefetch window under load.
BATCH_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, math.inf)
SUM = "sum"


def observe(histogram: collections.Counter, seconds: float) -> None:
    """Count one batch latency into `histogram`: batches per bucket (not cumulative, so that
    reports of several workers add up with Counter.update) and their sum under SUM."""
    histogram[str(BATCH_BUCKETS[bisect.bisect_left(BATCH_BUCKETS, seconds)])] += 1
    histogram[SUM] += seconds


class PoolCollector(Collector):
    def __init__(self, pool):
        self.pool = pool

    def collect(self):
        totals = self.pool.totals()
        for name, help_text, key in (
            ("rasax_events_consumed", "Messages taken off the queue and acknowledged", "events_consumed"),
            ("rasax_events_stored", "Events stored in PostgreSQL", "events_stored"),
            ("rasax_events_deduplicated", "Events received again (a redelivery, a replay) and ignored",
             "duplicates_ignored"),
            ("rasax_exported_events_received", "Events published by `rasa export`", "exported_events_received"),
            ("rasax_event_worker_restarts", "Consumer processes that died and were started again", "restarts"),
        ):  # fmt: skip
            yield CounterMetricFamily(name, help_text, value=totals[key])
        dead = CounterMetricFamily(
            "rasax_events_dead_lettered", "Messages moved to the dead-letter queue, by reason", labels=["reason"]
        )
        for reason, count in sorted(totals["dead_letter_reasons"].items()):
            dead.add_metric([reason], count)
        yield dead
        histogram = totals["batch_seconds"]
        cumulative, buckets = 0, []
        for bound in BATCH_BUCKETS:
            cumulative += histogram.get(str(bound), 0)
            buckets.append(("+Inf" if bound == math.inf else str(bound), cumulative))
        yield HistogramMetricFamily(
            "rasax_event_batch_seconds", "From a batch's hand-over to a writer to its acknowledgement after commit",
            buckets=buckets, sum_value=histogram.get(SUM, 0.0),
        )  # fmt: skip
        depth = GaugeMetricFamily(
            "rasax_event_queue_messages",
            "Messages waiting in the queue and the dead-letter queue, as the broker last said (the queue lag)",
            labels=["queue"],
        )
        for queue, count in sorted(totals["queue_messages"].items()):
            depth.add_metric([queue], count)
        yield depth
        yield GaugeMetricFamily("rasax_event_workers_consuming", "Consumer processes consuming now",
                                value=totals["workers_consuming"])
