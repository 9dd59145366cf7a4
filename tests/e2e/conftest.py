"""The smoke tier: a real Docker engine. When none answers, start one (CI has no init system)."""

from __future__ import annotations

import pytest

@pytest.fixture(scope="session")
def docker_engine():
    """A Docker SDK client of a running engine, installed and started as `up` would when missing."""
    import docker

    from deploy.engine import EngineError, ensure_engine

    try:
        ensure_engine(print)
    except EngineError as exc:
        pytest.fail(f"no Docker engine and none could be started: {exc}")
    engine = docker.from_env(timeout=300)
    yield engine
    engine.close()


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item, so fixtures can dump logs only on failure."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
