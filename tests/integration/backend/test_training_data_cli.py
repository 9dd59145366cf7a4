"""`rasax-deploy data import|export` against a real rasa-x served over HTTP, from an
installation folder as `init` leaves it (the admin's password in credentials/)."""

from __future__ import annotations

import json
import threading

import pytest
import yaml
from click.testing import CliRunner
from werkzeug.serving import make_server

from tests.conftest import free_port

from .conftest import ADMIN_PASSWORD
from .training_data_helpers import API, PROJECT_DIR, PROJECT_FILES, empty_training_data, project_file


@pytest.fixture(scope="module")
def served(app):
    port = free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield port
    server.shutdown()
    thread.join(10)


@pytest.fixture
def installation(tmp_path, served, db_engine):
    folder = tmp_path / "rasa"
    (folder / "credentials").mkdir(parents=True)
    (folder / ".env").write_text("COMPOSE_PROJECT_NAME=rasax-data-cli\nRASA_X_USERNAME=admin\n")
    (folder / "credentials" / "RASA_X_PASSWORD").write_text(ADMIN_PASSWORD + "\n")
    (folder / "rasax-state.json").write_text(json.dumps({"render": {"http_port": f"127.0.0.1:{served}"}}))
    empty_training_data(db_engine)
    yield folder
    empty_training_data(db_engine)


def _cli(*args):
    from cli import main

    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_import_a_project_folder_then_export_it_again(installation, tmp_path, client, admin):
    result = _cli("data", "import", "--dir", installation, "--mode", "replace", "--json", PROJECT_DIR)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["parts"] == ["config", "domain", "nlu", "rules", "stories"] and summary["examples"] == 33
    assert client.get(f"{API}/data_version", headers=admin).json["version"] == summary["version"]

    exported = tmp_path / "exported"
    result = _cli("data", "export", "--dir", installation, "--json", exported)
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert [line["action"] for line in lines[:-1]] == ["created"] * 5
    assert lines[-1]["version"] == summary["version"]
    for path in PROJECT_FILES:
        assert yaml.safe_load((exported / path).read_text()) == yaml.safe_load(project_file(path)), path
    again = _cli("data", "export", "--dir", installation, "--json", exported)
    assert [json.loads(line)["changed"] for line in again.output.splitlines()[:-1]] == [False] * 5

    archive = tmp_path / "data.tar.gz"
    assert _cli("data", "export", "--dir", installation, archive).exit_code == 0
    assert _cli("data", "import", "--dir", installation, "--mode", "replace", archive).exit_code == 0
    assert client.get(f"{API}/data_version", headers=admin).json["version"] == summary["version"]


def test_a_refused_import_says_why_and_changes_nothing(installation, tmp_path, client, admin):
    _cli("data", "import", "--dir", installation, "--mode", "replace", PROJECT_DIR)
    before = client.get(f"{API}/data_version", headers=admin).json["version"]
    bad = tmp_path / "nlu.yml"
    bad.write_text("nlu:\n- intent: greet\n  examples: |\n    - hi [there]{\"role\": \"x\"}\n")
    result = _cli("data", "import", "--dir", installation, bad)
    assert result.exit_code == 1
    assert 'nlu.yml, line 4: the entity \'{"role": "x"}\' needs "entity": "<name>"' in result.output
    assert client.get(f"{API}/data_version", headers=admin).json["version"] == before
    not_rasa = tmp_path / "notes.txt"
    not_rasa.write_text("hello")
    assert "expected a Rasa project folder" in _cli("data", "import", "--dir", installation, not_rasa).output


def test_a_wrong_password_and_a_missing_installation_are_named(installation, tmp_path):
    (installation / "credentials" / "RASA_X_PASSWORD").write_text("not-the-password\n")
    result = _cli("data", "export", "--dir", installation, tmp_path / "out")
    assert result.exit_code == 1 and "rasa-x refused the log-in of 'admin'" in result.output
    result = _cli("data", "export", "--dir", tmp_path / "nothing", tmp_path / "out")
    assert result.exit_code == 2 and "is not a rasax-deploy installation" in result.output
