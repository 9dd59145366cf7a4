"""The migrator's /metrics, `python -m services.db_migration` against a real PostgreSQL: a first
migrator applies every revision, a second one finds nothing to do."""

from __future__ import annotations

import os
import subprocess
import sys
from contextlib import contextmanager

from alembic.script import ScriptDirectory

from services.db_migration.migrator import alembic_config, head_revision
from tests.conftest import db_env, free_port, wait_until
from tests.integration.metrics_scrape import missing_from_dashboard_view, scrape, value

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


@contextmanager
def migrator(database: str):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "services.db_migration"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, **db_env(database), "SELF_PORT": str(port)},
    )  # fmt: skip
    try:
        yield f"http://127.0.0.1:{port}/metrics"
    finally:
        process.terminate()
        process.wait(10)


def completed(url: str) -> bool:
    try:
        return value(scrape(url), "rasax_migration_completed") == 1
    except OSError:
        return False


def test_revisions_applied_and_the_current_revision(empty_database):
    revisions = len(list(ScriptDirectory.from_config(alembic_config()).walk_revisions()))
    head = head_revision()
    for applied in (revisions, 0):  # the second migrator finds the schema at head
        with migrator(empty_database) as url:
            wait_until(lambda: completed(url), 60, "the migration")
            samples = scrape(url)
            assert value(samples, "rasax_migrations_applied_total") == applied
            assert samples["rasax_migration_info"] == {
                (("current_revision", head), ("status", "completed"), ("target_revision", head)): 1.0
            }
            assert missing_from_dashboard_view("db-migration", samples) == set()
