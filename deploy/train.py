"""`rasax-deploy train`: train the installation's training data on its rasa-worker.

Through the running rasa-x's API behind nginx, logged in as the admin (deploy/stack_api.py):
rasa-x owns the job (services/backend/training_jobs.py) — it sends the data to the worker and
stores the model — so a training started here is the same job the API and the UI show.
"""

from __future__ import annotations

import time
from typing import Callable

from .stack import Target
from .stack_api import ApiError, StackApi, as_admin

JOBS_PATH = "/api/projects/default/models/jobs"
DONE = ("finished", "failed")
POLL_SECONDS = 2.0


class TrainingFailed(ApiError):
    """The job ended failed: Rasa's (or rasa-x's) reason, and whether a retry may help."""

    def __init__(self, job: dict):
        retry = f"; retry: POST {JOBS_PATH}/{job['id']}/retry" if job.get("retryable") else ""
        super().__init__(f"training job {job['id']} failed: {job.get('error')}{retry}")
        self.job = job


def train(target: Target, *, model_name: str | None = None, tag: str | None = None, wait: bool = True,
          timeout: float = 6 * 3600, progress: Callable[[dict], None] = lambda job: None,
          api: StackApi | None = None) -> dict:
    """Start a training job; with `wait`, follow it to its end. Returns the job as rasa-x shows it."""
    api = api or as_admin(target)
    body = {key: value for key, value in (("model_name", model_name), ("tag", tag)) if value}
    job = api.call("POST", JOBS_PATH, expect=(202,), json=body).json()
    progress(job)
    deadline = time.monotonic() + timeout
    while wait and job["status"] not in DONE:
        if time.monotonic() > deadline:
            raise ApiError(f"training job {job['id']} is still {job['status']} after {timeout:g} s; "
                           f"follow it with GET {JOBS_PATH}/{job['id']}")
        time.sleep(POLL_SECONDS)
        seen = job["status"]
        job = api.call("GET", f"{JOBS_PATH}/{job['id']}").json()
        if job["status"] != seen:
            progress(job)
    if job["status"] == "failed":
        raise TrainingFailed(job)
    return job
