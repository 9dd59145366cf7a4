"""The web UI as an installation serves it: `rasax-deploy up` (which builds the UI into the
project image when frontend/ changed) → nginx → rasa-x at `/`; Chromium logs in through nginx
and lists the conversations the stack's event service stored."""

from __future__ import annotations

import re

import pytest
import requests
from playwright.sync_api import expect

from tests.e2e.deployment import publish_fixtures, running_stack
from tests.ui.browser import acquire, release
from tests.ui.conftest import chromium, log_in  # noqa: F401  (a fixture)

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def browser(chromium):  # noqa: F811
    yield acquire(chromium)
    release()


@pytest.fixture(scope="module")
def stack(docker_client, tmp_path_factory, request):
    directory = tmp_path_factory.mktemp("ui-stack") / "rasa"
    # RabbitMQ on a loopback port for the test to publish to: the installation's own override file.
    directory.mkdir()
    (directory / "docker-compose.override.yml").write_text("services:\n  rabbit:\n    ports:\n      - \"127.0.0.1::5672\"\n")
    with running_stack(docker_client, directory, "rxui", request) as stack:
        yield stack


def test_the_ui_through_nginx(stack, browser):
    index = requests.get(f"{stack.base}/", timeout=10)
    assert index.status_code == 200 and '<div id="app"></div>' in index.text
    asset = re.search(r'src="(/assets/[^"]+\.js)"', index.text).group(1)
    served = requests.get(stack.base + asset, timeout=10)
    assert served.status_code == 200 and "javascript" in served.headers["Content-Type"]
    # The image carries the same build the checkout has (the one deploy/ui_build.py made).
    from deploy import ui_build

    dist = ui_build.build()  # kept: `up` built it from these same sources for the image
    assert served.content == (dist / asset.lstrip("/")).read_bytes()
    assert requests.get(f"{stack.base}/conversations?intent=greet", timeout=10).text == index.text

    senders = publish_fixtures(stack)
    token = stack.login()
    stack.wait_for_senders(senders)
    total = int(requests.get(f"{stack.base}/api/conversations?limit=1", headers={"Authorization": f"Bearer {token}"},
                             timeout=10).headers["X-Total-Count"])
    password = (stack.dir / "credentials" / "RASA_X_PASSWORD").read_text().strip()
    context = browser.new_context(base_url=stack.base, viewport={"width": 1280, "height": 800})
    try:
        page = context.new_page()
        log_in(page, "admin", password)
        expect(page.locator("p.total")).to_have_text(f"{total:,} conversations")
        expect(page.get_by_role("table").get_by_role("rowheader")).to_have_count(min(total, 20))
    finally:
        context.close()
