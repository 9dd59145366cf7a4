"""`conversations import` against real PostgreSQL (and SQLite) tracker stores holding the real
captured Rasa 3.6.21 events in Rasa's own table: the same tables as the live stream, nothing
twice, interruptions, the filters, the dry run, and bad input.

Real Rasa writing the tracker store is tests/e2e/test_history_import.py.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading

import pytest
import sqlalchemy as sa

from services.common.config import database_settings
from services.event_service import tracker_import as ti
from tests.conftest import create_database, db_env, drop_database
from tests.integration.event_service.harness import (
    ROOT,
    assert_matches_oracle,
    count_events,
    fixture_messages,
    publish,
    replicated_stream,
    snapshot,
    wait_for_events,
    wait_until,
)
from tests.integration.event_service.tracker_store import (
    create_tracker_store,
    postgres_url,
    sqlite_url,
    table_fingerprint,
    tracker_database,  # noqa: F401 (a fixture)
    tracker_row,
)


def rows_of(messages) -> list[dict]:
    return [tracker_row(message.body) for message in messages]


def run_import(url: str, database: str, *options: str) -> dict:
    summary = ti.import_conversations(ti.TrackerStore.parse(url), database_settings(db_env(database)),
                                      **dict(_parse_options(options)))
    data = summary.as_dict()
    # Nothing unaccounted for: every row read was stored, skipped or refused.
    assert data["stored"] + data["skipped_duplicate"] + data["refused"] == data["events_read"]
    return data


def _parse_options(options):
    for option in options:
        if option == "dry_run":
            yield "dry_run", True


def cli(database: str, *args: str, **popen) -> subprocess.Popen:
    env = {**os.environ, **db_env(database)}
    return subprocess.Popen([sys.executable, os.path.join(ROOT, "cli.py"), "conversations", "import", *args],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def test_a_row_becomes_byte_for_byte_the_body_rasa_publishes_for_it():
    for message in fixture_messages():
        row = tracker_row(message.body)
        assert ti.body_of_row(row["sender_id"], row["data"]) == message.body
    assert ti.body_of_row("s", "{}") == b'{"sender_id": "s"}'


def test_an_import_gives_the_tables_of_the_live_stream_and_a_second_import_adds_nothing(
        tracker_database, new_database, service_env, services, migrated_database):
    messages = fixture_messages()
    url = tracker_database(rows_of(messages))
    before = table_fingerprint(url)

    # The same events streamed live through RabbitMQ and the event service...
    live_name, live_engine = migrated_database
    service = services(service_env)
    service.wait_consuming()
    publish(service_env, messages)
    wait_for_events(live_engine, len(messages), service=service)
    # ...and imported into another database.
    imported_name, imported_engine = new_database()
    summary = run_import(url, imported_name)
    assert summary["complete"] and summary["stored"] == len(messages) and summary["refused"] == 0
    assert summary["conversations_done"] == summary["conversations_selected"] == len(
        {m.event["sender_id"] for m in messages})
    assert_matches_oracle(imported_engine, messages)
    assert snapshot(imported_engine) == snapshot(live_engine)

    # Import twice, or import what was streamed live: nothing new.
    for name, engine in ((imported_name, imported_engine), (live_name, live_engine)):
        tables = snapshot(engine)
        again = run_import(url, name)
        assert (again["stored"], again["skipped_duplicate"]) == (0, len(messages))
        assert snapshot(engine) == tables
    assert table_fingerprint(url) == before, "the import wrote to the tracker store"


def test_an_import_beside_the_live_stream_stores_each_event_once(
        tracker_database, migrated_database, service_env, services, new_database):
    """Half the events were streamed live, the bot kept talking while the import ran."""
    messages = replicated_stream(3)
    url = tracker_database(rows_of(messages))
    name, engine = migrated_database
    service = services(service_env)
    service.wait_consuming()
    publish(service_env, messages[::2])
    wait_for_events(engine, len(messages[::2]), service=service)
    publish(service_env, messages[1::2])  # live, while the import runs
    summary = run_import(url, name)
    wait_for_events(engine, len(messages), service=service)
    assert summary["stored"] + summary["skipped_duplicate"] == len(messages)
    assert summary["skipped_duplicate"] >= len(messages[::2])
    assert count_events(engine) == len(messages)
    assert_matches_oracle(engine, messages)

    reference_name, reference = new_database()
    run_import(url, reference_name)
    assert snapshot(engine) == snapshot(reference)


def test_a_sqlite_tracker_store_gives_the_same_tables(tracker_database, new_database, tmp_path):
    messages = fixture_messages()
    path = tmp_path / "rasa.db"
    create_tracker_store(sqlite_url(path), rows_of(messages))
    before = path.read_bytes()
    from_sqlite, sqlite_engine = new_database()
    from_postgres, postgres_engine = new_database()
    assert run_import(sqlite_url(path), from_sqlite)["stored"] == len(messages)
    run_import(tracker_database(rows_of(messages)), from_postgres)
    assert snapshot(sqlite_engine) == snapshot(postgres_engine)
    assert path.read_bytes() == before
    assert not (tmp_path / "rasa.db-journal").exists()


def test_the_dry_run_counts_what_would_be_stored_and_writes_nothing(tracker_database, migrated_database):
    messages = fixture_messages()
    url = tracker_database(rows_of(messages))
    name, engine = migrated_database
    summary = run_import(url, name, "dry_run")
    assert summary["dry_run"] and (summary["stored"], summary["skipped_duplicate"]) == (len(messages), 0)
    assert count_events(engine) == 0
    # After a partial import, the dry run tells the stored events apart.
    conversation = messages[0].event["sender_id"]
    ti.import_conversations(ti.TrackerStore.parse(url), database_settings(db_env(name)),
                            ti.Selection(conversations=(conversation,)))
    stored = count_events(engine)
    assert stored == sum(m.event["sender_id"] == conversation for m in messages)
    summary = run_import(url, name, "dry_run")
    assert (summary["stored"], summary["skipped_duplicate"]) == (len(messages) - stored, stored)
    assert count_events(engine) == stored


def test_conversations_and_a_time_window_select_exactly_their_events(tracker_database, migrated_database):
    messages = replicated_stream(2)
    url = tracker_database(rows_of(messages))
    name, engine = migrated_database
    events = [m.event for m in messages]
    senders = sorted({e["sender_id"] for e in events})[:2]
    times = sorted(e["timestamp"] for e in events)
    since, until = times[10], times[40]
    process = cli(name, "--tracker-store", url, "--json", *(f"--conversation={s}" for s in senders),
                  f"--since={since!r}", f"--until={until!r}")
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    summary = json.loads(out)
    expected = {(e["sender_id"], e["timestamp"]) for e in events
                if e["sender_id"] in senders and since <= e["timestamp"] < until}
    assert expected and summary["stored"] == len(expected) == summary["events_selected"]
    with engine.connect() as connection:
        stored = set(connection.execute(sa.text("SELECT conversation_id, timestamp FROM conversation_event")))
    assert stored == expected
    # Progress went to stderr, one JSON line each, the last one complete.
    progress = [json.loads(line)["progress"] for line in err.splitlines() if line.startswith('{"progress"')]
    assert progress[-1]["events_read"] == len(expected)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_an_interrupted_import_run_again_ends_with_the_tables_of_an_uninterrupted_one(
        signum, tracker_database, new_database):
    messages = replicated_stream(250)  # ~30k events: a few seconds of import
    url = tracker_database(rows_of(messages))
    name, engine = new_database()
    process = cli(name, "--tracker-store", url, "--json", start_new_session=True)
    wait_until(lambda: count_events(engine) > 0 or process.poll() is not None, 120, "the first stored batch")
    os.kill(process.pid, signum)
    out, err = process.communicate(timeout=120)
    stored_then = count_events(engine)
    assert 0 < stored_then < len(messages), "the import ended before it could be interrupted"
    if signum == signal.SIGINT:
        # The batch in hand is committed, the summary says so and what is left.
        assert process.returncode == 130, err
        summary = json.loads(out)
        assert summary["interrupted"] and not summary["complete"]
        assert summary["stored"] == stored_then < summary["events_selected"] == len(messages)
    else:
        assert process.returncode == -signal.SIGKILL

    again = cli(name, "--tracker-store", url, "--json")
    out, err = again.communicate(timeout=300)
    assert again.returncode == 0, err
    summary = json.loads(out)
    assert summary["complete"] and summary["skipped_duplicate"] == stored_then
    assert summary["stored"] == len(messages) - stored_then

    reference_name, reference = new_database()
    run_import(url, reference_name)
    assert snapshot(engine) == snapshot(reference)


def test_rows_rasa_could_not_have_written_are_refused_with_reasons_and_the_rest_is_stored(
        tracker_database, migrated_database):
    messages = fixture_messages()
    rows = rows_of(messages)
    good = len(rows)
    bad = [
        dict(rows[0], data="{\"event\": broken"),
        dict(rows[1], data=None),
        dict(rows[2], type_name="bot"),  # an action event whose row says bot
        dict(rows[3], data=json.dumps({**json.loads(rows[3]["data"]), "sender_id": "someone else"})),
        dict(rows[4], data=json.dumps({k: v for k, v in json.loads(rows[4]["data"]).items() if k != "timestamp"})),
        dict(rows[5], data="[1, 2]"),
        dict(rows[6], timestamp=1.5),
    ]
    url = tracker_database(rows + bad)
    name, engine = migrated_database
    summary = run_import(url, name)
    assert summary["stored"] == good and summary["refused"] == len(bad)
    assert count_events(engine) == good
    reasons = {row["reason"] for row in summary["refused_rows"]}
    assert "body is not JSON" in reasons
    assert "the row's data is empty" in reasons
    assert "type_name 'bot' of the row differs from the event type 'action' in its data" in reasons
    assert "the row's data has a sender_id of its own (Rasa never writes one there)" in reasons
    assert "not a Rasa event: missing or invalid timestamp" in reasons
    assert "the row's data is not a JSON object" in reasons
    assert any(r.startswith("timestamp 1.5 of the row differs") for r in reasons)
    assert sorted(row["row_id"] for row in summary["refused_rows"]) == list(range(good + 1, good + len(bad) + 1))
    assert sum(summary["refused_reasons"].values()) == len(bad)


def _error(database: str, *args: str, stdin: str | None = None) -> tuple[int, str]:
    process = cli(database, *args, stdin=subprocess.PIPE)
    _, err = process.communicate(stdin, timeout=60)
    return process.returncode, err.strip().splitlines()[-1]


def test_stores_that_are_not_rasa_sql_tracker_stores_are_refused_with_what_was_expected(
        migrated_database, tmp_path):
    name, engine = migrated_database
    code, line = _error(name, "--tracker-store", "postgresql://postgres@127.0.0.1:1/tracker")
    assert code == 1 and line.startswith("error: cannot read the tracker store at PostgreSQL postgres@127.0.0.1:1/tracker: ")
    assert "Connection refused" in line

    # The event database itself: no table `events`.
    code, line = _error(name, "--tracker-store", postgres_url(name))
    assert code == 1 and f"/{name} has no table 'events': not a Rasa SQL tracker store (Rasa writes events(id, " \
                          "sender_id, type_name, timestamp, intent_name, action_name, data))" in line

    other = create_database("rasax_not_tracker")
    try:
        with sa.create_engine(f"postgresql+psycopg2://postgres@127.0.0.1/{other}").begin() as connection:
            connection.execute(sa.text("CREATE TABLE events (id serial, name text, payload json)"))
        code, line = _error(name, "--tracker-store", postgres_url(other))
        assert code == 1 and "table 'events' of PostgreSQL" in line and \
            "is not Rasa's: it has no column sender_id, type_name, timestamp, intent_name, action_name, data" in line
    finally:
        drop_database(other)

    text_file = tmp_path / "notes.db"
    text_file.write_text("not a database")
    code, line = _error(name, "--tracker-store", sqlite_url(text_file))
    assert (code, line) == (1, f"error: SQLite file {text_file} is not a SQLite database: file is not a database")
    code, line = _error(name, "--tracker-store", sqlite_url(tmp_path / "missing.db"))
    assert (code, line) == (1, f"error: no SQLite file at {tmp_path / 'missing.db'}")

    code, line = _error(name, "--tracker-store", "redis://localhost:6379/0")
    assert code == 2 and line.startswith("error: redis tracker stores are not supported yet")
    code, line = _error(name, "--tracker-store", "mongodb://localhost/rasa")
    assert code == 2 and line.startswith("error: mongodb tracker stores are not supported yet")
    assert count_events(engine) == 0


def test_the_password_can_come_from_stdin_and_never_shows(tracker_database, migrated_database):
    url = tracker_database(rows_of(fixture_messages()))
    name, engine = migrated_database
    without_password = url.replace(":unused-with-trust-auth@", "@") if "unused-with-trust-auth" in url else url
    process = cli(name, "--tracker-store", without_password, "--password-stdin", "--json", stdin=subprocess.PIPE)
    out, err = process.communicate("s3cret-Password\n", timeout=60)
    assert process.returncode == 0, err
    assert "s3cret-Password" not in out + err
    assert json.loads(out)["stored"] == count_events(engine) > 0


def test_an_import_cut_after_a_batch_goes_on_from_its_last_row_to_the_same_tables(tracker_database, new_database):
    """What the API route does when max_seconds runs out: stop, then `after` = last_row."""
    messages = replicated_stream(20)
    url = tracker_database(rows_of(messages))
    name, engine = new_database()
    db = database_settings(db_env(name))
    stop = threading.Event()
    stop.set()  # the first batch is committed, then it stops
    first = ti.import_conversations(ti.TrackerStore.parse(url), db, batch_size=500, stop=stop).as_dict()
    assert first["interrupted"] and first["stored"] == first["events_read"] == 500 == count_events(engine)
    rest = ti.import_conversations(ti.TrackerStore.parse(url), db, ti.Selection(after=tuple(first["last_row"]))).as_dict()
    assert rest["complete"] and (rest["stored"], rest["skipped_duplicate"]) == (len(messages) - 500, 0)
    assert rest["events_selected"] == len(messages) - 500

    reference_name, reference = new_database()
    run_import(url, reference_name)
    assert snapshot(engine) == snapshot(reference)


def test_reading_a_sqlite_tracker_store_never_locks_out_the_bot_writing_it(tmp_path, new_database):
    """SQLite holds a reader's lock while its statement runs: Rasa must still commit mid-import."""
    messages = replicated_stream(5)
    path = tmp_path / "rasa.db"
    create_tracker_store(sqlite_url(path), rows_of(messages))
    reader = ti.Reader(ti.TrackerStore.parse(sqlite_url(path)))
    try:
        pages = reader.batches(ti.Selection(), 100)
        first = next(pages)
        late = tracker_row(replicated_stream(1, "late")[0].body)
        bot = sqlite3.connect(path, timeout=0.5)  # Rasa's writer, mid-import
        with bot:
            bot.execute("INSERT INTO events (sender_id, type_name, timestamp, intent_name, action_name, data) "
                        "VALUES (:sender_id, :type_name, :timestamp, :intent_name, :action_name, :data)", late)
        bot.close()
        rest = [row for page in pages for row in page]
    finally:
        reader.close()
    read = first + rest
    assert len(read) == len(messages) + 1 and len({row[0] for row in read}) == len(read)
    assert [(row[1], row[0]) for row in read] == sorted((row[1], row[0]) for row in read)  # Rasa's order
