"""The command line as a user meets it (click's CliRunner), and the library rule behind each answer.

No Docker: every command here fails or finishes before an engine is needed (`up --dry-run`
only reads one when it answers, and these tests look at the files part of its plan).
"""

from __future__ import annotations

import io
import json
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from deploy import preview, stack
from deploy.files import KEPT, UPDATED, Outcome
from deploy.install import initialize
from deploy.layout import Layout
from deploy.output import Output
from deploy.render import METRICS_FILES, PROMETHEUS_CONF, RenderOptions, apply

# The metrics profile's files, rendered after docker-compose.yml and the nginx config.
METRICS = (PROMETHEUS_CONF, *METRICS_FILES)


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture
def installed(tmp_path) -> stack.Target:
    """An installation folder after `init` and `render` (what `up` leaves before Docker)."""
    target = stack.Target.at(str(tmp_path / "rasa"), "clitest")
    initialize(target.layout, "clitest")
    apply(target.layout, RenderOptions(http_port="18090"))
    return target


def snapshot(root: Path) -> dict:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# ---- a folder that is not an installation ----------------------------------------------------

@pytest.mark.parametrize("command", ["status", "logs", "down", "migration-status", "migrate"])
def test_a_folder_that_is_not_an_installation_is_refused(tmp_path, command):
    for folder in (tmp_path / "nonexistent", tmp_path):  # missing, and present without .env
        result = run(command, "--dir", str(folder))
        assert result.exit_code == 2, result.output
        assert f"error: {folder} is not a rasax-deploy installation" in result.output
        assert len(result.output.strip().splitlines()) == 1


def test_require_installation_accepts_an_installation_or_an_explicit_project(tmp_path, installed):
    with pytest.raises(stack.InputError, match="does not exist"):
        stack.Target.at(str(tmp_path / "nonexistent")).require_installation()
    with pytest.raises(stack.InputError, match="has no .env"):
        stack.Target.at(str(tmp_path)).require_installation()
    assert stack.Target.at(str(installed.layout.root)).require_installation().project == "clitest"
    # After the folder is lost, `down -p NAME` still reaches that project's containers.
    assert stack.Target.at(str(tmp_path / "gone"), "old").require_installation().project == "old"


# ---- names: profiles and services ------------------------------------------------------------

def test_a_misspelt_profile_is_refused_with_the_valid_ones(installed):
    root = str(installed.layout.root)
    result = run("up", "--dir", root, "--profile", "ducklin", "--dry-run")
    assert result.exit_code == 2
    assert result.output.strip() == "error: unknown profile 'ducklin' (did you mean 'duckling'?); valid: duckling, metrics"
    before = snapshot(installed.layout.root)
    assert run("up", "--dir", root, "--profile", "duckling,ducklin", "-q").exit_code == 2
    assert snapshot(installed.layout.root) == before  # refused before anything was written


def test_valid_profiles_come_from_the_compose_model_with_the_override(installed):
    model = stack.proposed_model(installed, RenderOptions())
    assert stack.profile_names(model) == {"duckling", "metrics"}
    stack.check_profiles(model, {"duckling"})
    installed.layout.override_file.write_text(
        "services:\n  metrics:\n    image: example/metrics:1\n    profiles: [monitoring]\n")
    model = stack.proposed_model(installed, RenderOptions())
    stack.check_profiles(model, {"monitoring"})
    with pytest.raises(stack.InputError, match=r"unknown profile 'monitor' \(did you mean 'monitoring'\?\); "
                                               r"valid: duckling, metrics, monitoring"):
        stack.check_profiles(model, {"monitor"})


def test_logs_of_an_unknown_service_lists_the_services_and_the_closest(installed):
    result = run("logs", "rasa_x", "--dir", str(installed.layout.root))
    assert result.exit_code == 2
    message = result.output.strip()
    assert message.startswith("error: unknown service 'rasa_x' (did you mean 'rasa-x'?); valid: ")
    assert "rasax-deploy logs rasa_x" not in message  # never the same failing command again
    for name in ("db", "db-migration", "event-service", "nginx", "rabbit", "rasa-x", "redis", "duckling"):
        assert name in message.split("valid: ")[1].split(", ")

    with pytest.raises(stack.InputError, match="did you mean 'event-service'"):
        stack.check_service(stack.service_names(installed), "eventservice")
    with pytest.raises(stack.InputError, match=r"unknown service 'zzz'; valid: "):
        stack.check_service(stack.service_names(installed), "zzz")


# ---- -q and --json ---------------------------------------------------------------------------

def test_quiet_prints_exactly_the_final_line(installed):
    result = run("up", "--dir", str(installed.layout.root), "--http-port", "18091", "--dry-run", "-q")
    assert result.exit_code == 0, result.output
    assert len(result.output.splitlines()) == 1
    assert result.output.startswith("dry run: ")

    stream = io.StringIO()
    out = Output(quiet=True, stream=stream)
    out.step("Starting")
    out.note("rasa-x:0.1.0: building")
    out.outcome(Outcome(Path("/x"), UPDATED))
    out.event("db", "started")
    out.final("✔ rasa is up at http://localhost (17 s)", "  log in as admin", "  next: rasax-deploy status")
    assert stream.getvalue() == "✔ rasa is up at http://localhost (17 s)\n"


