"""Installable without a checkout: the wheel carries everything the CLI reads.

The wheel is built from a copy of the committed-looking tree (no build/ or egg-info leftovers of
this checkout), installed into a fresh venv outside the tree, and `rasax-deploy init` + `render`
run there against an empty folder. `--system-site-packages` lends the venv the dependencies that
are already installed, so nothing is downloaded but the build backend; the test checks that the
`deploy` package the venv runs is the wheel's, not this checkout's (installed editable).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PACKAGE_DATA = (
    "deploy/templates/compose/docker-compose.yml.j2",
    "deploy/templates/nginx/rasax.conf.j2",
    "deploy/templates/env.j2",
    "deploy/templates/actions/actions.py",
    "deploy/images/rasa/start.py",
    "deploy/compose-spec/compose-spec.json",
    "deploy/images/project/Dockerfile",
    "deploy/images/nginx/Dockerfile",
    "deploy/images/postgres/entrypoint.sh",
    "deploy/ansible/site.yml",
    "deploy/ansible/roles/rasax/tasks/main.yml",
    "deploy/start-dockerd.sh",
    "services/db_migration/alembic.ini",
)

pytestmark = pytest.mark.timeout(600)


def run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True, timeout=400, **kwargs)
    assert result.returncode == 0, f"{' '.join(map(str, command))}:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    source = tmp_path_factory.mktemp("source") / "rasax-deploy"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", ".benchmarks", ".venv"))
    out = tmp_path_factory.mktemp("wheel")
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check", "-q",
         "--wheel-dir", str(out), str(source)])
    (path,) = out.glob("rasax_deploy-*.whl")
    return path


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("venv") / "venv"
    assert not str(home).startswith(str(ROOT))
    run([sys.executable, "-m", "venv", "--system-site-packages", str(home)])
    run([str(home / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check", "-q",
         "--no-deps", "--force-reinstall", str(wheel)])
    return home


def test_the_wheel_carries_templates_dockerfiles_ansible_and_the_schema(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [name for name in PACKAGE_DATA if name not in names]
    assert missing == []


def test_init_and_render_from_a_wheel_install_outside_the_tree(venv, tmp_path):
    python = str(venv / "bin" / "python")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "RASAX_DIR")}
    where = run([python, "-c", "import deploy, cli; print(deploy.__file__); print(cli.__file__)"],
                cwd=tmp_path, env=env).stdout.split()
    assert all(path.startswith(str(venv)) for path in where), where

    installation = tmp_path / "rasa"
    rasax = str(venv / "bin" / "rasax-deploy")
    run([rasax, "init", "--dir", str(installation), "--project-name", "wheeltest"], cwd=tmp_path, env=env)
    rendered = run([rasax, "render", "--dir", str(installation), "--http-port", "127.0.0.1:18081"],
                   cwd=tmp_path, env=env)
    for name in (".env", "credentials/DB_PASSWORD", "auth/jwt_public_key.pem", "actions/actions.py",
                 "docker-compose.yml", "nginx-config/rasax.conf"):
        assert (installation / name).is_file(), f"{name} missing after init + render:\n{rendered.stdout}"
    compose = yaml.safe_load((installation / "docker-compose.yml").read_text())
    assert compose["services"]["nginx"]["ports"] == ["127.0.0.1:18081:8080"]
    assert "COMPOSE_PROJECT_NAME=wheeltest" in (installation / ".env").read_text()


def test_the_project_image_from_a_wheel_install_is_refused_with_the_way_out(venv, tmp_path):
    # No Docker needed: the refusal comes before any engine is asked.
    script = ("from deploy import images\n"
              "assert not images.can_build('project') and images.can_build('nginx')\n"
              "try:\n    images.build_all(None, print, ['project'])\n"
              "except images.ImageError as exc:\n    print(exc)\n")
    result = run([str(venv / "bin" / "python"), "-c", script], cwd=tmp_path)
    message = result.stdout.strip()
    assert "source checkout" in message and "rasax-deploy images load DIR" in message, message
    assert "images build postgres rabbitmq redis nginx" in message
