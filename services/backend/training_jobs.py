"""Training on rasa-worker: jobs in the database, one running per worker, none lost.

A request becomes a `training_job` row (queued) holding the exact Rasa YAML to train on and its
data version, taken in the request's transaction. Any rasa-x process may run a queued job: it
claims it under an advisory lock (queued → running, with itself as owner; the partial unique
index allows one running job per worker, whichever process or replica asks), posts the payload
to the worker's /model/train, stores the returned model like an upload (with the data version)
and tags it if asked. While it waits on Rasa it renews the job's heartbeat; a running job whose
heartbeat is older than STALE_SECONDS belongs to a rasa-x that stopped (restart, crash, scale
down), and the next process to look marks it failed and retryable, so it is never stuck
"running". Such a stopped process's training goes on on the worker (Rasa trains in a thread of
its own, whoever waits for the answer), so no training starts, and no retry is accepted, while
the worker's /status counts an active training: one training at a time holds on the worker,
not only among rasa-x's jobs. Rasa's refusal of the data fails the job with Rasa's message (not retryable: the
same data fails again); an unreachable or crashing worker fails it as retryable.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid

import sqlalchemy as sa
from flask import Flask
from sqlalchemy.engine import Connection

from . import rasa_client
from .api.models import set_tag, store_model
from .context import backend
from .errors import ApiError
from .metrics import TRAINING_JOBS
from .training_data import rasa_yaml, store

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 5.0
STALE_SECONDS = 30.0
_CLAIM_LOCK = 0x5241_5854  # "RAXT": claims and stale checks one at a time across processes
STALE_REASON = "rasa-x stopped while this job was running (no heartbeat for {:g} s); retry it"
BUSY_POLL_SECONDS = 2.0  # how often a queued job asks a busy worker again


def training_payload(project: rasa_yaml.Project) -> str:
    """The export's files as the one YAML document Rasa's POST /model/train reads: config,
    domain and training data side by side at the top level."""
    merged: dict = {}
    for document in rasa_yaml.documents(project).values():
        merged.update(document)
    return rasa_yaml.dump_yaml(merged)


def as_dict(row) -> dict:
    def seconds(value):
        return value.timestamp() if value is not None else None

    return {
        "id": row.id,
        "status": row.status,
        "model": row.model_name,
        "tag": row.tag,
        "data_version": row.data_version,
        "requested_by": row.requested_by,
        "attempts": row.attempts,
        "error": row.error,
        "retryable": row.retryable,
        "created_at": seconds(row.created_at),
        "started_at": seconds(row.started_at),
        "finished_at": seconds(row.finished_at),
    }


_COLUMNS = ("id, status, model_name, tag, data_version, requested_by, attempts, error, retryable, created_at, "
            "started_at, finished_at")


def enqueue(connection: Connection, worker: str, requested_by: str | None, *, model_name: str | None = None,
            tag: str | None = None):
    """A queued job training the current training data; the model's name defaults to the time and job id."""
    project = store.load_project(connection)
    if not project.examples:
        raise ApiError(400, "there is no NLU data to train on: import a project first", "no_training_data")
    if model_name is not None and connection.execute(sa.text("SELECT 1 FROM model WHERE name = :n"),
                                                     {"n": model_name}).first():
        raise ApiError(409, f"a model named {model_name!r} exists", "model_exists")
    row = connection.execute(
        sa.text(
            "INSERT INTO training_job (worker, data_version, payload, model_name, tag, requested_by) "
            "VALUES (:w, :v, :p, :n, :t, :r) RETURNING id"
        ),
        {"w": worker, "v": store.version_of(project), "p": training_payload(project),
         "n": model_name or "pending", "t": tag, "r": requested_by},
    ).one()
    if model_name is None:
        model_name = f"{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-job{row.id}"
        connection.execute(sa.text("UPDATE training_job SET model_name = :n WHERE id = :i"),
                           {"n": model_name, "i": row.id})
    return get(connection, row.id)


def get(connection: Connection, job_id: int):
    return connection.execute(sa.text(f"SELECT {_COLUMNS} FROM training_job WHERE id = :i"), {"i": job_id}).first()


