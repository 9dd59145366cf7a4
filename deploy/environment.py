"""The environment each container of the stack gets: the variables it reads, and no other.

Every value is a `${VAR}` reference that compose fills in from .env, so .env stays the one place
that holds values, while docker-compose.yml says which service may see which of them: the event
service and the migrator never hold the admin password or the tokens, and the Rasa servers hold
only what their command line needs (the rest of their config comes from rasa-x's /api/config).
The images of PostgreSQL, RabbitMQ and Redis take their few variables under their own names,
written in the template.
"""

from __future__ import annotations

from services.common.config import RASA_SERVER, SELF_PORT, SERVICE_ENVIRONMENT

RASA_SERVICES = ("rasa-production", "rasa-worker")
# What `--single-container` runs in one container (services/all): the project image's services.
SINGLE_CONTAINER = ("db-migration", "event-service", "rasa-x")


def service_environment() -> dict[str, dict[str, str]]:
    """Compose service → its `environment:` mapping, for each service that reads .env.

    SELF_PORT is not here: it is no .env variable but each service's own port, which the
    template writes next to the health check that probes it.
    """
    reads = {**SERVICE_ENVIRONMENT, **dict.fromkeys(RASA_SERVICES, RASA_SERVER)}
    return {service: {name: f"${{{name}}}" for name in names if name != SELF_PORT} for service, names in reads.items()}


def single_container_environment() -> dict[str, str]:
    """The one container of `--single-container`: the union of what its three services read."""
    every = service_environment()
    return {name: value for service in SINGLE_CONTAINER for name, value in every[service].items()}
