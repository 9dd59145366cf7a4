"""services.all's supervisor with real child processes: one that ends takes the others down and
the status is non-zero; a stop request ends them all with their own statuses."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

from services.all.__main__ import exit_code, supervise

SLEEPER = (sys.executable, "-c", "import time; time.sleep(120)")
# Exits 0 on SIGTERM, as the event service and gunicorn do.
GRACEFUL = (sys.executable, "-c", "import signal, sys, time; signal.signal(signal.SIGTERM, lambda *_: sys.exit(0)); "
            "import os; os.write(1, b'ready\\n'); time.sleep(120)")


def test_a_child_that_dies_stops_the_other_and_its_status_is_the_containers():
    started = time.monotonic()
    code = supervise(threading.Event(), (("sleeper", SLEEPER), ("failing", (sys.executable, "-c", "raise SystemExit(3)"))))
    assert code == 3
    # The sleeper was stopped (SIGTERM), not waited for.
    assert time.monotonic() - started < 20


def test_a_child_that_ends_with_status_0_is_still_a_failure():
    assert supervise(threading.Event(), (("sleeper", SLEEPER), ("quitter", (sys.executable, "-c", "pass")))) == 1


def test_a_stop_request_stops_every_child_cleanly():
    stop = threading.Event()
    timer = threading.Timer(1.5, stop.set)
    timer.start()
    try:
        assert supervise(stop, (("a", GRACEFUL), ("b", GRACEFUL))) == 0
    finally:
        timer.cancel()


def test_sigterm_to_the_supervisor_process_stops_it_and_its_children(tmp_path):
    """The module's own signal handling, in a process of its own: SIGTERM → children gone, exit 0."""
    script = tmp_path / "run.py"
    script.write_text(
        "import signal, sys, threading\n"
        "from services.all.__main__ import supervise\n"
        "stop = threading.Event()\n"
        "signal.signal(signal.SIGTERM, lambda *_: stop.set())\n"
        f"sys.exit(supervise(stop, (('a', {GRACEFUL!r}), ('b', {GRACEFUL!r}))))\n")
    process = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True,
                               cwd=Path(__file__).resolve().parents[3])
    try:
        assert process.stdout.readline().strip() == "ready"
        assert process.stdout.readline().strip() == "ready"
        process.terminate()
        assert process.wait(30) == 0
    finally:
        process.kill()


def test_a_status_by_signal_reads_as_the_shell_shows_it():
    assert exit_code(-9) == 137 and exit_code(2) == 2
