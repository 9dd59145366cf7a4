"""The rendered nginx config keeps secrets and its version to itself: `server_tokens off`, and
every server logs through the redacting format (tests/e2e/test_secrets.py sends the requests)."""

from __future__ import annotations

import re

import pytest

from deploy import render

OPTIONS = {"http": render.RenderOptions(), "tls": render.RenderOptions(https_port="8443", tls=True)}


def config(kind: str) -> str:
    return render.plan(OPTIONS[kind])[render.NGINX_CONF]


def servers(text: str) -> list[str]:
    return re.findall(r"^server \{\n.*?^\}", text, flags=re.S | re.M)


@pytest.mark.parametrize("kind", sorted(OPTIONS))
def test_nginx_does_not_announce_its_version(kind):
    # At http level (the file is included there), so for every server and error page.
    assert re.search(r"^server_tokens off;$", config(kind), flags=re.M)


@pytest.mark.parametrize("kind", sorted(OPTIONS))
def test_every_server_logs_requests_through_the_redacting_format(kind):
    text = config(kind)
    blocks = servers(text)
    # The last one serves only the stub status, on a port that is never published.
    assert len(blocks) == (3 if kind == "tls" else 2)
    for block in blocks:
        # A server-level access_log replaces the image's unredacted one; without it both would log.
        assert "    access_log /var/log/nginx/access.log rasax;\n" in block
        # Errors carry the raw request line: only critical ones are logged.
        assert "    error_log /var/log/nginx/error.log crit;\n" in block
    log_format = re.search(r"^log_format rasax (.*?);$", text, flags=re.S | re.M).group(1)
    assert "$loggable_request" in log_format and "$loggable_referer" in log_format
    assert not re.search(r"\$request\b|\$request_uri|\$args|\$query_string|\$http_referer", log_format)


def test_the_redaction_covers_the_credential_names_the_services_redact():
    from services.common.logging import CREDENTIAL_WORDS

    maps = re.findall(r"^map \S+ \$(?:request_redacted|loggable_request|referer_redacted|loggable_referer) \{\n(.*?)\n",
                      config("http"), flags=re.M)
    assert len(maps) == 4
    for regex in maps:
        assert "(?:" + "|".join(CREDENTIAL_WORDS) + ")=" in regex
