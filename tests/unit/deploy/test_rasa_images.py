"""The pure part of deploy/rasa_images.py: which pins, which cached file, which version (no Docker)."""

from __future__ import annotations

import pytest

from deploy import rasa_images
from deploy.images import ImageError


def test_every_pin_of_the_rasa_set_is_exact_and_the_sdk_set_is_a_subset_of_it():
    rasa = dict(rasa_images.pins(rasa_images.requirements_file("rasa", "3.6.21")))
    sdk = dict(rasa_images.pins(rasa_images.requirements_file("rasa-sdk", "3.6.2")))
    assert rasa["rasa"] == "3.6.21" and rasa["rasa-sdk"] == "3.6.2" == sdk["rasa-sdk"]
    assert {name: rasa[name] for name in sdk} == sdk  # one resolution: the images agree


def test_the_action_server_follows_the_rasa_version():
    assert rasa_images.image_versions("3.6.21") == {"rasa": "3.6.21", "rasa-sdk": "3.6.2"}


def test_an_unpinned_rasa_version_names_the_versions_that_can_be_built():
    with pytest.raises(ImageError) as error:
        rasa_images.image_versions("3.7.0")
    assert str(error.value).startswith("RASA_VERSION 3.7.0 cannot be built")
    assert "deploy/images/rasa/requirements-3.7.0.txt" in str(error.value)
    assert str(error.value).endswith("versions that can: 3.6.21")


def test_a_line_that_is_not_an_exact_pin_is_refused(tmp_path):
    path = tmp_path / "requirements-1.txt"
    path.write_text("# comment\nrasa==3.6.21\nnumpy>=1.23\n")
    with pytest.raises(ImageError, match=r"requirements-1.txt:3: not a `name==version` pin: 'numpy>=1.23'"):
        rasa_images.pins(path)


def test_the_cache_finds_a_pin_by_normalised_name_and_version_and_prefers_its_wheel(tmp_path):
    for name in ("ruamel.yaml-0.17.21.tar.gz", "ruamel.yaml-0.17.21-py3-none-any.whl",
                 "APScheduler-3.9.1.post1-py2.py3-none-any.whl", "docopt-0.6.2.tar.gz",
                 "numpy-1.23.5-cp39-cp39-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"):
        (tmp_path / name).write_bytes(b"")
    assert rasa_images.cached(tmp_path, "ruamel.yaml", "0.17.21").name == "ruamel.yaml-0.17.21-py3-none-any.whl"
    assert rasa_images.cached(tmp_path, "apscheduler", "3.9.1.post1") is not None
    assert rasa_images.cached(tmp_path, "docopt", "0.6.2").name == "docopt-0.6.2.tar.gz"
    assert rasa_images.cached(tmp_path, "numpy", "1.23.5") is not None
    assert rasa_images.cached(tmp_path, "numpy", "1.24.0") is None
    assert rasa_images.cached(tmp_path / "absent", "numpy", "1.23.5") is None


def test_the_content_hash_follows_the_base_and_the_version():
    one = rasa_images.content_hash("rasa", "3.6.21", "sha256:a")
    assert one == rasa_images.content_hash("rasa", "3.6.21", "sha256:a")
    assert one != rasa_images.content_hash("rasa", "3.6.21", "sha256:b")
    assert one != rasa_images.content_hash("rasa-sdk", "3.6.2", "sha256:a")
