"""The migrator against a real PostgreSQL: empty → head, idempotence, states, concurrency, failure."""

import shutil
import threading

import pytest
import sqlalchemy as sa

from services.db_migration.migrator import (
    COMPLETED,
    FAILED,
    IN_PROGRESS,
    PENDING,
    SCRIPT_LOCATION,
    Migrator,
    ensure_database,
    head_revision,
    read_state,
)
from services.db_migration.wait import wait_for_schema
from services.common.retry import GaveUp
from tests.conftest import drop_database

# Every table the backend and the event service build on (issue 3's list).
EXPECTED_TABLES = {
    "conversation", "conversation_event", "conversation_session", "conversation_statistic",
    "conversation_tag", "conversation_to_tag_mapping", "conversation_intent_metadata",
    "conversation_action_metadata", "conversation_entity_metadata", "conversation_policy_metadata",
    "conversation_slot", "conversation_input_channel", "message_log", "rasa_x_user", "user_role",
    "user_to_role_mapping", "model", "model_tag", "training_example", "story", "domain",
    "nlu_config", "chat_token", "rsa_key_pair", "single_use_token",
}


def _tables(engine):
    return set(sa.inspect(engine).get_table_names()) - {"alembic_version"}


def _schema_snapshot(engine):
    """Tables with their columns and indexes: enough to tell two schemas apart."""
    inspector = sa.inspect(engine)
    return {
        table: (
            [(c["name"], str(c["type"])) for c in inspector.get_columns(table)],
            sorted(i["name"] for i in inspector.get_indexes(table)),
        )
        for table in inspector.get_table_names()
    }


def test_empty_database_migrates_to_head(engine):
    assert read_state(engine).status == PENDING
    state = Migrator(engine).run()
    assert state.status == COMPLETED
    assert state.current_revision == state.target_revision == head_revision()
    assert state.progress_in_percent == 100.0
    assert EXPECTED_TABLES <= _tables(engine)
    with engine.connect() as connection:
        roles = connection.execute(sa.text("SELECT role FROM user_role ORDER BY role")).scalars().all()
    assert roles == ["admin", "annotator", "guest", "tester"]
    assert read_state(engine).status == COMPLETED


def test_rerun_is_a_noop(engine):
    Migrator(engine).run()
    before = _schema_snapshot(engine)
    states = []
    state = Migrator(engine, on_state=states.append).run()
    assert state.status == COMPLETED
    assert IN_PROGRESS not in [s.status for s in states]
    assert _schema_snapshot(engine) == before


def test_status_moves_pending_in_progress_completed(engine):
    seen = []
    migrator = Migrator(engine, on_state=seen.append)
    assert migrator.state.status == PENDING
    migrator.run()
    statuses = [PENDING] + [s.status for s in seen]
    # Collapse repeats: the order of distinct states is what the contract promises.
    order = [s for i, s in enumerate(statuses) if i == 0 or s != statuses[i - 1]]
    assert order == [PENDING, IN_PROGRESS, COMPLETED]
    progress = [s.progress_in_percent for s in seen if s.status == IN_PROGRESS]
    assert progress == sorted(progress) and progress[-1] == 100.0


def test_two_concurrent_migrators_end_with_one_schema(engine, db_settings):
    from services.common.db import create_engine

    other = create_engine(db_settings)
    barrier = threading.Barrier(2)
    results, errors = [], []

    def run(e):
        try:
            migrator = Migrator(e)
            barrier.wait()
            results.append(migrator.run())
        except Exception as exc:  # pragma: no cover - the assertion below shows it
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(e,)) for e in (engine, other)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    other.dispose()
    assert errors == []
    assert [r.status for r in results] == [COMPLETED, COMPLETED]
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM alembic_version")).scalar() == 1
        assert connection.execute(sa.text("SELECT count(*) FROM user_role")).scalar() == 4
    assert EXPECTED_TABLES <= _tables(engine)


BROKEN_REVISION = '''
import sqlalchemy as sa
from alembic import op

revision = "9999"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table("half_done", sa.Column("id", sa.Integer, primary_key=True))
    op.execute("SELECT no_such_function()")


def downgrade():
    pass
'''


@pytest.fixture
def broken_scripts(tmp_path):
    """The real scripts plus one revision that fails halfway."""
    location = tmp_path / "scripts"
    shutil.copytree(SCRIPT_LOCATION, location, ignore=shutil.ignore_patterns("__pycache__"))
    (location / "versions" / "9999_broken.py").write_text(BROKEN_REVISION.format(head=head_revision()))
    return str(location)


def test_failed_migration_reports_failed_and_changes_nothing(engine, broken_scripts):
    state = Migrator(engine, script_location=broken_scripts).run()
    assert state.status == FAILED
    assert state.target_revision == "9999"
    assert state.current_revision is None
    assert "no_such_function" in state.reason
    # One transaction for the whole run: not even the first, good revision stayed.
    assert _tables(engine) == set()
    assert read_state(engine).current_revision is None


def test_failed_migration_on_a_current_schema_keeps_it(engine, broken_scripts):
    Migrator(engine).run()
    before = _schema_snapshot(engine)
    state = Migrator(engine, script_location=broken_scripts).run()
    assert (state.status, state.current_revision) == (FAILED, head_revision())
    assert _schema_snapshot(engine) == before


def test_wait_for_schema_returns_once_migrated(engine):
    waiter_errors = []

    def wait():
        try:
            wait_for_schema(engine, timeout=30, initial=0.1, maximum=0.2)
        except Exception as exc:  # pragma: no cover
            waiter_errors.append(exc)

    waiter = threading.Thread(target=wait)
    waiter.start()
    waiter.join(0.5)
    assert waiter.is_alive(), "the waiter returned before the schema was migrated"
    Migrator(engine).run()
    waiter.join(10)
    assert not waiter.is_alive() and waiter_errors == []


def test_wait_for_schema_gives_up_with_the_reason(engine):
    with pytest.raises(GaveUp, match="database migrations.*waiting for " + head_revision()):
        wait_for_schema(engine, timeout=0.5, initial=0.1, maximum=0.1)


def test_ensure_database_creates_a_missing_one(db_settings):
    from dataclasses import replace

    from services.common.db import create_engine

    target = replace(db_settings, database=db_settings.database + "_new")
    engine = create_engine(target)
    try:
        assert ensure_database(engine) is True
        assert ensure_database(engine) is False
        assert Migrator(engine).run().status == COMPLETED
    finally:
        engine.dispose()
        drop_database(target.database)
