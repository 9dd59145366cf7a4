"""`conversations import --dir`: on an installation the import runs in a one-off container of the
project image on the stack's network (deploy/history_import.py). A stack without the Rasa servers
(`up --no-rasa`) in a module of its own, so that it never runs beside the Rasa containers of
test_history_import.py; Rasa's table is made in the stack's database from Rasa's declaration.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.e2e.deployment import read_env, running_stack
from tests.integration.event_service.harness import ROOT, fixture_messages
from tests.integration.event_service.tracker_store import create_tracker_store, sqlite_url, tracker_row

pytestmark = [pytest.mark.docker, pytest.mark.timeout(1500)]


@pytest.fixture(scope="module")
def stack(docker_client, tmp_path_factory, request):
    """A stack without the Rasa servers (`up --no-rasa`), its own project and port."""
    with running_stack(docker_client, tmp_path_factory.mktemp("history-stack") / "rasa", "rxhist", request) as stack:
        yield stack


def _psql(container, database: str, sql: str) -> str:
    import io
    import tarfile

    data = sql.encode()
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        info = tarfile.TarInfo("history.sql")
        info.size = len(data)
        info.mode = 0o644
        tar.addfile(info, io.BytesIO(data))
    assert container.put_archive("/tmp", archive.getvalue())
    code, output = container.exec_run(["psql", "-v", "ON_ERROR_STOP=1", "-qAt", "-U", "admin", "-d", database, "-f",
                                       "/tmp/history.sql"])
    assert code == 0, output.decode(errors="replace")
    return output.decode()


def _rasa_table_sql(rows: list[dict]) -> str:
    """Rasa's CREATE TABLE (from its declaration) and the rows, as one psql script."""
    from sqlalchemy.dialects import postgresql
    from sqlalchemy.schema import CreateIndex, CreateTable

    from services.event_service.tracker_import import RASA_EVENTS

    dialect = postgresql.dialect()
    statements = [str(CreateTable(RASA_EVENTS).compile(dialect=dialect)),
                  *(str(CreateIndex(index).compile(dialect=dialect)) for index in RASA_EVENTS.indexes)]
    statements += [str(RASA_EVENTS.insert().values(**row).compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
                   for row in rows]
    return ";\n".join(statements) + ";\n"


def run_deploy(*args: str, stdin: str | None = None) -> tuple[int, dict | None, str]:
    process = subprocess.run([sys.executable, os.path.join(ROOT, "cli.py"), "conversations", "import", "--json", *args],
                             input=stdin, capture_output=True, text=True, timeout=600,
                             env={k: v for k, v in os.environ.items() if not k.startswith(("DB_", "RASAX_"))})
    lines = process.stdout.strip().splitlines()
    return process.returncode, json.loads(lines[-1]) if lines else None, process.stderr


def test_an_installation_imports_inside_its_stack_from_a_tracker_store_it_reaches(stack, tmp_path):
    messages = fixture_messages()
    rows = [tracker_row(message.body) for message in messages]
    senders = {row["sender_id"] for row in rows}
    db = stack.docker_client.containers.get(f"{stack.project}_db_1")
    dir_options = ("--dir", str(stack.dir), "-p", stack.project)

    # Without --tracker-store: the stack's own tracker database, which only Rasa creates.
    code, summary, err = run_deploy(*dir_options)
    assert code == 1 and 'database "tracker" does not exist' in err, err

    _psql(db, "rasa", "CREATE DATABASE tracker;")
    _psql(db, "tracker", _rasa_table_sql(rows))
    code, summary, err = run_deploy(*dir_options)
    assert code == 0, err
    assert (summary["stored"], summary["refused"]) == (len(rows), 0) and summary["complete"]
    assert '{"progress": ' in err  # relayed from the one-off container as it went
    assert stack.wait_for_senders(senders) >= senders  # through nginx and the backend

    # Another tracker store on the stack's server, its password from stdin; then a SQLite file.
    password = read_env(stack.dir)["DB_PASSWORD"]
    code, summary, err = run_deploy(*dir_options, "--tracker-store", "postgresql://admin@db:5432/tracker",
                                    "--password-stdin", stdin=password + "\n")
    assert code == 0, err
    assert (summary["stored"], summary["skipped_duplicate"]) == (0, len(rows))
    assert password not in err + json.dumps(summary)

    path = tmp_path / "rasa.db"
    create_tracker_store(sqlite_url(path), rows)
    path.chmod(0o644)
    tmp_path.chmod(0o755)
    code, summary, err = run_deploy(*dir_options, "--tracker-store", sqlite_url(path), "--dry-run")
    assert code == 0, err
    assert (summary["stored"], summary["skipped_duplicate"], summary["dry_run"]) == (0, len(rows), True)
    # No one-off container is left behind.
    assert not stack.docker_client.containers.list(all=True, filters={
        "label": ["com.docker.compose.oneoff=True", f"com.docker.compose.project={stack.project}"]})
