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


@pytest.fixture(scope="session")
def moodbot(docker_client, tmp_path_factory):
    """tests/fixtures/moodbot trained once per session by the real `rasa train` in rasax/rasa (built
    first when missing): (the writable project copy, the model file). Training takes minutes on
    a small machine, so every test that needs a real model shares this one."""
    from deploy import rasa_images
    from tests.e2e.rasa_project import train

    rasa_images.build_all(docker_client, print)  # kept when up to date
    return train(docker_client, tmp_path_factory.mktemp("moodbot"))
