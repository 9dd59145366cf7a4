"""The Ansible role, run for real by ansible-playbook against this machine (connection local).

Nothing global is touched: apt is off (`rasax_manage_packages: false`), no Docker stack is started
(`rasax_start: false`: the role runs `init` + `render` instead of `up`), and every path the role
writes (source tree, venv, installation folder, TLS staging) is under the test's tmp_path.
"""

from __future__ import annotations

import datetime
import io
import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SITE = ROOT / "deploy" / "ansible" / "site.yml"
EXAMPLE = ROOT / "inventory" / "example"
ROLE = ROOT / "deploy" / "ansible" / "roles" / "rasax"

TASK_LINE = re.compile(r"^TASK \[(?:rasax : )?(?P<name>.+?)\] \*+$")
RESULT_LINE = re.compile(r"^(?P<status>ok|changed|skipping|fatal|failed): \[localhost\]")
RECAP_LINE = re.compile(r"^localhost\s+:\s+(?P<fields>.+)$")


class Run:
    """One ansible-playbook run: its output, each task's status and the recap counters."""

    def __init__(self, result: subprocess.CompletedProcess):
        self.rc = result.returncode
        self.output = result.stdout + result.stderr
        self.tasks: dict[str, str] = {}
        self.recap: dict[str, int] = {}
        task = None
        for line in self.output.splitlines():
            if m := TASK_LINE.match(line):
                task = m["name"]
            elif (m := RESULT_LINE.match(line)) and task:
                self.tasks[task] = m["status"]
            elif m := RECAP_LINE.match(line):
                self.recap = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m["fields"])}

    def changed_tasks(self) -> list[str]:
        return [name for name, status in self.tasks.items() if status == "changed"]


@pytest.fixture
def ansible_env(tmp_path):
    # Ansible's own state (tmp files, facts) stays in the test's folder, not in ~/.ansible.
    home = tmp_path / "ansible-home"
    config = tmp_path / "ansible.cfg"  # an empty one: no user or system ansible.cfg applies
    config.write_text("[defaults]\n")
    return dict(os.environ, ANSIBLE_HOME=str(home), ANSIBLE_LOCAL_TEMP=str(home / "tmp"),
                ANSIBLE_REMOTE_TEMP=str(home / "remote-tmp"), ANSIBLE_NOCOLOR="1",
                ANSIBLE_FORCE_COLOR="0", ANSIBLE_RETRY_FILES_ENABLED="0", ANSIBLE_CONFIG=str(config))


@pytest.fixture
def local_inventory(tmp_path):
    """The example inventory's group_vars with this machine as the only `rasax` host."""
    inventory = tmp_path / "inventory"
    shutil.copytree(EXAMPLE / "group_vars", inventory / "group_vars")
    hosts = {"all": {"children": {"rasax": {"hosts": {"localhost": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}}}}
    (inventory / "hosts.yml").write_text(json.dumps(hosts))  # JSON is YAML
    return inventory


def commit(revision: str = "HEAD") -> str:
    """A fixed commit id: other work may commit to this checkout while a test runs."""
    return subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--verify", f"{revision}^{{commit}}"],
                          capture_output=True, text=True, check=True).stdout.strip()


def host_vars(tmp_path, **extra) -> Path:
    """The example settings pointed at tmp_path; no sudo (we are root already), no apt."""
    values = {
        "rasax_source_version": commit(),
        "rasax_dir": str(tmp_path / "etc-rasa"),
        "rasax_src": str(tmp_path / "opt" / "src"),
        "rasax_venv": str(tmp_path / "opt" / "venv"),
        "rasax_tls_stage_dir": str(tmp_path / "tls-stage"),
        "rasax_project_name": "ansibletest",
        "rasax_manage_packages": False,
        "rasax_python": sys.executable,
        # Dependencies come from this Python's site-packages: no download of the whole tree.
        "rasax_venv_site_packages": True,
        "ansible_become": False,
        **extra,
    }
    path = tmp_path / f"vars-{len(list(tmp_path.glob('vars-*')))}.json"
    path.write_text(json.dumps(values))
    return path


def playbook(inventory, env, *args) -> Run:
    result = subprocess.run([sys.executable, "-m", "ansible", "playbook", "-i", str(inventory), str(SITE), *args],
                            capture_output=True, text=True, env=env, timeout=300, cwd=inventory)
    return Run(result)


