"""Event ingest on a real two-node Docker Swarm with 1 and with 2 event-service replicas, in one run.

    python bench/swarm_ingest.py [--events 20000]

Builds the swarm of the e2e test (tests/e2e/swarm_nodes.py: two dockerd in network namespaces
of their own), deploys the stack without the Rasa servers (`rasax-deploy swarm deploy`), then
for 1 and for 2 replicas: the event service scaled to 0, N events built from the real captured
Rasa events (each copy with its own sender ids) queued in the stack's RabbitMQ, the service
scaled to R, and the rate measured from the first stored event to the last (the tasks' start is
not counted). Every event is checked stored once. Each replica runs EVENT_SERVICE_WORKERS
consumer processes (default: one per CPU, at most 4). Everything is removed at the end.

Needs root, Docker and the stack's images (built when missing, as `up` does).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tests.e2e.swarm_nodes import Swarm, SwarmStack  # noqa: E402
from tests.integration.event_service.harness import count_events, publish, replicated_stream  # noqa: E402


def ingest(stack: SwarmStack, engine, replicas: int, events: int, timeout: float = 1800) -> tuple[float, int]:
    """Events per second with `replicas` tasks draining a backlog of `events`; and the stored count."""
    stack.scale("event-service", 0)
    copies = max(1, events // 123)
    messages = replicated_stream(copies, prefix=f"bench{replicas}-")
    before = count_events(engine)
    publish(stack.env(), messages)
    stack.manager.docker("service", "scale", "--detach=true", f"rasax_event-service={replicas}")
    target = before + len(messages)
    deadline = time.monotonic() + timeout
    started = first = None
    while True:
        count = count_events(engine)
        now = time.monotonic()
        if started is None and count > before:
            started, first = now, count
        if count >= target:
            break
        if now > deadline:
            raise RuntimeError(f"{target - count} events not stored after {timeout} s")
        time.sleep(0.2)
    time.sleep(2)
    stored = count_events(engine) - before
    if stored != len(messages):
        raise RuntimeError(f"{stored} events stored for {len(messages)} published")
    elapsed = max(now - started, 1e-3)
    return (count - first) / elapsed, stored


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20000)
    args = parser.parse_args()
    swarm = Swarm(2)
    with tempfile.TemporaryDirectory(prefix="rasax-swarm-bench-") as tmp:
        stack = SwarmStack(swarm, Path(tmp) / "install", Path(tmp) / "images")
        (Path(tmp) / "images").mkdir()
        try:
            swarm.start()
            stack.deploy()
            stack.publish_servers()
            engine = stack.engine()
            results = {replicas: ingest(stack, engine, replicas, args.events) for replicas in (1, 2)}
            engine.dispose()
        finally:
            swarm.remove()
    cpus = len(os.sched_getaffinity(0))
    print(f"swarm ingest ({cpus} CPUs shared by both nodes, PostgreSQL, RabbitMQ and the consumers; "
          f"{results[1][1]} events backlog each):")
    for replicas, (rate, stored) in results.items():
        print(f"  {replicas} event-service replica{'s' if replicas > 1 else ''}: {rate:8.0f} events/s "
              f"({stored} stored, each once)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
