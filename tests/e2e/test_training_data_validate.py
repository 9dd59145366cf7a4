"""The export is what Rasa accepts, and `rasax-deploy data import|export` works on an installation.

1. The fixture project imported into the training data store, edited, exported, and checked by
   the real `rasa data validate` of Rasa 3.6 in the rasax/rasa image.
2. A stack `up` installed (without the Rasa servers): the project imported and exported by the
   CLI through nginx, the export equal to the input and valid for Rasa; a bad file refused with
   its line, changing nothing.
"""

from __future__ import annotations

import json
import re

import pytest
import yaml
from deploy import rasa_images
from services.backend.training_data import rasa_yaml, store
from tests.e2e.deployment import cli, running_stack
from tests.e2e.rasa_project import RASA_IMAGE
from tests.integration.backend.training_data_helpers import PROJECT_DIR, PROJECT_FILES, project_file

pytestmark = [pytest.mark.docker, pytest.mark.timeout(1800)]


@pytest.fixture(scope="module")
def rasa_image(docker_client):
    import docker

    try:
        docker_client.images.get(RASA_IMAGE)
    except docker.errors.ImageNotFound:
        rasa_images.build_all(docker_client, print)  # kept when present: CI builds it once
    return RASA_IMAGE


def _exported(migrated_engine) -> dict[str, str]:
    """The fixture project through the store: imported, read back, written as Rasa files."""
    project = rasa_yaml.Project()
    for path in PROJECT_FILES:
        rasa_yaml.read_file(path, project_file(path), project)
    with migrated_engine.begin() as connection:
        store.import_project(connection, project, "replace", "e2e")
        # An edit as the API makes it, so the export holds more than the input did.
        store.create_examples(connection, [rasa_yaml.Example("fly from Oslo please", "book_flight",
                              [{"start": 9, "end": 13, "entity": "city", "role": "departure", "value": "Oslo"}])], "e2e")  # fmt: skip
    with migrated_engine.connect() as connection:
        return rasa_yaml.write(store.load_project(connection))


def _run_rasa(docker_client, image: str, folder, command: list[str]) -> str:
    container = docker_client.containers.run(
        image, command, user="1001", detach=True, working_dir="/app",
        volumes={str(folder): {"bind": "/app", "mode": "rw"}},
    )  # fmt: skip
    try:
        status = container.wait(timeout=900)
        output = container.logs().decode(errors="replace")
        assert status["StatusCode"] == 0, output[-4000:]
        return output
    finally:
        container.remove(force=True)


def _validate(docker_client, image: str, folder) -> None:
    for path in [folder, *folder.rglob("*")]:
        path.chmod(0o777 if path.is_dir() else 0o666)
    output = _run_rasa(docker_client, image, folder, ["data", "validate", "--fail-on-warnings"])
    # Rasa read what we wrote: the validator's own steps ran, found no story conflict, and warned
    # about nothing but the form's questions (Rasa 3.6 counts utter_ask_<slot> as unused although
    # the form utters it).
    for step in ("Validating intents", "Validating utterances", "Story structure validation", "No story structure conflicts"):
        assert step in output, output[-3000:]
    warnings = [line for line in output.splitlines() if "UserWarning" in line]
    assert warnings and all(re.search(r"The utterance 'utter_ask_(departure|destination)_city' is not used", w) for w in warnings), warnings


def test_rasa_data_validate_accepts_the_export(docker_client, rasa_image, migrated_engine, tmp_path):
    folder = tmp_path / "exported"
    for path, text in _exported(migrated_engine).items():
        target = folder / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    _validate(docker_client, rasa_image, folder)


@pytest.fixture(scope="module")
def stack(docker_client, tmp_path_factory, request):
    with running_stack(docker_client, tmp_path_factory.mktemp("training-data") / "rasa", "rxdata", request) as stack:
        yield stack


def test_data_import_and_export_on_an_installation(docker_client, rasa_image, stack, tmp_path):
    imported = cli("data", "import", "--dir", str(stack.dir), "--mode", "replace", "--json", PROJECT_DIR)
    summary = json.loads(imported.stdout)
    assert (summary["parts"], summary["examples"], summary["warnings"]) == (["config", "domain", "nlu", "rules", "stories"], 33, [])
    folder = tmp_path / "exported"
    exported = cli("data", "export", "--dir", str(stack.dir), "--json", str(folder))
    assert json.loads(exported.stdout.splitlines()[-1])["version"] == summary["version"]
    for path in PROJECT_FILES:
        assert yaml.safe_load((folder / path).read_text()) == yaml.safe_load(project_file(path)), path
    _validate(docker_client, rasa_image, folder)

    bad = tmp_path / "nlu.yml"
    bad.write_text("version: '3.1'\nnlu:\n- intent: greet\n  examples: |\n    - hi [there](\n")
    refused = cli("data", "import", "--dir", str(stack.dir), str(bad), check=False)
    assert refused.returncode == 1 and "nlu.yml, line 5: '[there](' starts an entity annotation" in refused.stderr
    again = cli("data", "export", "--dir", str(stack.dir), "--json", str(tmp_path / "again"))
    assert json.loads(again.stdout.splitlines()[-1])["version"] == summary["version"]
