"""Reading a service's /metrics as Prometheus does, for the metrics tests."""

from __future__ import annotations

import requests
from prometheus_client.parser import text_string_to_metric_families


def scrape(url: str) -> dict[str, dict[tuple, float]]:
    """Sample name → {sorted (label, value) pairs: value} of one scrape of `url`."""
    response = requests.get(url, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/plain"), response.headers
    samples: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def value(samples: dict, name: str, **labels) -> float:
    """One sample's value; 0 when the scrape has no such sample (a counter not yet moved)."""
    return samples.get(name, {}).get(tuple(sorted(labels.items())), 0.0)
