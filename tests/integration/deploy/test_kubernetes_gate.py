"""The migration gate of the Kubernetes manifests, run as the cluster would run it, against the real
PostgreSQL of the test machine: the rasa-x pod's `wait-for-schema` init container keeps waiting on
an empty database, the migration Job's command brings the schema to head, and the gate then lets
the pod start. Commands and variables are taken from the rendered objects, not restated here."""

from __future__ import annotations

import os
import subprocess
import time

from deploy import kubernetes
from deploy.install import initialize
from deploy.layout import Layout
from tests.conftest import db_env, wait_until


def test_the_schema_gate_waits_until_the_migration_job_ran(tmp_path, empty_database):
    layout = Layout(tmp_path / "install")
    initialize(layout, "proj")
    manifests = {(d["kind"], d["metadata"]["name"]): d
                 for d in kubernetes.documents(kubernetes.plan(layout, kubernetes.KubernetesOptions()))}
    rasa_x = manifests[("Deployment", "rasa-x")]["spec"]["template"]["spec"]
    gate = next(c for c in rasa_x["initContainers"] if c["name"] == "wait-for-schema")
    job = next(d for (kind, _), d in manifests.items() if kind == "Job")["spec"]["template"]["spec"]["containers"][0]

    # The pods' variables, with this machine's PostgreSQL where the cluster's would be.
    test_db = db_env(empty_database)
    assert {v["name"] for v in gate["env"]} == set(test_db) | {"DB_TRACKER_DATABASE"}
    environment = dict(os.environ, **test_db)

    waiting = subprocess.Popen(gate["command"], env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(5)
        assert waiting.poll() is None, "the gate let a pod start on an empty database"
        migrated = subprocess.run(job["args"], env=environment, capture_output=True, text=True, timeout=120)
        assert migrated.returncode == 0, migrated.stderr
        assert '"status": "completed"' in migrated.stdout
        wait_until(lambda: waiting.poll() is not None, 30, "the gate to open once the schema is at head", 0.5)
        assert waiting.returncode == 0
    finally:
        waiting.kill()
