"""The web UI in headless Chromium against the real backend.

One session: the UI built by deploy/ui_build.py (the same files the project image carries),
`python -m services.backend` under gunicorn serving them from services/backend/ui/dist beside
the API, its own migrated PostgreSQL database, Redis and the real event service storing
generated conversations, and Debian's /usr/bin/chromium driven by Playwright (installed with
apt-get when missing, as root on Debian; Playwright's own browser download is not used).
Screens are written to docs/screenshots/ (the README shows some).
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest
import requests

from tests.conftest import RABBIT_USER, _rabbitmqctl
from tests.integration.backend.conftest import (  # noqa: F401  (fixtures, reused as they are)
    ADMIN_PASSWORD,
    USER_PASSWORD,
    ROOT,
    backend_database,
    backend_env,
    db_engine,
    event_service,
    private_redis,
    settings,
)
from tests.integration.backend.model import conversation_as
from tests.integration.backend.serving import serving

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(ROOT) / "docs" / "screenshots"
# More than one page of the list (20 a page), each a copy of a real captured conversation.
GENERATED = [f"ui-visitor-{i:02d}" for i in range(25)]


@pytest.fixture(scope="session")
def rabbit_vhost():
    """A RabbitMQ vhost of the UI tests' own (it overrides the session's shared one for them): their
    event service must not compete for the queue of the integration tests' event service, which
    runs in the same session."""
    name = f"rasax_ui_{uuid.uuid4().hex[:10]}"
    _rabbitmqctl("add_vhost", name)
    _rabbitmqctl("set_permissions", "-p", name, RABBIT_USER, ".*", ".*", ".*")
    yield name
    _rabbitmqctl("delete_vhost", name)


@pytest.fixture(scope="session")
def ui_dist():
    from deploy import ui_build

    try:
        return ui_build.build()
    except ui_build.UiBuildError as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def conversations(event_service):
    # Copies of the four captured conversations in turn, so that filters have something to tell
    # apart; each says its own words, so that the NLU inbox holds one entry per message.
    originals = ("alice", "bob", "carol", "dave")

    def own_words(i):
        def edit(event):
            if event["event"] == "user":
                event["text"] = event["parse_data"]["text"] = f"{event['text']} #{i:02d}"
        return edit

    messages = [m for i, sender in enumerate(GENERATED)
                for m in conversation_as(originals[i % 4], sender, 1000.0 * i, own_words(i))]
    event_service.publish_and_wait(messages)
    return GENERATED


@pytest.fixture(scope="session")
def accounts(db_engine, settings) -> dict[str, tuple[str, str]]:
    from services.backend.users import create_user

    with db_engine.begin() as connection:
        create_user(connection, "annie", USER_PASSWORD, ["annotator"], settings.password_salt, if_absent=True)
    return {"admin": ("admin", ADMIN_PASSWORD), "annotator": ("annie", USER_PASSWORD)}


@pytest.fixture(scope="session")
def server(backend_env, ui_dist, conversations, accounts):
    with serving(backend_env, "rasa-x-ui") as served:
        url = served.url
        yield url


def api_session(server: str, username: str, password: str) -> requests.Session:
    """The API as the given user, to check what the UI did."""
    http = requests.Session()
    response = http.post(f"{server}/api/auth", json={"username": username, "password": password}, timeout=10)
    assert response.status_code == 200, response.text
    http.headers["Authorization"] = f"Bearer {response.json()['access_token']}"
    return http


@pytest.fixture(scope="session")
def admin_api(server, accounts):
    return api_session(server, *accounts["admin"])


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium, installed with apt-get when missing (as `up` installs docker.io)."""
    if not os.path.exists(CHROMIUM):
        if os.geteuid() != 0 or shutil.which("apt-get") is None:
            pytest.fail(f"the browser tests drive Debian's chromium at {CHROMIUM}: `apt-get install chromium` (as root)")
        from deploy.docker_engine import apt_install

        apt_install(["chromium"])
    return CHROMIUM


@pytest.fixture(scope="session")
def browser(chromium):
    from tests.ui.browser import acquire, release

    yield acquire(chromium)
    release()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(base_url=server, viewport={"width": 1280, "height": 800})
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    context.close()


def screenshot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def log_in(page, username: str, password: str) -> None:
    page.goto("/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("button", name="Log out").wait_for()
