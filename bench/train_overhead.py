"""Training through rasa-x (`rasax-deploy train`: the API, the job, the worker's /model/train,
the model stored) against `rasa train` of the same data in the same image, one after the other.

    python bench/train_overhead.py --dir /etc/rasa            # a running installation with data

Both trainings start cold: the worker's first training of a stack has no cache, and `rasa train`
runs in a fresh container; run it on a stack that has not trained this data yet (a second
training on the worker reuses Rasa's cache in the container and would flatter rasa-x). The data
is rasa-x's current training data, exported (`rasax-deploy data export`). Target: the overhead
under 10 % or 5 s, whichever is larger.

Both figures are what a user waits for, from the command to the model file: `rasa train` pays
for its container and Rasa's start (imports of TensorFlow and spaCy, some 20 s on two cores) on
every run, the worker paid it once when the stack came up. So the line also splits the time
through rasa-x by the job's own timestamps: queued (waiting for the worker), on the worker
(Rasa's training, the model streamed back and stored), and the rest (the CLI, the API, polling).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import docker

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from deploy import rasa_images  # noqa: E402
from tests.e2e.rasa_project import train as rasa_train  # noqa: E402


def _cli(*args: str) -> str:
    return subprocess.run([sys.executable, "-m", "cli", *args], cwd=ROOT, check=True, capture_output=True,
                          text=True).stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", required=True, help="the installation folder of a running stack")
    parser.add_argument("--rasa-version", default=rasa_images.DEFAULT_RASA_VERSION)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="train-bench-") as scratch:
        project = Path(scratch) / "exported"
        _cli("data", "export", "--dir", args.dir, str(project))
        started = time.monotonic()
        lines = _cli("train", "--dir", args.dir, "--name", f"bench-{int(time.time())}", "--json").splitlines()
        through_rasa_x = time.monotonic() - started
        job = json.loads(lines[-1])["job"]
        if job["status"] != "finished":
            print(f"the training through rasa-x did not finish: {job}", file=sys.stderr)
            return 1
        started = time.monotonic()
        rasa_train(docker.from_env(), Path(scratch) / "plain", "bench", source=project)
        plain = time.monotonic() - started
    overhead = through_rasa_x - plain
    allowed = max(0.10 * plain, 5.0)
    print(f"rasa train {plain:.1f} s; through rasa-x {through_rasa_x:.1f} s; overhead {overhead:+.1f} s "
          f"({100 * overhead / plain:+.1f} %), target under {allowed:.1f} s: {'met' if overhead < allowed else 'MISSED'}")
    queued = job["started_at"] - job["created_at"]
    on_worker = job["finished_at"] - job["started_at"]
    print(f"through rasa-x: queued {queued:.1f} s, on the worker and stored {on_worker:.1f} s, "
          f"CLI/API/polling {through_rasa_x - queued - on_worker:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
