"""Reading a service's /metrics as Prometheus does, and the series the Grafana dashboard asks for,
for the metrics tests."""

from __future__ import annotations

import json
import re
from pathlib import Path

import requests
from prometheus_client.parser import text_string_to_metric_families

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "templates" / "metrics" / "rasax-dashboard.json"
# Which service's metrics test checks which of the dashboard's rasax_ series, by name prefix.
DASHBOARD_OWNERS = {
    "rasa-x": ("rasax_http_", "rasax_cache_", "rasax_training_"),
    "event-service": ("rasax_event", "rasax_exported_"),
    "db-migration": ("rasax_migration",),
}
# nginx-prometheus-exporter's series for the fields of nginx's stub status.
NGINX_EXPORTER_SERIES = {
    "nginx_up", "nginx_http_requests_total", "nginx_connections_accepted", "nginx_connections_active",
    "nginx_connections_handled", "nginx_connections_reading", "nginx_connections_waiting",
    "nginx_connections_writing",
}


def scrape(url: str) -> dict[str, dict[tuple, float]]:
    """Sample name → {sorted (label, value) pairs: value} of one scrape of `url`."""
    response = requests.get(url, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/plain"), response.headers
    return parse(response.text)


def parse(text: str) -> dict[str, dict[tuple, float]]:
    """Prometheus' text format as scrape() returns it."""
    samples: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def value(samples: dict, name: str, **labels) -> float:
    """One sample's value; 0 when the scrape has no such sample (a counter not yet moved)."""
    return samples.get(name, {}).get(tuple(sorted(labels.items())), 0.0)


def dashboard_series() -> set[str]:
    """Every series name the dashboard's queries use."""
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    return {name for expr in exprs for name in re.findall(r"\b((?:rasax|nginx)_[a-z_]+)\b", expr)}


def missing_from_dashboard_view(service: str, samples: dict) -> set[str]:
    """The dashboard's series of `service` that a real scrape of it does not have."""
    wanted = {name for name in dashboard_series() if name.startswith(DASHBOARD_OWNERS[service])}
    assert wanted, service
    return wanted - set(samples)
