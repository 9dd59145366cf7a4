"""The environment each container of the stack gets: the variables it reads, and no other.

Every value is a `${VAR}` reference that compose fills in from .env, so .env stays the one place
that holds values, while docker-compose.yml says which service may see which of them: the event
service and the migrator never hold the admin password or the tokens. The images of PostgreSQL,
RabbitMQ and Redis take their few variables under their own names, written in the template.
"""

from __future__ import annotations

import re

import yaml

from services.common.config import SELF_PORT, SERVICE_ENVIRONMENT

from .layout import templates

# The files `init` writes for the Rasa servers, which Rasa fills in from its environment.
RASA_READS_FROM = ("rasa/endpoints.yml.j2", "rasa/credentials.yml.j2")
RASA_SERVICES = ("rasa-production", "rasa-worker")
_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _values(node):
    if isinstance(node, dict):
        for value in node.values():
            yield from _values(value)
    elif isinstance(node, list):
        for value in node:
            yield from _values(value)
    elif isinstance(node, str):
        yield node


def rasa_variables() -> tuple[str, ...]:
    """The variables the values of endpoints.yml and credentials.yml name, in order of first use."""
    env = templates()
    names: dict[str, None] = {}
    for template in RASA_READS_FROM:
        for value in _values(yaml.safe_load(env.get_template(template).render())):
            names.update(dict.fromkeys(_REFERENCE.findall(value)))
    return tuple(names)


def service_environment() -> dict[str, dict[str, str]]:
    """Compose service → its `environment:` mapping, for each service that reads .env.

    SELF_PORT is not here: it is no .env variable but each service's own port, which the
    template writes next to the health check that probes it.
    """
    reads = {service: tuple(n for n in names if n != SELF_PORT) for service, names in SERVICE_ENVIRONMENT.items()}
    reads.update(dict.fromkeys(RASA_SERVICES, rasa_variables()))
    return {service: {name: f"${{{name}}}" for name in names} for service, names in reads.items()}
