"""The rendered nginx config passes the real `nginx -t` of the stack's nginx image (plain and
TLS with a real certificate), and a config nginx refuses is reported as such."""

from __future__ import annotations

import pytest

from deploy import render
from tests.e2e.nginx import ensure_nginx_image, nginx_t
from tests.unit.deploy.certs import self_signed

pytestmark = [pytest.mark.docker, pytest.mark.timeout(900)]

PLAIN = render.RenderOptions(http_port="127.0.0.1:18080")
TLS = render.RenderOptions(http_port="80", https_port="8443", tls=True)


@pytest.fixture(scope="module")
def nginx_image(docker_client):
    ensure_nginx_image(docker_client)
    return docker_client


def test_nginx_config_passes_nginx_t_of_the_stack_image(nginx_image, tmp_path):
    status, output = nginx_t(nginx_image, tmp_path, render.plan(PLAIN)[render.NGINX_CONF])
    assert status == 0, output
    assert "test is successful" in output


def test_tls_config_passes_nginx_t_with_a_real_certificate_and_redirects(nginx_image, tmp_path):
    certs = tmp_path / "certs"
    self_signed(certs, render.CERT_NAME, render.KEY_NAME)
    conf = render.plan(TLS)[render.NGINX_CONF]  # the certificate paths of the deployment
    status, output = nginx_t(nginx_image, tmp_path, conf, certs)
    assert status == 0, output
    assert "listen 8443 ssl" in conf and "return 301 https://$host:8443$request_uri;" in conf
    assert "return 301 https://$host$request_uri;" in render.plan(TLS.merged(https_port="443"))[render.NGINX_CONF]


def test_nginx_t_rejects_a_broken_config(nginx_image, tmp_path):
    # The checks above can fail: a config nginx refuses is reported as such.
    broken = render.plan(PLAIN)[render.NGINX_CONF].replace("stub_status;", "stub_status")
    status, output = nginx_t(nginx_image, tmp_path, broken)
    assert status != 0 and "emerg" in output, output


def test_tls_config_without_the_certificate_is_rejected(nginx_image, tmp_path):
    status, output = nginx_t(nginx_image, tmp_path, render.plan(TLS)[render.NGINX_CONF], tmp_path / "no-certs")
    assert status != 0 and "rasax.crt" in output, output
