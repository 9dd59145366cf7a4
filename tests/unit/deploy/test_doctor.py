"""The doctor's checks that read only the installation folder: the certificate pair and the
broker's disk-free limit. The checks that ask the stack run in tests/e2e/test_doctor.py."""

from __future__ import annotations

import datetime
from types import SimpleNamespace

import pytest

from deploy import doctor, render
from deploy.install import initialize
from deploy.layout import Layout, read_env
from deploy.stack import Target
from tests.unit.deploy.certs import self_signed


@pytest.fixture
def stack(tmp_path):
    """The part of doctor.Stack these checks read: the folder, its .env; no broker running."""
    layout = Layout(tmp_path / "rasa")
    initialize(layout, "rxdoc")
    return SimpleNamespace(root=layout.root, target=Target(layout), env=read_env(layout), running=lambda _: None,
                           up=lambda: f"rasax-deploy up --dir {layout.root}")


def test_certificate_pair_mismatch_expiry_and_absence(stack, tmp_path):
    certs = stack.root / "certs"
    assert doctor.check_certificate(stack).status == doctor.PASS  # no TLS, no certificate
    render.remember(stack.target.layout, render.RenderOptions(tls=True))
    missing = doctor.check_certificate(stack)
    assert (missing.status, missing.found) == (doctor.FAIL, "no certificate while TLS is on")
    cert, key = self_signed(certs, render.CERT_NAME, render.KEY_NAME)
    now = datetime.datetime.now(datetime.timezone.utc)
    soon = doctor.check_certificate(stack)
    assert (soon.status, soon.found) == (doctor.WARN, "expires in 0 days")
    later = doctor.check_certificate(stack, now=now - datetime.timedelta(days=30))
    assert later.status == doctor.PASS and later.found.startswith("key matches, valid until")
    expired = doctor.check_certificate(stack, now=now + datetime.timedelta(days=2))
    assert expired.status == doctor.FAIL and expired.found.startswith("expired ")
    _, other_key = self_signed(tmp_path / "other", "c.pem", "k.pem")
    key.write_bytes(other_key.read_bytes())
    mismatch = doctor.check_certificate(stack)
    assert (mismatch.status, mismatch.found) == (doctor.FAIL, "rasax.key is not the key of rasax.crt")
    assert "--cert FULLCHAIN.pem --key KEY.pem" in mismatch.fix
    key.write_text("not a key")
    assert doctor.check_certificate(stack).found.startswith("cannot read the pair")


@pytest.mark.parametrize("value, status", [("1GB", doctor.PASS), ("500MB", doctor.PASS), ("2000000000", doctor.PASS),
                                           ("1.5GiB", doctor.PASS), ("{mem_relative, 1.0}", doctor.FAIL),
                                           ("mem_relative:1.0", doctor.FAIL), ("", doctor.FAIL)])
def test_the_broker_disk_limit_must_be_absolute(stack, value, status):
    stack.env["RABBITMQ_DISK_FREE_LIMIT"] = value
    found = doctor.check_disk_free_limit(stack)
    assert found.status == status, found
    if status == doctor.FAIL:
        assert "RABBITMQ_DISK_FREE_LIMIT=1GB" in found.fix
