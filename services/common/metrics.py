"""Prometheus metrics: how a service without a web framework serves them.

Each service names its own metrics, all prefixed `rasax_` (services/backend/metrics.py,
services/event_service/metrics.py, services/db_migration/metrics.py). The event service and the
migrator build theirs at scrape time from the state they already keep for /health, so the two
endpoints can never disagree; this turns such collectors into a HealthServer route.
"""

from __future__ import annotations

from typing import Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.registry import Collector

PREFIX = "rasax_"


def metrics_route(*collectors: Collector) -> Callable[[], tuple[int, bytes, str]]:
    """A HealthServer route answering the collectors' metrics in Prometheus' text format."""
    registry = CollectorRegistry(auto_describe=True)
    for collector in collectors:
        registry.register(collector)

    def route() -> tuple[int, bytes, str]:
        return 200, generate_latest(registry), CONTENT_TYPE_LATEST

    return route
