"""Several consumer processes behind one event service, and the parent that keeps them running.

One Python process cannot keep up with the broker: pika's frame handling, parsing and the
database client share one interpreter lock, so a single consumer stalls at about half of what
RabbitMQ and PostgreSQL can move (bench/ingest.py). The service therefore runs
EVENT_SERVICE_WORKERS processes, each a complete `Consumer` with its own broker and database
connections. They are plain competing consumers of the one queue, exactly like replicas in
other containers, which the store already makes safe (order-independent, duplicate-safe
writes, one lock order).

The parent only supervises: it starts the workers, restarts one that dies (its unacknowledged
deliveries go back to the queue and reach the others), forwards SIGTERM so that each drains,
and adds up their counters for `/health`. Each worker sends its counters over a pipe whenever
they change. A worker whose parent dies gets SIGTERM from the kernel and drains too, so no
consumer outlives its service.
"""

from __future__ import annotations

import collections
import ctypes
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
import time
from dataclasses import dataclass, field

from services.common.config import DatabaseSettings, RabbitSettings
from services.common.logging import setup_logging
from services.common.retry import Backoff

log = logging.getLogger(__name__)

# A worker's counters reach the parent at most this long after they change.
REPORT_INTERVAL = 0.05
# A worker that dies is started again after this pause, doubling while it keeps dying quickly.
RESTART_DELAY = 1.0
MAX_RESTART_DELAY = 30.0
# Summed over the workers; the rest of a report is per worker.
COUNTERS = ("events_consumed", "events_stored", "duplicates_ignored", "events_dead_lettered", "exported_events_received", "batches")


@dataclass
class WorkerSpec:
    """What a worker process needs; picklable, since workers are started with `spawn`."""

    index: int
    parent_pid: int
    db: DatabaseSettings
    rabbit: RabbitSettings
    secrets: list[str]


@dataclass
class _Slot:
    """One worker position: the current process, its pipe and its latest report."""

    index: int
    process: multiprocessing.Process | None = None
    pipe: multiprocessing.connection.Connection | None = None
    report: dict = field(default_factory=dict)
    restart_at: float = 0.0
    backoff: Backoff = field(default_factory=lambda: Backoff(RESTART_DELAY, MAX_RESTART_DELAY))
    started_at: float = 0.0
    exits: int = 0


