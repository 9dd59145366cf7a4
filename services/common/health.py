"""A tiny HTTP server for health and status endpoints, shared by the services.

Each route is a function returning `(status_code, json_body)`, or `(status_code, bytes,
content_type)` for anything else (Prometheus metrics); it runs in a daemon thread so it answers
even while the service's main loop is busy or waiting.
"""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

Route = Callable[[], tuple[int, dict] | tuple[int, bytes, str]]
log = logging.getLogger(__name__)


class HealthServer:
    def __init__(self, routes: dict[str, Route], port: int, host: str = "0.0.0.0"):
        self.routes = routes
        handler = self._make_handler()
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self._thread: threading.Thread | None = None

    def _make_handler(self):
        routes = self.routes

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                route = routes.get(self.path.split("?", 1)[0])
                if route is None:
                    answer = 404, {"message": "not found", "reason": "unknown path"}
                else:
                    try:
                        answer = route()
                    except Exception as exc:  # a health check must answer, not die
                        log.exception("health route %s failed", self.path)
                        answer = 503, {"status": "error", "reason": str(exc)}
                status, body = answer[:2]
                if isinstance(body, bytes):
                    payload, content_type = body, answer[2]
                else:
                    payload, content_type = json.dumps(body, default=str).encode(), "application/json"
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, fmt, *args):  # health probes every few seconds: keep logs quiet
                pass

        return Handler

    def start(self) -> "HealthServer":
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="health", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
