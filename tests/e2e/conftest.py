"""The smoke tier: a real Docker engine. When none answers, start one (CI has no init system)."""

from __future__ import annotations

import pytest

@pytest.fixture(scope="session")
def docker_client():
    """A Docker SDK client of a running engine, installed and started as `up` would when missing."""
    import docker

    from deploy.docker_engine import DockerEngineError, ensure_running

    try:
        ensure_running(print)
    except DockerEngineError as exc:
        pytest.fail(f"no Docker engine and none could be started: {exc}")
    client = docker.from_env(timeout=300)
    yield client
    client.close()


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item, so fixtures can dump logs only on failure."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
