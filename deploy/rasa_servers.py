"""Which model each Rasa server of the stack runs, asked inside its container.

Rasa's port is not published on the host, and its /status needs RASA_TOKEN: the probe runs in
the Rasa container itself and reads the token from that container's environment, so the token is
on no command line and never reaches the host.
"""

from __future__ import annotations

import json

from .compose import PROJECT_LABEL, SERVICE_LABEL
from .environment import RASA_SERVICES

# Rasa answers /status 200 with the loaded model, 409 when it has none yet.
_PROBE = """
import json, os, urllib.error, urllib.request
try:
    with urllib.request.urlopen("http://localhost:5005/status?token=" + os.environ["RASA_TOKEN"], timeout=5) as r:
        print(json.dumps({"status": r.status, "body": json.load(r)}))
except urllib.error.HTTPError as e:
    print(json.dumps({"status": e.code, "body": None}))
"""
NO_MODEL = "no model yet"


def loaded_model(container) -> str:
    """The file name of the model a running Rasa container serves, NO_MODEL, or why it is unknown."""
    code, output = container.exec_run(["python", "-c", _PROBE], demux=False)
    if code != 0:
        return "unknown (Rasa does not answer yet)"
    try:
        answer = json.loads(output.decode().strip().splitlines()[-1])
    except (ValueError, IndexError):
        return "unknown"
    if answer["status"] == 409:
        return NO_MODEL
    if answer["status"] != 200:
        return f"unknown (Rasa answered {answer['status']})"
    return (answer["body"].get("model_file") or "").rsplit("/", 1)[-1] or NO_MODEL


def models(docker_client, project: str) -> dict[str, str]:
    """Service → its loaded model, for each running Rasa server of the project."""
    running = docker_client.containers.list(filters={"label": f"{PROJECT_LABEL}={project}", "status": "running"})
    return {c.labels[SERVICE_LABEL]: loaded_model(c) for c in running if c.labels.get(SERVICE_LABEL) in RASA_SERVICES}
