"""Which model each Rasa server of the stack runs, asked inside its container.

Rasa's port is not published on the host, and its /status needs RASA_TOKEN: the probe runs in
the Rasa container itself and reads the tokens from that container's environment, so no token is
on a command line or reaches the host. For rasa-production it also asks rasa-x's model server
(a HEAD request: headers only, not the model) which file carries the `production` tag, so that a
tagged model Rasa did not load — not yet pulled, or one it cannot load — shows beside the one it
runs.
"""

from __future__ import annotations

import json

from .compose import PROJECT_LABEL, SERVICE_LABEL
from .environment import RASA_SERVICES

PRODUCTION = "rasa-production"
# Rasa answers /status 200 with the loaded model, 409 when it has none yet; the model server
# answers the tag's file name in its `filename` header, 404 when no model carries the tag.
_PROBE = """
import json, os, sys, urllib.error, urllib.request
def ask(url, method="GET"):
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=10) as r:
            return r.status, r.headers.get("filename"), (json.load(r) if method == "GET" else None)
    except urllib.error.HTTPError as e:
        return e.code, None, None
    except OSError:
        return None, None, None
status, _, body = ask("http://localhost:5005/status?token=" + os.environ["RASA_TOKEN"])
tagged = None
if sys.argv[1] == "production":
    code, tagged, _ = ask(os.environ["RASA_X_HOST"] + "/api/projects/default/models/tags/production?token="
                          + os.environ["RASA_X_TOKEN"], "HEAD")
print(json.dumps({"status": status, "body": body, "tagged": tagged}))
"""
NO_MODEL = "no model yet"


def describe(answer: dict) -> str:
    """The status line of one Rasa server from the probe's answer (pure)."""
    if answer["status"] is None:
        # Rasa serves from one event loop, which loading a model blocks for a while.
        return "unknown (Rasa did not answer within 10 s: starting, or loading a model)"
    if answer["status"] == 409:
        loaded = NO_MODEL
    elif answer["status"] == 200:
        loaded = (answer["body"].get("model_file") or "").rsplit("/", 1)[-1] or NO_MODEL
    else:
        return f"unknown (Rasa answered {answer['status']})"
    tagged = answer.get("tagged")
    if tagged and tagged != loaded:
        return f"{loaded} (tagged production: {tagged}, not loaded)"
    return loaded


def loaded_model(container, service: str) -> str:
    """What a running Rasa container serves: the model file, NO_MODEL, or why it is unknown."""
    role = "production" if service == PRODUCTION else "other"
    code, output = container.exec_run(["python", "-c", _PROBE, role], demux=False)
    try:
        answer = json.loads(output.decode().strip().splitlines()[-1]) if code == 0 else None
    except (ValueError, IndexError):
        answer = None
    return describe(answer) if answer else "unknown (the probe failed)"


def models(docker_client, project: str) -> dict[str, str]:
    """Service → its loaded model, for each running Rasa server of the project."""
    running = docker_client.containers.list(filters={"label": f"{PROJECT_LABEL}={project}", "status": "running"})
    return {c.labels[SERVICE_LABEL]: loaded_model(c, c.labels[SERVICE_LABEL])
            for c in running if c.labels.get(SERVICE_LABEL) in RASA_SERVICES}
