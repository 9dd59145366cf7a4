"""The nginx config of the Kubernetes manifests (its ConfigMap) passes the real `nginx -t` of the
stack's nginx image: the upstreams with their cluster names and the cluster DNS as resolver, which
nginx resolves at start (given here as a host entry, as the cluster's DNS would answer it)."""

from __future__ import annotations

import pytest

from deploy import kubernetes
from deploy.install import initialize
from deploy.layout import Layout
from tests.e2e.nginx import ensure_nginx_image, nginx_t

pytestmark = [pytest.mark.docker, pytest.mark.timeout(900)]


def test_the_configmaps_nginx_config_passes_nginx_t(docker_client, tmp_path):
    ensure_nginx_image(docker_client)
    layout = Layout(tmp_path / "install")
    initialize(layout, "proj")
    options = kubernetes.KubernetesOptions(namespace="bots")
    configmap = next(d for d in kubernetes.documents(kubernetes.plan(layout, options))
                     if d["kind"] == "ConfigMap" and d["metadata"]["name"] == kubernetes.NGINX_CONFIGMAP)
    conf = configmap["data"]["rasax.conf"]
    assert "http://rasa-x.bots.svc.cluster.local:5002" in conf
    status, output = nginx_t(docker_client, tmp_path / "nginx", conf,
                             hosts={"kube-dns.kube-system.svc.cluster.local": "127.0.0.1"})
    assert status == 0, output
    assert "test is successful" in output
    # Without a DNS that knows the resolver's name, nginx refuses to start: the name is really used.
    status, output = nginx_t(docker_client, tmp_path / "nginx", conf)
    assert status != 0 and "kube-dns.kube-system.svc.cluster.local" in output, output
