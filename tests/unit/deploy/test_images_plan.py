"""The pure parts of image building: mirrors from the host, content hashes, target wheels."""

from __future__ import annotations

import zipfile

import pytest
from deploy import images


def test_host_mirrors_from_one_line_and_deb822_files(tmp_path):
    one_line = tmp_path / "sources.list"
    one_line.write_text("# comment\ndeb [arch=amd64] http://mirror.example/debian bookworm main contrib\n"
                        "deb-src http://mirror.example/debian bookworm main\n"
                        "deb https://other.example/apt stable main\n")
    deb822 = tmp_path / "debian.sources"
    deb822.write_text("Types: deb\nURIs: http://deb.example/debian\nSuites: bookworm bookworm-updates\n"
                      "Components: main\n\nTypes: deb\nURIs: http://security.example/debian-security\n"
                      "Suites: bookworm-security\nComponents: main\nEnabled: no\n")
    assert images.host_apt_sources([str(one_line), str(deb822)]) == [
        "deb http://mirror.example/debian bookworm main contrib",
        "deb http://deb.example/debian bookworm main",
        "deb http://deb.example/debian bookworm-updates main",
    ]


def test_content_hash_follows_the_base_and_the_files():
    first = images.content_hash("redis", "sha256:aaa")
    assert first == images.content_hash("redis", "sha256:aaa")
    assert first != images.content_hash("redis", "sha256:bbb")
    assert first != images.content_hash("nginx", "sha256:aaa")


def _wheel(directory, name, requires):
    path = directory / f"{name}-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        metadata = "Metadata-Version: 2.1\nName: {}\nVersion: 1.0\n".format(name)
        metadata += "".join(f"Requires-Dist: {r}\n" for r in requires)
        archive.writestr(f"{name}-1.0.dist-info/METADATA", metadata)
    return path


def test_missing_requirements_are_judged_for_the_image_python(tmp_path):
    _wheel(tmp_path, "redis", ['async-timeout>=4.0.3; python_full_version < "3.11.3"', "idna"])
    _wheel(tmp_path, "idna", ['colorama; sys_platform == "win32"', 'extra-thing; extra == "x"'])
    # Debian bookworm's python3 is 3.11.2: the host (any version) would skip async-timeout.
    assert images.missing_requirements(tmp_path) == ["async-timeout>=4.0.3"]


def test_project_hash_follows_its_source_and_dockerfile_not_what_only_the_host_reads(tmp_path, monkeypatch):
    for name in ("cli.py", "setup.cfg", "pyproject.toml"):
        (tmp_path / name).write_text(name)
    for folder in ("services", "deploy/ansible/roles", "deploy/images/redis", "deploy/images/project",
                   "deploy/templates/nginx", "deploy/compose-spec"):
        (tmp_path / folder).mkdir(parents=True)
    (tmp_path / "services" / "app.py").write_text("v1")
    (tmp_path / "deploy" / "stack.py").write_text("v1")
    (tmp_path / "deploy/images/project/Dockerfile").write_text("FROM base")
    monkeypatch.setattr(images, "SOURCE_ROOT", tmp_path)
    monkeypatch.setattr(images, "IMAGES_DIR", tmp_path / "deploy" / "images")
    first = images.content_hash("project", "base")

    # Package data nothing in the project image reads: the role, other images, templates, schema.
    (tmp_path / "deploy/ansible/roles/main.yml").write_text("- name: a task")
    (tmp_path / "deploy/images/redis/Dockerfile").write_text("FROM x")
    (tmp_path / "deploy/templates/nginx/rasax.conf.j2").write_text("server {}")
    (tmp_path / "deploy/compose-spec/compose-spec.json").write_text("{}")
    assert images.content_hash("project", "base") == first
    redis = images.content_hash("redis", "base")
    (tmp_path / "deploy/images/redis/Dockerfile").write_text("FROM y")
    assert images.content_hash("redis", "base") != redis

    (tmp_path / "deploy/images/project/Dockerfile").write_text("FROM base\nUSER 1001")
    second = images.content_hash("project", "base")
    assert second != first
    (tmp_path / "deploy" / "stack.py").write_text("v2")
    assert images.content_hash("project", "base") != second


def test_the_project_image_needs_a_source_tree(tmp_path, monkeypatch):
    monkeypatch.setattr(images, "SOURCE_ROOT", tmp_path)  # site-packages of a wheel install: no setup.cfg
    assert not images.can_build("project") and images.can_build("nginx")
    with pytest.raises(images.ImageError, match="source checkout.*images load DIR"):
        images.build_all(None, print, ["project", "nginx"])  # refused before any engine is asked
