"""Tracker stores as Rasa 3.6's SQLTrackerStore writes them, for the import tests and the bench.

The table is created from tracker_import.RASA_EVENTS (Rasa's own declaration, through the same
SQLAlchemy create_all Rasa runs), and each event is written the way SQLTrackerStore.save does:
`data` is json.dumps(event.as_dict()) — the broker's body without its sender_id — and the
other columns are taken from it.
"""

from __future__ import annotations

import io
import json
import sqlite3

import psycopg2
import pytest
import sqlalchemy as sa

from services.event_service.tracker_import import EXPECTED_COLUMNS, RASA_EVENTS, RASA_METADATA
from tests.conftest import PG_HOST, PG_PASSWORD, PG_PORT, PG_USER, create_database, drop_database


def tracker_row(body: bytes) -> dict:
    """The row SQLTrackerStore.save writes for the event the broker published as `body`."""
    event = json.loads(body)
    sender_id = event.pop("sender_id")
    intent = (event.get("parse_data") or {}).get("intent") or {}
    return {"sender_id": sender_id, "type_name": event["event"], "timestamp": event.get("timestamp"),
            "intent_name": intent.get("name"), "action_name": event.get("name"), "data": json.dumps(event)}


@pytest.fixture
def tracker_database():
    """tracker_database(rows) → the URL of a new PostgreSQL tracker store holding `rows`
    (import this fixture into a test module to use it)."""
    made = []

    def make(rows: list[dict]) -> str:
        name = create_database("rasax_tracker")
        made.append(name)
        url = postgres_url(name)
        create_tracker_store(url, rows)
        return url

    yield make
    for name in made:
        drop_database(name)


def postgres_url(database: str) -> str:
    return f"postgresql://{PG_USER}:{PG_PASSWORD}@{PG_HOST}:{PG_PORT}/{database}"


def sqlite_url(path) -> str:
    return f"sqlite:///{path}"


def create_tracker_store(url: str, rows: list[dict]) -> None:
    """Rasa's table at `url` (a PostgreSQL database or SQLite file), holding `rows` in this order."""
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg2://", 1))
    try:
        RASA_METADATA.create_all(engine)
        if engine.dialect.name == "postgresql":
            _copy(engine, rows)
        else:
            with engine.begin() as connection:
                connection.execute(RASA_EVENTS.insert(), rows)
    finally:
        engine.dispose()


def _copy(engine, rows: list[dict]) -> None:
    """COPY: a million rows in seconds (the bench's tracker store)."""

    def field(value) -> str:
        if value is None:
            return "\\N"
        text = repr(value) if isinstance(value, float) else str(value)
        return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")

    columns = EXPECTED_COLUMNS[1:]
    data = io.StringIO("".join("\t".join(field(row[c]) for c in columns) + "\n" for row in rows))
    connection = engine.raw_connection()
    try:
        with connection.cursor() as cursor:
            cursor.copy_expert(f"COPY events ({', '.join(columns)}) FROM STDIN", data)
        connection.commit()
    finally:
        connection.close()


def table_fingerprint(url: str) -> list[tuple]:
    """Every row of Rasa's table: to show an import left the tracker store as it was."""
    if url.startswith("sqlite:///"):
        connection = sqlite3.connect(url.removeprefix("sqlite:///"))
        try:
            return connection.execute("SELECT * FROM events ORDER BY id").fetchall()
        finally:
            connection.close()
    connection = psycopg2.connect(url)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT * FROM events ORDER BY id")
            return cursor.fetchall()
    finally:
        connection.close()