class WorkerPool:
    def __init__(self, count: int, db: DatabaseSettings, rabbit: RabbitSettings, secrets: list[str]):
        self.count = count
        self.db = db
        self.rabbit = rabbit
        self.secrets = secrets
        # Workers must not inherit the parent's threads (health server) or sockets: `fork`
        # after threads exist can copy a held lock. `spawn` starts a clean interpreter.
        self._context = multiprocessing.get_context("spawn")
        self._slots = [_Slot(index) for index in range(count)]
        self._lock = threading.Lock()
        # Counters of workers that exited: /health keeps counting across restarts.
        self._retired: collections.Counter = collections.Counter()
        self._retired_reasons: collections.Counter = collections.Counter()
        self._retired_batch_seconds: collections.Counter = collections.Counter()
        self._failed_stops = 0

    # ----- supervision (the parent's main thread) ------------------------------------------
    def run(self, stop: threading.Event) -> int:
        """Keep `count` workers running until `stop`; then let them drain. Exit status 0 if
        every worker stopped cleanly."""
        for slot in self._slots:
            self._start(slot)
        while not stop.is_set():
            self._poll(timeout=0.2)
            now = time.monotonic()
            for slot in self._slots:
                if slot.process is None and now >= slot.restart_at:
                    self._start(slot)
        return self._stop_all()

    def _start(self, slot: _Slot) -> None:
        receiver, sender = self._context.Pipe(duplex=False)
        spec = WorkerSpec(slot.index, os.getpid(), self.db, self.rabbit, self.secrets)
        process = self._context.Process(target=worker_main, args=(spec, sender), name=f"event-worker-{slot.index}")
        process.start()
        sender.close()  # the worker holds the only writing end: EOF means it is gone
        with self._lock:
            slot.process, slot.pipe, slot.report = process, receiver, {"state": "starting", "pid": process.pid}
        slot.started_at = time.monotonic()
        log.info("started worker %d", slot.index, extra={"fields": {"worker": slot.index, "pid": process.pid}})

    def _poll(self, timeout: float, restart: bool = True) -> None:
        """Read every report that arrived and notice workers that exited."""
        live = [slot for slot in self._slots if slot.process is not None]
        waiting = {slot.pipe: slot for slot in live}
        waiting.update({slot.process.sentinel: slot for slot in live})
        for ready in multiprocessing.connection.wait(list(waiting), timeout):
            slot = waiting[ready]
            if ready is slot.pipe:
                self._read(slot)
            elif slot.process is not None and not slot.process.is_alive():
                self._exited(slot, restart)

    def _read(self, slot: _Slot) -> None:
        try:
            while slot.pipe.poll():
                report = slot.pipe.recv()
                with self._lock:
                    slot.report = report
        except (EOFError, OSError):
            pass  # the worker is gone; its sentinel says so next

    def _exited(self, slot: _Slot, restart: bool) -> None:
        self._read(slot)  # its last report, sent just before it exited
        process = slot.process
        process.join()
        with self._lock:
            for name in COUNTERS:
                self._retired[name] += slot.report.get(name, 0)
            self._retired_reasons.update(slot.report.get("dead_letter_reasons", {}))
            self._retired_batch_seconds.update(slot.report.get("batch_seconds", {}))
            slot.process = slot.pipe = None
            slot.report = {"state": "restarting" if restart else "stopped"}
            slot.exits += restart
        fields = {"fields": {"worker": slot.index, "pid": process.pid}}
        if not restart:
            if process.exitcode != 0:
                self._failed_stops += 1
                log.error("worker %d stopped with %s", slot.index, describe_exit(process.exitcode), extra=fields)
            return
        # A worker that ran for a while and then died is restarted quickly; one that dies at
        # once (a bug on start, say) is retried with a growing pause.
        delay = slot.backoff.after_run(time.monotonic() - slot.started_at)
        slot.restart_at = time.monotonic() + delay
        log.error(
            "worker %d exited (%s); starting it again in %.0fs", slot.index, describe_exit(process.exitcode), delay,
            extra=fields,
        )

    def _stop_all(self) -> int:
        """SIGTERM to every worker; each stores what it holds (at most its prefetch window)."""
        for slot in self._slots:
            if slot.process is not None:
                slot.process.terminate()
        while any(slot.process is not None for slot in self._slots):
            self._poll(timeout=0.2, restart=False)
        return 1 if self._failed_stops else 0

    # ----- /health and /metrics (any thread) -----------------------------------------------
    def _summed(self) -> tuple[list[dict], collections.Counter, collections.Counter, collections.Counter]:
        """Each worker's report; counters, dead-letter reasons and batch latencies summed over
        the workers, including ones that exited."""
        with self._lock:
            reports = [dict(slot.report, worker=slot.index, restarts=slot.exits) for slot in self._slots]
            totals = collections.Counter(self._retired)
            reasons = collections.Counter(self._retired_reasons)
            batch_seconds = collections.Counter(self._retired_batch_seconds)
        for report in reports:
            for name in COUNTERS:
                totals[name] += report.get(name, 0)
            reasons.update(report.get("dead_letter_reasons", {}))
            batch_seconds.update(report.get("batch_seconds", {}))
        return reports, totals, reasons, batch_seconds

    def totals(self) -> dict:
        """What /metrics shows (metrics.PoolCollector)."""
        reports, totals, reasons, batch_seconds = self._summed()
        newest = max(reports, key=lambda report: report.get("queue_measured_at", 0.0))
        return {
            **{name: totals[name] for name in COUNTERS},
            "dead_letter_reasons": dict(reasons),
            "batch_seconds": batch_seconds,
            "queue_messages": newest.get("queue_messages", {}),
            "restarts": sum(report["restarts"] for report in reports),
            "workers_consuming": sum(report.get("state") == "consuming" for report in reports),
        }

    def health(self) -> dict:
        """Counters summed over the workers (including ones that exited), the state of each."""
        reports, totals, reasons, _ = self._summed()
        states = [report.get("state", "starting") for report in reports]
        return {
            # The pool is consuming when every worker is; otherwise the first state that is not.
            "state": next((state for state in states if state != "consuming"), "consuming"),
            "broker": all(report.get("broker_connected") for report in reports),
            "database_ok": all(report.get("database_ok", True) for report in reports),
            **{name: totals[name] for name in COUNTERS},
            "dead_letter_reasons": dict(reasons),
            "workers": [
                {key: report.get(key) for key in ("worker", "pid", "state", "events_stored", "restarts")}
                for report in reports
            ],
        }


def describe_exit(code: int | None) -> str:
    if code is not None and code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit status {code}"


# ----- the worker process ----------------------------------------------------------------------
def worker_main(spec: WorkerSpec, reports: multiprocessing.connection.Connection) -> None:
    # Imported here: the parent needs none of pika and psycopg2's consumer side.
    from .consumer import Consumer, Stats
    from .store import EventStore

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    _die_with_parent(spec.parent_pid, stop)
    setup_logging("event-service", spec.secrets, fields={"worker": spec.index})

    stats = Stats(state="connecting to the broker")
    consumer = Consumer(spec.rabbit, lambda: EventStore(spec.db), stop, stats)
    done = threading.Event()

    def snapshot() -> dict:
        return {
            **stats.as_dict(),
            "state": stats.state,
            "broker_connected": stats.broker_connected,
            "database_ok": consumer.database_ok,
            "pid": os.getpid(),
        }

    def report(current: dict) -> None:
        try:
            reports.send(current)
        except OSError:
            stop.set()  # the parent is gone

    def reporter() -> None:
        last = None
        while not done.wait(REPORT_INTERVAL):
            current = snapshot()
            if current != last:
                last = current
                report(current)

    thread = threading.Thread(target=reporter, name="reporter", daemon=True)
    thread.start()
    try:
        consumer.run()
    finally:
        done.set()
        thread.join()
        report(snapshot())  # the final counters, before the pipe closes
        reports.close()


def _die_with_parent(parent_pid: int, stop: threading.Event) -> None:
    """Ask the kernel for SIGTERM when the parent dies (Linux), so an orphan drains and exits."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass  # not Linux: the broken report pipe stops the worker instead
    if os.getppid() != parent_pid:  # the parent died before the request took effect
        stop.set()