def listing(connection: Connection, limit: int, offset: int) -> tuple[list, int]:
    rows = connection.execute(sa.text(f"SELECT {_COLUMNS} FROM training_job ORDER BY id DESC LIMIT :l OFFSET :o"),
                              {"l": limit, "o": offset}).all()
    return rows, connection.execute(sa.text("SELECT count(*) FROM training_job")).scalar()


def fail_stale(connection: Connection, stale_seconds: float | None = None) -> int:
    """Running jobs whose process stopped renewing their heartbeat → failed, retryable."""
    stale = STALE_SECONDS if stale_seconds is None else stale_seconds
    # clock_timestamp(), not now(): a transaction that waited on the claim lock would otherwise
    # date its changes before what it waited for.
    return connection.execute(
        sa.text(
            "UPDATE training_job SET status = 'failed', retryable = true, owner = NULL, "
            "finished_at = clock_timestamp(), error = :e "
            "WHERE status = 'running' AND heartbeat_at < clock_timestamp() - make_interval(secs => :s)"
        ),
        {"e": STALE_REASON.format(stale), "s": stale},
    ).rowcount


def worker_busy_error(settings) -> ApiError | None:
    """Why a retry must wait now: the worker is unreachable, or still runs a training (such as the
    one a stopped rasa-x left there: retrying it at once would train the same data twice at once)."""
    try:
        active = rasa_client.worker(settings).active_trainings()
    except rasa_client.RasaError as exc:
        return rasa_client.as_api_error(exc)
    if active:
        return ApiError(409, f"rasa-worker is still running {active} training(s); retry when it is done",
                        "worker_busy", {"Retry-After": "30"})
    return None


def retry(connection: Connection, job_id: int):
    """A failed, retryable job queued again (same payload, same model name)."""
    updated = connection.execute(
        sa.text(
            "UPDATE training_job SET status = 'queued', retryable = false, error = NULL, started_at = NULL, "
            "finished_at = NULL WHERE id = :i AND status = 'failed' AND retryable RETURNING id"
        ),
        {"i": job_id},
    ).first()
    if updated is None:
        if get(connection, job_id) is None:
            raise ApiError(404, f"no training job {job_id}", "not_found")
        raise ApiError(409, "only a failed job that says retryable can be retried", "not_retryable")
    return get(connection, job_id)


def _claim(engine, worker: str, owner: str):
    with engine.begin() as connection:
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _CLAIM_LOCK})
        fail_stale(connection)
        busy = connection.execute(sa.text("SELECT 1 FROM training_job WHERE status = 'running' AND worker = :w"),
                                  {"w": worker}).first()
        if busy:
            return None
        return connection.execute(
            sa.text(
                "UPDATE training_job SET status = 'running', owner = :o, heartbeat_at = clock_timestamp(), "
                "started_at = clock_timestamp(), "
                "attempts = attempts + 1 WHERE id = (SELECT id FROM training_job WHERE status = 'queued' "
                "AND worker = :w ORDER BY id LIMIT 1) RETURNING id, payload, data_version, model_name, tag"
            ),
            {"o": owner, "w": worker},
        ).first()


def _finish(engine, job_id: int, owner: str, status: str, error: str | None = None, retryable: bool = False) -> None:
    with engine.begin() as connection:
        done = connection.execute(
            sa.text(
                "UPDATE training_job SET status = :s, error = :e, retryable = :r, finished_at = clock_timestamp(), "
                "owner = NULL "
                "WHERE id = :i AND owner = :o AND status = 'running'"
            ),
            {"s": status, "e": error, "r": retryable, "i": job_id, "o": owner},
        ).rowcount
    if not done:
        log.warning("training job %d was taken from this process before it ended (%s)", job_id, status)


