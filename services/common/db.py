"""The PostgreSQL engine every service uses."""

from __future__ import annotations

import psycopg2
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from .config import DatabaseSettings


def create_engine(db: DatabaseSettings, *, pool_size: int = 5, **kwargs) -> Engine:
    """A psycopg2 engine with pre-ping, so a PostgreSQL restart costs a retry, not a crash."""
    return sa.create_engine(
        db.url(),
        pool_size=pool_size,
        pool_pre_ping=True,
        pool_recycle=1800,
        connect_args={"connect_timeout": 5, "application_name": kwargs.pop("application_name", "rasax")},
        **kwargs,
    )


def describe(db: DatabaseSettings) -> str:
    """Where the database is, for messages: never the password."""
    return f"{db.user}@{db.host}:{db.port}/{db.database} (DB_HOST, DB_PORT, DB_USER, DB_DATABASE)"


def connect(db: DatabaseSettings, application_name: str, **options):
    """A plain psycopg2 connection, for code that needs what SQLAlchemy hides: COPY, LISTEN."""
    return psycopg2.connect(
        host=db.host,
        port=db.port,
        user=db.user,
        password=db.password,
        dbname=db.database,
        connect_timeout=5,
        application_name=application_name,
        # A server that vanished without closing the socket is noticed in ~25 s, not hours.
        keepalives=1,
        keepalives_idle=10,
        keepalives_interval=5,
        keepalives_count=3,
        **options,
    )
