"""The host side of `conversations import`: times, and how a tracker store URL reaches the one-off
container (the import itself: tests/integration/event_service/test_tracker_import.py)."""

from __future__ import annotations

import pytest

from deploy.history_import import SQLITE_MOUNT, HistoryImportError, _reachable_from_container, _with_hint, parse_time


@pytest.mark.parametrize("text, seconds", [
    ("1795528263.038", 1795528263.038),
    ("0", 0.0),
    ("2026-11-30T12:00:00Z", 1796040000.0),
    ("2026-11-30T12:00:00", 1796040000.0),  # UTC unless it says otherwise
    ("2026-11-30T13:00:00+01:00", 1796040000.0),
    ("2026-11-30", 1795996800.0),
])
def test_times_are_unix_seconds_or_iso_8601(text, seconds):
    assert parse_time(text) == seconds


def test_a_time_that_is_neither_says_what_is_expected():
    with pytest.raises(ValueError, match="'yesterday' is neither Unix seconds nor an ISO 8601 time"):
        parse_time("yesterday")


def test_a_sqlite_file_is_mounted_read_only_and_other_urls_pass_unchanged(tmp_path):
    path = tmp_path / "bot" / "rasa.db"
    path.parent.mkdir()
    path.write_bytes(b"")
    url, volumes = _reachable_from_container(f"sqlite:///{path}")
    assert url == f"sqlite:///{SQLITE_MOUNT}/rasa.db"
    assert volumes == {str(path.parent): {"bind": SQLITE_MOUNT, "mode": "ro"}}
    for other in ("postgresql://rasa:secret@db:5432/tracker", "not a url"):
        assert _reachable_from_container(other) == (other, {})
    with pytest.raises(HistoryImportError, match="no SQLite file at"):
        _reachable_from_container(f"sqlite:///{tmp_path / 'missing.db'}")


def test_localhost_in_a_url_gets_a_hint_about_where_the_import_runs():
    assert "inside the stack's network" in _with_hint("refused", "postgresql://rasa@localhost:5432/tracker")
    assert "inside the stack's network" in _with_hint("refused", "postgresql://rasa@127.0.0.1/tracker")
    assert _with_hint("refused", "postgresql://rasa@db.example.com/tracker") == "refused"
    assert _with_hint("refused", None) == "refused"


def _service(name: str, image: str):
    from deploy.compose import ServicePlan

    return ServicePlan(name=name, container=f"p_{name}_1", image=image, command=None, entrypoint=None,
                       environment={"DB_HOST": "db"}, mounts=[], ports=[], network="p_rasax", healthcheck=None,
                       restart="always", depends_on={}, user="1000")


def test_the_import_runs_as_db_migration_or_else_the_first_service_of_the_project_image():
    from deploy.compose import Plan
    from deploy.history_import import _project_service
    from deploy.images import STACK_IMAGES
    from deploy.stack import RefusedError

    project = STACK_IMAGES["project"]
    db, migrator, single = _service("db", "rasax/postgres:15"), _service("db-migration", project), _service("rasax", project)
    assert _project_service(Plan("p", "p_rasax", [], [db, single, migrator])) is migrator
    assert _project_service(Plan("p", "p_rasax", [], [db, single])) is single
    with pytest.raises(RefusedError, match=f"runs no {project} service"):
        _project_service(Plan("p", "p_rasax", [], [db]))