class Runner:
    """Runs the queued jobs of this process's worker, one after the other, in a thread."""

    def __init__(self, app: Flask):
        self.app = app
        self.owner = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def kick(self) -> None:
        """Start draining the queue unless this process is already at it."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._thread = threading.Thread(target=self._drain, name="training-jobs", daemon=True)
            self._thread.start()

    def wait(self, timeout: float | None = None) -> None:
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _drain(self) -> None:
        with self.app.app_context():
            ctx = backend()
            worker = ctx.settings.rasa_worker_host
            client = rasa_client.worker(ctx.settings)
            while True:
                if self._worker_busy(client):
                    # A training rasa-x does not run (a stopped rasa-x's) still holds the worker.
                    with ctx.engine.connect() as connection:
                        if not connection.execute(sa.text("SELECT 1 FROM training_job WHERE status = 'queued' "
                                                          "AND worker = :w"), {"w": worker}).first():
                            return
                    time.sleep(BUSY_POLL_SECONDS)
                    continue
                try:
                    job = _claim(ctx.engine, worker, self.owner)
                except sa.exc.SQLAlchemyError:
                    log.exception("cannot claim a training job")
                    return
                if job is None:
                    return
                self._run(job)

    @staticmethod
    def _worker_busy(client: rasa_client.RasaClient) -> bool:
        try:
            return bool(client.active_trainings())
        except rasa_client.RasaError:
            return False  # the training request says why, and fails the job retryable

    def _heartbeat(self, job_id: int, stop: threading.Event) -> None:
        engine = backend().engine
        while not stop.wait(HEARTBEAT_SECONDS):
            try:
                with engine.begin() as connection:
                    connection.execute(
                        sa.text("UPDATE training_job SET heartbeat_at = clock_timestamp() "
                                "WHERE id = :i AND owner = :o"),
                        {"i": job_id, "o": self.owner},
                    )
            except sa.exc.SQLAlchemyError as exc:  # the database may be back by the next beat
                log.warning("heartbeat of training job %d failed: %s", job_id, exc)

    def _run(self, job) -> None:
        ctx = backend()
        log.info("training job %d: training model %s on %s", job.id, job.model_name, ctx.settings.rasa_worker_host)
        stop = threading.Event()
        beat = threading.Thread(target=self._beat_in_context, args=(job.id, stop), daemon=True)
        beat.start()
        temporary = None
        try:
            os.makedirs(ctx.settings.model_dir, exist_ok=True)
            temporary = rasa_client.worker(ctx.settings).train(job.payload, ctx.settings.model_dir)
            row = store_model(temporary, job.model_name, data_version=job.data_version)
            if job.tag:
                with ctx.engine.begin() as connection:
                    set_tag(connection, row.id, job.tag)
        except rasa_client.RasaRefused as exc:
            self._end(job.id, "failed", f"Rasa refused the training data: {exc.message}")
        except rasa_client.RasaUnavailable as exc:
            self._end(job.id, "failed", f"{exc.server}: {exc.message}", retryable=True)
        except ApiError as exc:  # the model Rasa returned could not be stored
            self._end(job.id, "failed", exc.message)
        except Exception as exc:  # a fault of ours: say so, and let it be retried
            log.exception("training job %d", job.id)
            self._end(job.id, "failed", f"rasa-x failed: {type(exc).__name__}", retryable=True)
        else:
            self._end(job.id, "finished")
            log.info("training job %d: model %s stored", job.id, job.model_name)
        finally:
            stop.set()
            if temporary and os.path.exists(temporary):
                os.unlink(temporary)

    def _beat_in_context(self, job_id: int, stop: threading.Event) -> None:
        with self.app.app_context():
            self._heartbeat(job_id, stop)

    def _end(self, job_id: int, status: str, error: str | None = None, retryable: bool = False) -> None:
        TRAINING_JOBS.labels(f"{status}_retryable" if retryable else status).inc()
        try:
            _finish(backend().engine, job_id, self.owner, status, error, retryable)
        except sa.exc.SQLAlchemyError:
            # The heartbeat stops with us, so the job turns failed-and-retryable once stale.
            log.exception("cannot record the end of training job %d", job_id)


def runner(app: Flask) -> Runner:
    """This app's runner, made on first use."""
    if "rasax_training" not in app.extensions:
        app.extensions["rasax_training"] = Runner(app)
    return app.extensions["rasax_training"]
