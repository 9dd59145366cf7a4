"""The bounded, logged backoff every service uses while it waits for what it needs."""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable, TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)


class GaveUp(RuntimeError):
    pass


def retry(
    action: Callable[[], T],
    *,
    what: str,
    retry_on: tuple[type[BaseException], ...],
    timeout: float = 300.0,
    initial: float = 0.5,
    maximum: float = 10.0,
    stop: threading.Event | None = None,
) -> T:
    """Call `action` until it stops raising `retry_on`, doubling the pause up to `maximum`.

    Each failure is logged with what we wait for and why; after `timeout` seconds it raises
    GaveUp with the last reason, so a supervisor restarts the service visibly.
    """
    deadline = time.monotonic() + timeout
    delay = initial
    while True:
        try:
            return action()
        except retry_on as exc:
            reason = one_line(exc)
            if time.monotonic() + delay > deadline or (stop is not None and stop.is_set()):
                raise GaveUp(f"gave up waiting for {what} after {timeout:.0f}s: {reason}") from exc
            log.warning("waiting for %s: %s; retrying in %.1fs", what, reason, delay)
            if stop is not None:
                if stop.wait(delay):
                    raise GaveUp(f"stopped while waiting for {what}") from exc
            else:
                time.sleep(delay)
            delay = min(delay * 2, maximum)


def one_line(exc: BaseException) -> str:
    # SQLAlchemy wraps the driver's error; its own text adds a multi-line SQL and URL dump.
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
