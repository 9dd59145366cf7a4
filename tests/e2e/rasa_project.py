"""A real Rasa project trained in the rasax/rasa image, for the tests that need a real model."""

from __future__ import annotations

import shutil
from pathlib import Path

from deploy import rasa_images
from tests.conftest import FIXTURES_DIR

MOODBOT = Path(FIXTURES_DIR) / "moodbot"
RASA_IMAGE = rasa_images.image_tag("rasa", rasa_images.DEFAULT_RASA_VERSION)


def writable_copy(source: Path, target: Path) -> Path:
    """A copy uid 1001 may write in (Rasa keeps .rasa/cache and ~/.config in its working folder)."""
    shutil.copytree(source, target)
    for path in [target, *target.rglob("*")]:
        path.chmod(0o777 if path.is_dir() else 0o666)
    return target


def logs(container) -> str:
    try:
        return container.logs(tail=60).decode(errors="replace")
    except Exception as exc:  # the container may be gone already
        return f"(no logs: {exc})"


def train(docker_client, root: Path, name: str = "moodbot", source: Path = MOODBOT) -> tuple[Path, Path]:
    """`rasa train` of `source` in rasax/rasa as uid 1001: (the project copy, the model file)."""
    project = writable_copy(source, root / "project")
    models = root / "models"
    models.mkdir()
    models.chmod(0o777)
    container = docker_client.containers.run(
        RASA_IMAGE, ["train", "--fixed-model-name", name, "--out", "/models"], user="1001", detach=True,
        volumes={str(project): {"bind": "/app", "mode": "rw"}, str(models): {"bind": "/models", "mode": "rw"}},
    )
    try:
        status = container.wait(timeout=900)
        assert status["StatusCode"] == 0, logs(container)
    finally:
        container.remove(force=True)
    return project, models / f"{name}.tar.gz"
