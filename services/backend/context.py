"""What the request handlers share: settings, the engine, the key pair, the cache."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app
from sqlalchemy.engine import Engine

from services.common.config import Settings

from .cache import Cache
from .keys import KeyPair


@dataclass
class Backend:
    settings: Settings
    engine: Engine
    keys: KeyPair
    cache: Cache
    # The scripts' head, read once at start: the scripts cannot change under a running process.
    schema_head: str | None


def backend() -> Backend:
    return current_app.extensions["rasax"]
