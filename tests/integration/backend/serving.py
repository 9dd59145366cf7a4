"""rasa-x as it runs in the stack, `python -m services.backend` under gunicorn, for tests that
talk to it over real HTTP (the served API tests, the browser tests)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from tests.conftest import free_port, wait_until

ROOT = Path(__file__).resolve().parents[3]


@dataclass
class Served:
    url: str
    output: str = ""  # everything the server logged, once it has stopped
    process: subprocess.Popen | None = None  # gunicorn's master, for a test that stops it itself


@contextmanager
def serving(env: dict, name: str):
    """The backend with `env` on a free port; yields a Served whose output is filled on exit."""
    port = free_port()
    log = tempfile.NamedTemporaryFile(prefix=f"{name}-", suffix=".log", delete=False)
    process = subprocess.Popen(
        [sys.executable, "-m", "services.backend"],
        cwd=ROOT,
        env={**os.environ, **env, "SELF_PORT": str(port), "GUNICORN_WORKERS": "2"},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    served = Served(f"http://127.0.0.1:{port}", process=process)

    def healthy():
        assert process.poll() is None, open(log.name).read()[-3000:]
        try:
            return requests.get(f"{served.url}/api/health", timeout=5).status_code == 200
        except requests.RequestException:
            return False

    try:
        wait_until(healthy, 60, f"{name} to answer /api/health", 0.2)
        yield served
    finally:
        process.terminate()
        process.wait(30)
        served.output = open(log.name).read()
        os.unlink(log.name)
