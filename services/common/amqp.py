"""AMQP connection parameters and the declarations Rasa OSS makes (docs/design.md §4).

RabbitMQ refuses a second declaration of an exchange or queue with other flags, so everything
of ours that declares them goes through `declare_rasa_topology`, which uses exactly Rasa's:
a non-durable fanout exchange and a durable queue with no arguments, bound with an empty key.
"""

from __future__ import annotations

import pika

from .config import RabbitSettings

# Rasa's pika broker leaves app_id unset when RASA_ENVIRONMENT is unset.
DEFAULT_RASA_ENVIRONMENT = "production"


def connection_parameters(rabbit: RabbitSettings, **overrides) -> pika.ConnectionParameters:
    options = dict(
        host=rabbit.host,
        port=rabbit.port,
        virtual_host=rabbit.vhost,
        credentials=pika.PlainCredentials(rabbit.username, rabbit.password),
        heartbeat=60,
        blocked_connection_timeout=300,
        connection_attempts=1,
        socket_timeout=10,
    )
    options.update(overrides)
    return pika.ConnectionParameters(**options)


def declare_rasa_topology(channel, rabbit: RabbitSettings) -> None:
    channel.exchange_declare(rabbit.exchange, exchange_type="fanout", durable=False)
    channel.queue_declare(rabbit.queue, durable=True)
    channel.queue_bind(rabbit.queue, rabbit.exchange, routing_key="")


def rasa_properties(rasa_environment: str | None = None) -> pika.BasicProperties:
    """The properties Rasa OSS publishes with, for tests and imports that act like Rasa."""
    return pika.BasicProperties(delivery_mode=2, headers={}, app_id=rasa_environment)
