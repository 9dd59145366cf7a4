"""`python -m services.backend`: wait for the schema, then serve the app under gunicorn.

Workers and threads come from GUNICORN_WORKERS / GUNICORN_THREADS (defaults suit a small VM);
each worker builds its own app, since database pools must not cross a fork. The workers share
their metrics through files in PROMETHEUS_MULTIPROC_DIR (see metrics.py).
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile

from gunicorn.app.base import BaseApplication

from services.common.config import load_or_exit, load_settings
from services.common.db import create_engine, describe
from services.common.logging import setup_logging
from services.db_migration import wait_for_schema

from . import live, metrics
from .app import DEFAULT_PORT, create_app

log = logging.getLogger("services.backend")


class _Gunicorn(BaseApplication):
    def __init__(self, settings, options: dict):
        self.settings = settings
        self.options = options
        super().__init__()

    def load_config(self):
        for key, value in self.options.items():
            # Older gunicorns (the pinned range starts at 22) lack some settings, e.g. the
            # control socket; skipping them is right, since they also lack the feature.
            if key in self.cfg.settings:
                self.cfg.set(key, value)

    def load(self):
        return create_app(self.settings)


def _int_env(name: str, default: int) -> int:
    try:
        return max(1, int(os.environ.get(name) or default))
    except ValueError:
        print(f"configuration error: {name}: must be a whole number", flush=True)
        raise SystemExit(2) from None


def fallback_metrics_directory(port: int) -> str:
    """Where the workers' metrics go when PROMETHEUS_MULTIPROC_DIR is unset: one folder per port."""
    return os.path.join(tempfile.gettempdir(), f"rasax-backend-metrics-{port}")


def _metrics_directory(port: int) -> str:
    """PROMETHEUS_MULTIPROC_DIR, made and emptied: values of an earlier run must not add to this
    one's. No value exists yet (metrics.py), so nothing of this run is lost.

    prometheus_client has chosen its mode on import, before this runs. So when the variable is
    unset (as in the stack), the process starts itself again with a folder of its own in the
    environment: in a container, its own /tmp, which no other process writes to.
    """
    directory = os.environ.get(metrics.MULTIPROCESS_DIR)
    if not directory:
        os.execve(sys.executable, [sys.executable, "-m", "services.backend", *sys.argv[1:]],
                  {**os.environ, metrics.MULTIPROCESS_DIR: fallback_metrics_directory(port)})
    os.makedirs(directory, mode=0o700, exist_ok=True)
    for name in os.listdir(directory):
        os.unlink(os.path.join(directory, name))
    return directory


def _live_sockets() -> int:
    try:
        return live.sockets_per_worker()
    except ValueError as exc:
        print(f"configuration error: {exc}", flush=True)
        raise SystemExit(2) from None


def main() -> int:
    settings = load_or_exit(load_settings, self_port=DEFAULT_PORT)
    _metrics_directory(settings.self_port)
    setup_logging("rasa-x", settings.secrets())
    # /api/health reads the migration state; alembic would log two lines per probe.
    logging.getLogger("alembic.runtime.migration").setLevel(logging.WARNING)
    engine = create_engine(settings.db, pool_size=1, application_name="rasax-backend-start")
    log.info("waiting for the schema in %s", describe(settings.db))
    # Retries, with logged backoff, both an unreachable server and a schema still migrating.
    wait_for_schema(engine, timeout=600)
    engine.dispose()
    options = {
        "bind": f"0.0.0.0:{settings.self_port}",
        "workers": _int_env("GUNICORN_WORKERS", 2),
        # Every live-update socket holds a thread for its life (live.py): they get threads of
        # their own, on top of the API's.
        "threads": _int_env("GUNICORN_THREADS", 4) + _live_sockets(),
        "worker_class": "gthread",
        # Model uploads and downloads of hundreds of MB take a while on a slow link.
        "timeout": 300,
        "graceful_timeout": 30,
        "accesslog": None,
        # Several services may share /root: gunicorn's control socket would collide.
        "control_socket_disable": True,
        "child_exit": metrics.child_exit,
        "post_worker_init": live.worker_started,
    }
    log.info("serving on port %d", settings.self_port)
    _Gunicorn(settings, options).run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
