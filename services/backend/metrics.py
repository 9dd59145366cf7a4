"""rasa-x's Prometheus metrics and GET /metrics.

gunicorn runs several worker processes and a scrape reaches any one of them, so every worker
writes its values to files in PROMETHEUS_MULTIPROC_DIR and /metrics adds up the files of all
(prometheus_client's multi-process mode). prometheus_client chooses that mode from the
environment when it is first imported, which is why `python -m services.backend` makes sure the
variable is set before Python starts (see __main__). Every metric here has labels, so importing
this module writes no file yet: __main__ can still create and empty the folder. An app made
in-process (the tests' Flask client) counts in its own process only.

/metrics needs no credentials: it is meant for a Prometheus on the stack's internal network,
which reaches rasa-x directly. rasa-x's port is not published and nginx answers /metrics with
404, so it is not reachable from outside; it holds counts and latencies by route template, never
a conversation, user name or token.
"""

from __future__ import annotations

import os
import time

from flask import Blueprint, Flask, Response, g, request
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import multiprocess

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
# A request that matched no route: one label value, however many paths are probed.
UNMATCHED = "unmatched"

REQUESTS = Counter("rasax_http_requests", "HTTP requests answered, by method, route (the URL rule) and status",
                   ("method", "route", "status"))
LATENCY = Histogram("rasax_http_request_duration_seconds", "Time to answer an HTTP request, by method and route",
                    ("method", "route"))
IN_PROGRESS = Gauge("rasax_http_requests_in_progress", "HTTP requests being answered, by method", ("method",),
                    multiprocess_mode="livesum")
CACHE = Counter("rasax_cache_lookups", "Lookups of cached reads by entry and result: hit, miss (computed and "
                "stored), unavailable (Redis down: read from PostgreSQL)", ("entry", "result"))
TRAINING_JOBS = Counter("rasax_training_jobs", "Training jobs this rasa-x ran to their end, by outcome: finished, "
                        "failed (Rasa refused the data or the model could not be stored), failed_retryable", ("outcome",))

bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
def metrics():
    if os.environ.get(MULTIPROCESS_DIR):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


def instrument(app: Flask) -> None:
    """Count and time every request of `app`, and serve /metrics. Call before any other
    before_request hook, so that a request a later hook refuses is timed too."""

    @app.before_request
    def _start():
        g.rasax_request_started = time.perf_counter()
        IN_PROGRESS.labels(request.method).inc()

    @app.after_request
    def _count(response):
        route = request.url_rule.rule if request.url_rule is not None else UNMATCHED
        REQUESTS.labels(request.method, route, str(response.status_code)).inc()
        started = g.get("rasax_request_started")
        if started is not None:
            LATENCY.labels(request.method, route).observe(time.perf_counter() - started)
        return response

    @app.teardown_request
    def _done(_exc):
        if g.pop("rasax_request_started", None) is not None:
            IN_PROGRESS.labels(request.method).dec()

    app.register_blueprint(bp)


def child_exit(_server, worker) -> None:
    """gunicorn's hook in the master when a worker exits: its live gauges no longer count."""
    multiprocess.mark_process_dead(worker.pid)