def test_json_lines_say_changed_from_the_outcome_not_the_wording(tmp_path):
    root = tmp_path / "rasa"
    # A project name of its own: the default `rasa` may be this machine's real installation.
    first = run("init", "--dir", str(root), "-p", f"clitest{uuid.uuid4().hex[:8]}", "--json")
    records = [json.loads(line) for line in first.output.splitlines()]
    paths = [r for r in records if "path" in r]
    assert paths and all(r["changed"] is True for r in paths)

    second = [json.loads(line) for line in run("init", "--dir", str(root), "--json").output.splitlines()]
    assert [r["changed"] for r in second if "path" in r] == [False] * len(paths)

    rendered = [json.loads(line) for line in run("render", "--dir", str(root), "--json").output.splitlines()]
    assert [(Path(r["path"]).name, r["changed"]) for r in rendered if "path" in r] == [
        ("docker-compose.yml", True), ("rasax.conf", True), *((Path(p).name, True) for p in METRICS)]
    again = [json.loads(line) for line in run("render", "--dir", str(root), "--json").output.splitlines()]
    assert [r["changed"] for r in again if "path" in r] == [False] * (2 + len(METRICS))

    assert Outcome(Path("/x"), KEPT).changed is False
    assert Outcome(Path("/x"), "restored from .env").changed is True  # any new action is a change


def test_a_failed_up_ends_with_what_it_changed_before_failing(installed):
    # init restores the lost file, then `up` refuses the wrong project: the run failed, but the
    # folder did change, and the last JSON line says so.
    (installed.layout.actions / "actions.py").unlink()
    result = CliRunner().invoke(main, ["up", "--dir", str(installed.layout.root), "-p", "another", "--json"])
    assert result.exit_code == 1
    records = [json.loads(line) for line in result.stdout.splitlines()]
    restored = [r for r in records if r.get("path", "").endswith("actions/actions.py")]
    assert restored == [dict(restored[0], action="created", changed=True)]
    assert records[-1]["done"] is False and records[-1]["changed"] is True
    assert "belongs to project 'clitest', not 'another'" in records[-1]["error"]


def test_a_failed_run_ends_with_what_it_changed_before():
    stream = io.StringIO()
    out = Output(as_json=True, stream=stream)
    out.outcome(Outcome(Path("/etc/rasa/docker-compose.yml"), UPDATED))
    out.event("nginx", "recreating", reason="configuration or image changed")
    out.failed("nginx is not healthy after 300 s")
    last = json.loads(stream.getvalue().splitlines()[-1])
    assert last["done"] is False and last["changed"] is True and last["error"].startswith("nginx")


# ---- dry run ---------------------------------------------------------------------------------

def test_dry_run_plans_the_files_and_writes_nothing(tmp_path, installed):
    before = snapshot(installed.layout.root)
    changes = preview.up_changes(installed, stack.render_choice(installed, http_port="18092"), set())
    files = {Path(c.name).name: c.action for c in changes if c.kind == "file"}
    assert files == {"docker-compose.yml": "update", "rasax.conf": "keep", **{Path(p).name: "keep" for p in METRICS}}
    assert {c.kind for c in changes} >= {"file", "engine", "image", "service"}
    assert snapshot(installed.layout.root) == before

    same = preview.render_changes(installed, stack.render_choice(installed))
    assert [c.changed for c in same] == [False] * (2 + len(METRICS))

    fresh = stack.Target.at(str(tmp_path / "fresh"))
    planned = preview.up_changes(fresh, RenderOptions(), set())
    assert {Path(c.name).name for c in planned if c.kind == "file" and c.action == "create"} >= {
        ".env", "docker-compose.yml", "rasax.conf", "DB_PASSWORD", "actions.py"}
    assert {c.name for c in planned if c.kind == "service"} >= {"db", "rasa-x", "nginx"}
    assert all(c.action == "create" for c in planned if c.kind == "service")
    assert not (tmp_path / "fresh").exists()

    result = run("up", "--dir", str(installed.layout.root), "--http-port", "18092", "--dry-run", "--json")
    records = [json.loads(line) for line in result.output.splitlines()]
    compose = next(r for r in records if r.get("name") == "docker-compose.yml")
    assert compose["changed"] is True and compose["dry_run"] is True
    assert records[-1]["done"] is True and records[-1]["changed"] is True
    assert snapshot(installed.layout.root) == before


# ---- status: the rules the CLI only prints ---------------------------------------------------

def test_uptime_text_and_the_health_exit_rule():
    assert [stack.uptime_text(s) for s in (None, 0, 65, 3599, 3600, 3 * 3600 + 7 * 60 + 5)] == [
        "-", "0m00s", "1m05s", "59m59s", "1h00m", "3h07m"]
    row = {"state": "running", "health": "healthy"}
    assert stack.healthy([row, dict(row, health="-")])
    assert not stack.healthy([])
    assert not stack.healthy([row, dict(row, health="starting")])
    assert not stack.healthy([row, dict(row, state="exited", health="-")])


def test_a_certificate_implies_tls(installed, tmp_path):
    assert stack.render_choice(installed, cert="c.pem").tls is True
    assert stack.render_choice(installed, cert="c.pem", tls=False).tls is False
    assert stack.render_choice(installed).tls is False
    assert stack.render_choice(installed, http_port="8080").http_port == "8080"
    result = run("up", "--dir", str(installed.layout.root), "--cert", str(tmp_path / "c.pem"), "--dry-run")
    assert result.exit_code == 1 and "--cert and --key go together" in result.output