def test_site_yml_passes_syntax_check_with_the_example_inventory(ansible_env):
    result = subprocess.run([sys.executable, "-m", "ansible", "playbook", "--syntax-check",
                             "-i", str(EXAMPLE), str(SITE)], capture_output=True, text=True, env=ansible_env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "playbook: " in result.stdout
    # The example inventory puts a host in the group site.yml targets.
    listed = subprocess.run([sys.executable, "-m", "ansible", "playbook", "--list-hosts",
                             "-i", str(EXAMPLE), str(SITE)], capture_output=True, text=True, env=ansible_env)
    assert listed.returncode == 0 and "rasax-1" in listed.stdout, listed.stdout + listed.stderr


def test_every_role_default_is_prefixed_and_commented():
    lines = (ROLE / "defaults" / "main.yml").read_text().splitlines()
    names = [(i, line.split(":", 1)[0]) for i, line in enumerate(lines) if re.match(r"^\w+:", line)]
    assert len(names) >= 10
    for index, name in names:
        assert name.startswith("rasax_"), name
        assert lines[index - 1].startswith("#"), f"{name} has no comment above it"


def test_check_mode_predicts_changes_and_writes_nothing(tmp_path, local_inventory, ansible_env):
    # The example's default rasax_start: true: the check must pass without Docker or a venv.
    run = playbook(local_inventory, ansible_env, "--check", "-e", f"@{host_vars(tmp_path)}")

    assert run.rc == 0, run.output
    assert run.recap["failed"] == 0 and run.recap["unreachable"] == 0
    assert run.tasks["Ensure the source folder exists on the host"] == "changed"
    assert run.tasks["Create the virtualenv"] == "changed"
    # Commands that would change the host cannot be simulated: skipped, never run.
    assert run.tasks["Install rasax-deploy into the virtualenv from the source tree"] == "skipping"
    assert run.tasks["Install or upgrade and start the stack with rasax-deploy up"] == "skipping"
    assert run.tasks["Check that every service is running and healthy"] == "skipping"
    assert run.tasks["Install the Debian packages the stack needs"] == "skipping"  # apt is off
    for written in ("etc-rasa", "opt", "tls-stage"):
        assert not (tmp_path / written).exists(), f"check mode wrote {written}"


def test_tls_without_a_key_stops_before_the_host_is_touched(tmp_path, local_inventory, ansible_env, tls_pair):
    cert, _ = tls_pair
    run = playbook(local_inventory, ansible_env, "-e",
                   f"@{host_vars(tmp_path, rasax_start=False, rasax_tls=True, rasax_tls_cert_src=str(cert))}")

    assert run.rc != 0
    assert run.tasks["Check that the TLS certificate and key are given together"] == "fatal"
    assert "rasax_tls needs rasax_tls_cert_src and rasax_tls_key_src" in run.output
    for written in ("etc-rasa", "opt", "tls-stage"):
        assert not (tmp_path / written).exists(), written


@pytest.fixture
def tls_pair(tmp_path):
    """A throw-away self-signed certificate and its key, as PEM files on the 'controller'."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rasax.test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=2)).sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "fullchain.pem", tmp_path / "privkey.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_role_installs_the_cli_and_prepares_the_folder_idempotently(tmp_path, local_inventory, ansible_env,
                                                                       tls_pair):
    cert, key = tls_pair
    variables = host_vars(tmp_path, rasax_start=False, rasax_http_port="18080", rasax_tls=True,
                          rasax_https_port="18443", rasax_tls_cert_src=str(cert), rasax_tls_key_src=str(key))
    install = tmp_path / "etc-rasa"

    first = playbook(local_inventory, ansible_env, "-v", "-e", f"@{variables}")
    assert first.rc == 0, first.output
    for task in ("Unpack the source tree on the host", "Create the virtualenv",
                 "Install rasax-deploy into the virtualenv from the source tree",
                 "Copy the TLS private key to the host",
                 "Create the installation folder with rasax-deploy init",
                 "Render the compose file and nginx config with rasax-deploy render"):
        assert first.tasks[task] == "changed", (task, first.output)

    # What the CLI in the role's venv made: secrets 0600, the project name, the ports, TLS.
    assert (tmp_path / "opt" / "venv" / "bin" / "rasax-deploy").exists()
    secrets = list((install / "credentials").iterdir())
    assert len(secrets) >= 8
    for path in [*secrets, install / "auth" / "jwt_private_key.pem", tmp_path / "tls-stage" / "privkey.pem"]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert "COMPOSE_PROJECT_NAME=ansibletest" in (install / ".env").read_text()
    compose = (install / "docker-compose.yml").read_text()
    assert "18080" in compose and "18443" in compose
    assert (install / "certs").is_dir() and any((install / "certs").iterdir())
    # Neither a generated secret nor the TLS key reaches the log, even with -v.
    key_body = key.read_text().splitlines()[1]
    assert key_body not in first.output
    for secret in secrets:
        assert secret.read_text().strip() not in first.output, secret.name

    second = playbook(local_inventory, ansible_env, "-e", f"@{variables}")
    assert second.rc == 0, second.output
    assert second.recap["changed"] == 0, second.changed_tasks()
    assert second.tasks["Create the installation folder with rasax-deploy init"] == "ok"
    assert second.tasks["Install rasax-deploy into the virtualenv from the source tree"] == "skipping"

    # A file deleted upstream goes from the host's tree too; what Python/pip write there stays.
    source = tmp_path / "opt" / "src"
    stale, cache = source / "deploy" / "removed_upstream.py", source / "deploy" / "__pycache__" / "x.pyc"
    stale.write_text("raise SystemExit('stale module')\n")
    cache.parent.mkdir(exist_ok=True)
    cache.write_bytes(b"")
    third = playbook(local_inventory, ansible_env, "-e", f"@{variables}")
    assert third.rc == 0, third.output
    assert third.changed_tasks() == ["Remove files that are no longer in the source tree"], third.output
    assert not stale.exists() and cache.exists()
    assert (source / "deploy" / "stack.py").exists() and any(source.glob("*.egg-info"))

    # On a converged host, check mode predicts no change either.
    check = playbook(local_inventory, ansible_env, "--check", "-e", f"@{variables}")
    assert check.rc == 0, check.output
    assert check.recap["changed"] == 0, check.changed_tasks()

    # Check mode predicts what matters, and still writes nothing: another version of the source
    # (commit ids compared) and another port (the CLI's `render --dry-run --json` plan)...
    compose_before = (install / "docker-compose.yml").read_bytes()
    deployed = json.loads(variables.read_text())["rasax_source_version"]
    predicted = playbook(local_inventory, ansible_env, "--check", "-e", f"@{variables}",
                         "-e", "rasax_http_port=18081", "-e", f"rasax_source_version={commit(deployed + '~1')}")
    assert predicted.rc == 0, predicted.output
    # (Files the other commit lacks would be removed too: also a predicted change.)
    assert set(predicted.changed_tasks()) - {"Remove files that are no longer in the source tree"} == {
        "Record the commit of the source tree on the host",
        "Render the compose file and nginx config with rasax-deploy render"}, predicted.output
    # ... and `up --dry-run`: this project has no container here, so up would create them.
    start = playbook(local_inventory, ansible_env, "--check", "-e", f"@{variables}", "-e", "rasax_start=true")
    assert start.rc == 0, start.output
    assert start.changed_tasks() == ["Install or upgrade and start the stack with rasax-deploy up"], start.output
    assert (install / "docker-compose.yml").read_bytes() == compose_before
    assert (source / ".rasax-deploy-commit").read_text().strip() == deployed

    # A failed `up` reports what it changed before failing, then fails: the role runs the CLI it
    # is given (here one that changed a file and then failed, as `up` does when a service never
    # becomes healthy) and must not say changed=0.
    failing = tmp_path / "failing-rasax-deploy"
    failing.write_text("#!/bin/sh\n"
                       "echo '{\"path\": \"/etc/rasa/docker-compose.yml\", \"action\": \"updated\", \"changed\": true}'\n"
                       "echo '{\"done\": false, \"error\": \"nginx is not healthy\", \"changed\": true}'\n"
                       "echo 'error: nginx is not healthy' >&2\nexit 1\n")
    failing.chmod(0o755)
    failed = playbook(local_inventory, ansible_env, "-e", f"@{variables}", "-e", "rasax_start=true",
                      "-e", f"rasax_command={failing}")
    assert failed.rc != 0
    assert failed.tasks["Install or upgrade and start the stack with rasax-deploy up"] == "changed", failed.output
    assert failed.tasks["Stop when rasax-deploy up failed"] == "fatal", failed.output
    assert failed.recap["changed"] >= 1 and failed.recap["failed"] == 1, failed.recap
    assert "nginx is not healthy" in failed.output


def test_changes_filter_reads_the_changed_field_only():
    sys.path.insert(0, str(ROLE / "filter_plugins"))
    try:
        from rasax_cli import rasax_changes
    finally:
        sys.path.pop(0)
    # Lines as the CLI's library writes them (deploy/output.py), so a reworded message changes nothing.
    from deploy.files import KEPT, UPDATED, Outcome
    from deploy.output import Output

    stream = io.StringIO()
    out = Output(as_json=True, stream=stream)
    out.step("Ensuring the installation folder /etc/rasa")
    out.outcome(Outcome(Path("/etc/rasa/.env"), KEPT))
    out.note("rasa-x:0.1.0: building (changed, content abc)")  # a note is progress, not a change
    out.event("rasa_default", "kept", kind="network")
    out.event("db", "unchanged")
    out.event("db", "healthy", seconds=0.1)
    out.event("rasax/rasa-x:0.1.0", "kept", kind="image", changed=False)
    out.final("done", url="http://localhost")
    quiet = stream.getvalue()
    assert rasax_changes(quiet) == []
    for change in (lambda o: o.event("rasa-x", "recreating", reason="configuration or image changed"),
                   lambda o: o.outcome(Outcome(Path("/etc/rasa/nginx-config/rasax.conf"), UPDATED)),
                   lambda o: o.event("rasax/rasa-x:0.1.0", "kept, reworded", kind="image", changed=True),
                   lambda o: o.event("docker", "started", kind="engine")):
        stream = io.StringIO()
        change(Output(as_json=True, stream=stream))
        record = json.loads(stream.getvalue())
        assert rasax_changes(quiet + stream.getvalue()) == [record]
