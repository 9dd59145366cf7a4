"""What the Rasa servers of the stack are told: their endpoints.yml and credentials.yml.

The one definition of both. rasa-x serves them at /api/config (services/backend/api/system.py),
where `rasa x --production --config-endpoint` fetches them when rasa-production or rasa-worker
starts (docs/design.md §4); nothing else writes a copy, so the two can never differ.
"""

from __future__ import annotations

from urllib.parse import quote

import yaml

from .config import Settings

# RASA_ENVIRONMENT of the two Rasa servers; /api/config?environment= picks one.
PRODUCTION, WORKER = "production", "worker"
ENVIRONMENTS = (PRODUCTION, WORKER)
# How often production Rasa asks rasa-x for the model tagged `production`: a newly tagged model
# serves within this many seconds.
MODEL_PULL_SECONDS = 10


def endpoints(s: Settings, environment: str = PRODUCTION) -> dict:
    """endpoints.yml of a Rasa server, as a mapping.

    Production pulls its model from rasa-x, keeps its trackers in the tracker database, locks
    conversations in Redis and publishes every event to the broker, where the event service takes
    it. The worker trains and evaluates: it needs only the action server (story tests run
    actions); without a tracker store and broker its test conversations stay out of the history.
    """
    action = {"action_endpoint": {"url": s.rasa_action_url}}
    if environment == WORKER:
        return action
    broker_url = s.rabbit.host
    if s.rabbit.vhost != "/":
        # Rasa's pika broker takes the vhost only as the path of an amqp:// URL, and adds
        # `port` to the URL itself (older 3.x releases unconditionally), so none goes here.
        broker_url = f"amqp://{s.rabbit.host}/{quote(s.rabbit.vhost, safe='')}"
    return {
        "models": {
            "url": f"{s.rasa_x_host}/api/projects/default/models/tags/production",
            "token": s.rasa_x_token,
            "wait_time_between_pulls": MODEL_PULL_SECONDS,
        },
        "tracker_store": {
            "type": "sql",
            "dialect": "postgresql",
            "url": s.db.host,
            "port": s.db.port,
            "username": s.db.user,
            "password": s.db.password,
            "db": s.db.tracker_database,
            # Rasa connects here first and creates the tracker database when it is missing.
            "login_db": s.db.database,
        },
        "lock_store": {
            "type": "redis",
            "url": s.redis.host,
            "port": s.redis.port,
            "password": s.redis.password,
            "db": s.redis.lock_db,
        },
        "event_broker": {
            "type": "pika",
            "url": broker_url,
            "port": s.rabbit.port,
            "username": s.rabbit.username,
            "password": s.rabbit.password,
            "queues": [s.rabbit.queue],
            "exchange_name": s.rabbit.exchange,
        },
        **action,
    }


def credentials(s: Settings) -> dict:
    """credentials.yml: the REST channel, and the `rasa` channel of rasa-x's chat (Share your
    bot), which verifies guests' JWTs with the public key it reads from rasa-x."""
    return {"rest": None, "rasa": {"url": f"{s.rasa_x_host}/api"}}


def runtime_config(s: Settings, environment: str = PRODUCTION) -> dict[str, str]:
    """The body of /api/config: both files as YAML text, as Rasa's --config-endpoint expects."""
    return {
        "endpoints": yaml.safe_dump(endpoints(s, environment), sort_keys=False),
        "credentials": yaml.safe_dump(credentials(s), sort_keys=False),
    }
