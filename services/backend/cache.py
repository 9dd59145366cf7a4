"""Redis cache of the expensive reads (conversation lists, facets, statistics).

An entry is valid only for the state of the data it was computed from. Its stamp joins
  - the data version in PostgreSQL: the highest event id and the sum of the event counters the
    event service keeps in the same transaction as each event, so a new event changes it even
    when transactions commit out of id order;
  - a generation counter in Redis that the backend increments after each change it makes
    itself (review status, tags, flags, corrections, deletions).
The stamp is read before the data, so a change that lands meanwhile leaves an entry that is
already outdated, never a stale one that looks fresh. A TTL bounds what a Redis outage during a
change could leave behind. When Redis is down every read goes to PostgreSQL, and Redis is not
asked again for a few seconds so that each request does not wait for its timeout.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from typing import Any, Callable

import redis
import sqlalchemy as sa
from flask import g, has_request_context
from sqlalchemy.engine import Engine

from redis.backoff import NoBackoff
from redis.retry import Retry

from services.common.config import RedisSettings
from services.common.counters import EVENTS

from .metrics import CACHE

log = logging.getLogger(__name__)

TTL_SECONDS = 300
RETRY_AFTER_FAILURE_SECONDS = 5.0

# The data version (see above) as two columns, max_id and events, for a SELECT list: one
# snapshot sees both.
DATA_VERSION_COLUMNS = (
    "(SELECT coalesce(max(id), 0) FROM conversation_event) AS max_id, "
    f"(SELECT coalesce(sum({EVENTS.column}), 0) FROM conversation_statistic) AS events"
)
_DATA_VERSION = sa.text(f"SELECT {DATA_VERSION_COLUMNS}")


class Cache:
    def __init__(self, settings: RedisSettings, prefix: str = "rasax"):
        self.prefix = prefix
        self.client = redis.Redis(
            host=settings.host,
            port=settings.port,
            password=settings.password or None,
            db=settings.db,
            socket_connect_timeout=0.3,
            socket_timeout=0.5,
            # redis-py retries with seconds of backoff by default; a cache must fail fast.
            retry=Retry(NoBackoff(), 0),
        )
        self._down_until = 0.0
        self._lock = threading.Lock()

    # ----- Redis with a short circuit breaker -------------------------------------------
    def _available(self) -> bool:
        return time.monotonic() >= self._down_until

    def _failed(self, exc: Exception) -> None:
        with self._lock:
            if self._available():
                log.warning("redis unavailable, reading without cache: %s", exc)
            self._down_until = time.monotonic() + RETRY_AFTER_FAILURE_SECONDS

    def call(self, action: Callable[[redis.Redis], Any], default: Any = None) -> Any:
        if not self._available():
            return default
        try:
            return action(self.client)
        except redis.RedisError as exc:
            self._failed(exc)
            return default

    def ping(self) -> bool:
        try:
            return bool(self.client.ping())
        except redis.RedisError:
            return False

    # ----- cached reads -----------------------------------------------------------------
    @property
    def _generation_key(self) -> str:
        return f"{self.prefix}:generation"

    def invalidate(self, aspect: str) -> None:
        """Call after committing a change the backend made itself.

        Every entry depends on the generation; an entry that judges its freshness itself may
        depend on the generations of a few aspects only (see conversation_total): "review",
        "tags", "flags", "training" (in_training_data), "conversations" (deletions).
        """

        def bump(r: redis.Redis) -> None:
            pipeline = r.pipeline(transaction=False)
            pipeline.incr(self._generation_key)
            pipeline.incr(f"{self._generation_key}:{aspect}")
            pipeline.execute()

        self.call(bump)

    @staticmethod
    def _data_version(engine: Engine) -> str:
        # Read once per request: a request that reads several entries sees one data state.
        if has_request_context() and "rasax_data_version" in g:
            return g.rasax_data_version
        with engine.connect() as connection:
            row = connection.execute(_DATA_VERSION).one()
        version = f"{row.max_id}.{row.events}"
        if has_request_context():
            g.rasax_data_version = version
        return version

    def _key(self, name: str, params: Any) -> str:
        digest = hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:32]
        return f"{self.prefix}:{name}:{digest}"

    def read(self, name: str, params: Any, aspects: tuple[str, ...] | None = None) -> tuple[str, Any] | None:
        """(generation, stored value or None); None when Redis is unavailable.

        For entries that judge their own freshness against the data (see conversation_total).
        The generation (of `aspects` only, when given) is read together with the entry, before
        the caller reads any data.
        """
        if not self._available():
            return None
        keys = [f"{self._generation_key}:{a}" for a in aspects] if aspects is not None else [self._generation_key]
        found = self.call(lambda r: r.mget(*keys, self._key(name, params)))
        if found is None:
            return None
        *generations, entry = found
        try:
            value = json.loads(entry) if entry is not None else None
        except ValueError:
            value = None
        return ".".join(str(int(g or 0)) for g in generations), value

    def write(self, name: str, params: Any, value: Any) -> None:
        self.call(lambda r: r.set(self._key(name, params), json.dumps(value), ex=TTL_SECONDS))

    def cached(self, engine: Engine, name: str, params: Any, compute: Callable[[], Any]) -> Any:
        entry = name.split(":", 1)[0]  # "facet:intent" → "facet": a few label values, not one per key
        found = self.read(name, params)
        if found is None:
            CACHE.labels(entry, "unavailable").inc()
            return compute()
        generation, stored = found
        stamp = f"{self._data_version(engine)}.{generation}"
        if isinstance(stored, dict) and stored.get("stamp") == stamp:
            CACHE.labels(entry, "hit").inc()
            return stored["value"]
        CACHE.labels(entry, "miss").inc()
        value = compute()
        payload = json.dumps({"stamp": stamp, "value": value}, default=str)
        self.call(lambda r: r.set(self._key(name, params), payload, ex=TTL_SECONDS))
        return value
