"""`deploy.migrations` on the database DB_* names (what runs inside the stack's one-off container),
against the real PostgreSQL of the test machine."""

from __future__ import annotations

import pytest

from deploy import migrations
from tests.conftest import db_env


@pytest.fixture
def environment(empty_database, monkeypatch):
    for name, value in db_env(empty_database).items():
        monkeypatch.setenv(name, value)


def test_migrate_reports_changed_only_when_the_revision_moved(environment):
    assert not migrations.is_current(migrations.status(None))

    first: list[dict] = []
    final = migrations.migrate(None, first.append)
    assert migrations.is_current(final) and migrations.is_current(migrations.status(None))
    assert first[0]["changed"] is False and first[-1]["changed"] is True
    assert first[-1]["status"] == "completed"

    again: list[dict] = []
    migrations.migrate(None, again.append)
    assert [s["changed"] for s in again] == [False] * len(again)


def test_the_environment_is_used_only_without_a_folder():
    assert migrations.uses_environment(None, {"DB_HOST": "db"})
    assert not migrations.uses_environment("/etc/rasa", {"DB_HOST": "db"})
    assert not migrations.uses_environment(None, {})


def test_a_bad_setting_is_one_line_with_exit_2(environment, monkeypatch):
    monkeypatch.setenv("DB_PORT", "not-a-port")
    with pytest.raises(migrations.MigrationError, match="DB_PORT") as caught:
        migrations.status(None)
    assert caught.value.code == 2
