"""The smoke tier: a real Docker engine. When none answers, start one (CI has no init system)."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

HERE = os.path.dirname(__file__)


@pytest.fixture(scope="session")
def docker_engine():
    """A Docker SDK client of a running engine; started here with start-dockerd.sh when needed."""
    import docker

    if shutil.which("dockerd") is None and shutil.which("docker") is None:
        pytest.fail("Docker is not installed: `apt-get install docker.io docker-compose mmdebstrap` (or run .ci/run)")
    try:
        engine = docker.from_env(timeout=300)
        engine.ping()
    except docker.errors.DockerException:
        result = subprocess.run(["bash", os.path.join(HERE, "start-dockerd.sh")], capture_output=True, text=True)
        if result.returncode != 0:
            pytest.fail(f"no Docker engine and none could be started:\n{result.stdout}{result.stderr}")
        engine = docker.from_env(timeout=300)
    yield engine
    engine.close()


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item, so fixtures can dump logs only on failure."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
